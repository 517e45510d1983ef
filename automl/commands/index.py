"""``automl index``: build, grow, query and inspect an online-hashed face retrieval index.

Parsing, calling, printing; the work is :mod:`automl.retrieval` over :mod:`hashing.index`. A
:class:`hashing.HashingError` becomes one line, exit 2, its parameter name replaced by the flag
(:func:`automl.commands.common.hashing_errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from automl.commands.common import (
    console,
    err_console,
    hashing_errors,
    print_json,
    print_signal_warnings,
    print_table,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import FIXED_SEED_OPTION, JSON_TABLE_OPTION
from automl.errors import UserError

index_app = typer.Typer(
    help="Face retrieval: BSODH online hashing + a FAISS binary index that follows hash updates.",
    no_args_is_help=True,
)

Opt, Arg = typer.Option, typer.Argument
IndexDir = Annotated[Path, Arg(help="A saved index directory.")]
Images = Annotated[Path, Opt("--images", help="An image file or a folder of images.")]
Labels = Annotated[Path, Opt("--labels", help="CSV: file,label or file,AU1,...; labels update the hash.")]
ModelFile = Annotated[Path, Opt("--model", help="Embedding model (default: the index's own).")]
Batch = Annotated[int, Opt("--batch", help="Stream batch size n_t: one hash update per labelled batch.")]
NoDetect = Annotated[bool, Opt("--no-detect", help="The images are aligned face crops: skip detection.")]
NoRecord = Annotated[bool, Opt("--no-record", help="Do not record the saved generation in the store (--db).")]
LockTimeout = Annotated[float, Opt("--lock-timeout", help="Seconds to wait for another writer (0: none).")]
_EVAL_HELP = "Hold out N labelled samples; record their mAP after every hash update (0 = off)."
_HASHER_HELP = "BSODH (default), HMOH, OKH, OSH, AdaptHash, SketchHash, LSH or ITQ."
_REPLAY_HELP = "BSODH robust: replay reservoir size (default 2000; 0 = off)."
_MODE_HELP = "BSODH: robust (default; any stream) or paper (the authors' stage, exactly)."
_ETA_D_HELP = "BSODH dissimilar-pair weight, used as given (default: derived from the stream's labels)."
_VIDEO_HELP = "A video file or a folder of videos (repeatable): every face of every frame."
_THREADS_HELP = "torch and FAISS threads (default: one per core; see automl.threads)."


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    for path, why in skipped:
        err_console.print(f"[yellow]skipped[/] {path}: {why}", highlight=False, soft_wrap=True)


def _record(ctx: typer.Context, root: Path, index: Any, details: dict[str, Any] | None) -> None:
    """One store row for the generation just saved (``details=None``: ``index record``)."""
    from automl import retrieval

    try:
        if details is None:
            row, known = retrieval.record_saved_index(resolve_db_url(ctx), root)
        else:
            row, known = retrieval.record_index(resolve_db_url(ctx), root, index, details), False
    except retrieval.IndexNotRecordedError as exc:
        hint = f"fix the store, then `automl index record {root}`; or pass --no-record"
        raise UserError(f"{exc} ({hint})") from None
    if known:
        console.print(f"{root} (this generation) is already recorded as index record {row}")
    else:
        console.print(f"recorded {'' if details else f'{root} '}in the store as index record {row}")


@index_app.command("build")
def build(
    ctx: typer.Context,
    model: Annotated[Path, Opt("--model", help="Exported TorchScript model (model.pt + model.pt.json).")],
    out: Annotated[Path, Opt("--out", help="Directory to save the index into (must not exist yet).")],
    data: Annotated[str, Opt("--data", help="Data spec KIND:PATH (e.g. synth:fer, folder:/faces).")] = None,
    images: Annotated[Path, Opt("--images", help="An image file or a folder of images, not --data.")] = None,
    labels: Labels = None,
    bits: Annotated[int, Opt("--bits", help="Code length (a multiple of 8).")] = 64,
    hasher: Annotated[str, Opt("--hasher", help=_HASHER_HELP)] = "BSODH",
    batch: Batch = 2000,
    refresh_every: Annotated[int, Opt("--refresh-every", help="Re-encode all codes every k updates.")] = 1,
    preset: Annotated[str, Opt("--preset", help="BSODH preset: cifar10 | mnist | places205.")] = "cifar10",
    n: Annotated[int, Opt("--n", help="Use at most this many samples of --data.")] = None,
    split: Annotated[str, Opt("--split", help="Split of --data to index: train | test | all.")] = "train",
    no_detect: NoDetect = False,
    seed: int = FIXED_SEED_OPTION,
    eval_queries: Annotated[int, Opt("--eval-queries", help=_EVAL_HELP)] = 0,
    no_record: NoRecord = False,
    cpu_threads: Annotated[int, Opt("--cpu-threads", min=1, help=_THREADS_HELP)] = None,
    lock_timeout: LockTimeout = 600.0,
    mode: Annotated[str, Opt("--mode", help=_MODE_HELP)] = "robust",
    eta_s: Annotated[float, Opt("--eta-s", help="BSODH similar-pair weight (default: the preset's).")] = None,
    eta_d: Annotated[float, Opt("--eta-d", help=_ETA_D_HELP)] = None,
    replay: Annotated[int, Opt("--replay", help=_REPLAY_HELP)] = None,
    no_shuffle: Annotated[bool, Opt("--no-shuffle", help="Learn in the data's own order.")] = False,
) -> None:
    """Embed a data set or a folder of photos, learn the hasher on the labelled stream, save the index
    (recorded in the store unless --no-record). --eval-queries N holds N labelled samples out and
    scores them after every hash update; the dashboard plots that mAP curve.
    """
    from automl import retrieval
    from automl.threads import apply_cpu_threads

    if (state := retrieval.directory_state(out)) != "free":
        hint = "use 'automl index add'" if state == "index" else "pick a new path"
        raise UserError(f"--out {out} already exists and is not empty; {hint}")
    options = dict(batch_size=batch, refresh_every=refresh_every, eval_queries=eval_queries, hasher=hasher)
    options.update(bits=bits, preset=preset, seed=seed, lock_timeout=lock_timeout)
    with hashing_errors():
        options["hasher_params"] = retrieval.bsodh_params(hasher, mode=mode, eta_s=eta_s, eta_d=eta_d,
                                                          replay=replay)  # fmt: skip
        retrieval.check_build(**options)
    threads = apply_cpu_threads("cpu", cpu_threads, faiss=True)  # embedding runs on the CPU
    with hashing_errors(), progress_bar(stderr=True) as progress:
        faces = retrieval.embed_input(model, data=data, images=images, labels_csv=labels, split=split, n=n,
                                      seed=seed, detect=not no_detect, progress=progress)  # fmt: skip
        _report_skipped(faces.skipped)
        try:
            built = retrieval.build_index(faces, out, shuffle=not no_shuffle, progress=progress, **options)
        except retrieval.IndexConflictError:
            raise UserError(f"--out {out} was saved by another build meanwhile; add to it instead") from None
    console.print(built.summary("build"), soft_wrap=True)
    for note in built.notes():
        err_console.print(f"[yellow]warning[/]: {note}", highlight=False, soft_wrap=True)
    if not no_record:
        details = {"command": "build", "input": data if data is not None else str(images), "split": split}
        _record(ctx, out, built.index, {**details, "cpu_threads": threads})
    print_signal_warnings(built.signal, f"index {out}")


@index_app.command("add")
def add(
    ctx: typer.Context,
    directory: IndexDir,
    images: Annotated[Path | None, Opt("--images", help="An image file or a folder of images.")] = None,
    video: Annotated[list[Path] | None, Opt("--video", help=_VIDEO_HELP)] = None,
    labels: Labels = None,
    label: Annotated[str | None, Opt("--label", help="--video: one class for all its faces.")] = None,
    frame_step: Annotated[int, Opt("--frame-step", help="--video: every Nth frame only.")] = 1,
    detect_every: Annotated[int, Opt("--detect-every", help="--video: detect every Nth frame.")] = 1,
    model: ModelFile = None,
    batch: Batch = 2000,
    no_detect: NoDetect = False,
    no_record: NoRecord = False,
    lock_timeout: LockTimeout = 600.0,
) -> None:
    """Add photos or video frames; labelled ones update the hash and re-encode the collection,
    unlabelled are only encoded. The saved index is replaced atomically (on failure it stays as it
    was); the new generation gets its own store row unless --no-record. build's "mAP over the
    stream" curve is carried over.
    """
    from automl import retrieval

    if (images is None) == (not video):
        raise UserError("give --images PATH or --video PATH (not both)")
    if video and labels is not None:
        raise UserError("--labels labels photos; give the faces of a video one class with --label")
    if images is not None and label is not None:
        raise UserError("--label goes with --video; label photos with --labels CSV")
    with hashing_errors():
        retrieval.check_batch_size(batch)
        retrieval.check_lock_timeout(lock_timeout)
        m = retrieval.model_for_index(directory, model)
        with progress_bar(stderr=True) as progress:
            if video:
                faces = retrieval.embed_video(
                    m, video, label=label, detect=not no_detect, detect_every=detect_every,
                    frame_step=frame_step, progress=progress,
                )  # fmt: skip
            else:
                faces = retrieval.embed_folder(m, images, labels, detect=not no_detect, progress=progress)  # type: ignore[arg-type]
            _report_skipped(faces.skipped)
            grown = retrieval.add_to_index(directory, faces, batch_size=batch, lock_timeout=lock_timeout,
                                           purpose="automl index add", progress=progress)  # fmt: skip
    console.print(grown.summary("add"))
    for note in grown.notes():
        err_console.print(f"[yellow]warning[/]: {note}", highlight=False, soft_wrap=True)
    if not no_record:
        source = str(images) if images is not None else ", ".join(str(v) for v in video or [])
        details = {"command": "add", "input": source, "added_items": grown.added}
        _record(ctx, directory, grown.index, {**details, "added_labelled": grown.labelled})
    print_signal_warnings(grown.signal, f"index {directory}")


@index_app.command("query")
def query(
    directory: IndexDir,
    image: Annotated[Path, Arg(help="The query photo.")],
    k: Annotated[int, Opt("-k", "--k", help="Neighbours (default 10; at most the index size).")] = None,
    radius: Annotated[int, Opt("--radius", help="Instead of -k: all within this Hamming distance.")] = None,
    as_json: bool = JSON_TABLE_OPTION,
    model: ModelFile = None,
    no_detect: NoDetect = False,
) -> None:
    """The nearest indexed faces to a photo, by Hamming distance of their codes. Equal distances go
    in the order the items were added; when more items share the last row's distance than fit in
    -k, the title says how many were left out and those rows are marked "=" (tied)."""
    from automl import retrieval

    with hashing_errors():
        index, answer = retrieval.query_image(
            directory, image, k=k, radius=radius, model=model, detect=not no_detect
        )
    if as_json:
        shown = {"k": answer.k, "radius": answer.radius, "clamped": answer.clamped}
        ties = {"ties_beyond": answer.ties_beyond, "tie_distance": answer.tie_distance}
        print_json({"query": str(image), "bits": index.n_bits, **shown, **ties, "results": answer.rows})
        return
    note = f"; -k {answer.k} is more than the index holds" if answer.clamped else ""
    if answer.ties_beyond:
        more, at = answer.ties_beyond, answer.tie_distance
        note += f"; {more} more item(s) tie at distance {at} with the rows marked ="
    title = f"{len(answer.rows)} neighbour(s) of {image.name} ({index.n_bits}-bit codes{note})"
    columns = ("rank", "id", "distance", "label", "source")
    cell = {True: " =", False: ""}  # a tied row's distance: "3 ="
    rows = [[str(r[c]) + (cell[r["tied"]] if c == "distance" else "") for c in columns] for r in answer.rows]
    print_table(title, columns, rows, left=("label", "source"))


@index_app.command("stats")
def stats(
    directory: IndexDir,
    as_json: bool = JSON_TABLE_OPTION,
    verify: Annotated[bool, Opt("--verify/--no-verify", help="Check every file's sha256.")] = True,
) -> None:
    """Size, code length, hasher, hash updates and staleness of a saved index."""
    from hashing.index import HashIndex

    with hashing_errors():
        st = HashIndex.load(directory, verify=verify).stats()
    if as_json:
        print_json(st)
    else:
        print_table(f"index {directory}", ["", ""], [[key, str(val)] for key, val in st.items()], left=("",),
                    show_header=False)  # fmt: skip


@index_app.command("record")
def record(ctx: typer.Context, directory: IndexDir) -> None:
    """Record a saved generation in the store (e.g. after the store was unreachable): verified
    first, so only an intact generation gets a row, and never twice (same path and manifest sha256)."""
    with hashing_errors():
        _record(ctx, directory, None, None)


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
