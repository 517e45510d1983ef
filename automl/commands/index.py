"""``automl index``: build, grow, query and inspect an online-hashed face retrieval index.

Thin layer over :mod:`hashing` (which knows nothing about ``automl``): it parses options, loads
data through :func:`automl.data.load_data` where a data spec is given, converts
:class:`hashing.HashingError` into :class:`automl.errors.UserError` (one line, exit 2) and prints.

``build`` and ``add`` also record every saved generation in the SQL store (``--db``; skip with
``--no-record``), one ``automl_indexes`` row per save, so the store keeps the index's history and
the dashboard's Retrieval page finds it. With ``build --eval-queries N`` a held-out set of labelled
samples measures the mAP after every hash update ("mAP over the stream"); the curve is saved in
the index's ``extra["stream_map"]`` and in the store row's ``extra``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer

from automl.commands.common import console, err_console, print_json, print_signal_warnings
from automl.errors import UserError

index_app = typer.Typer(
    help="Face retrieval: BSODH online hashing + a FAISS binary index that follows hash updates.",
    no_args_is_help=True,
)

_PRESET_HELP = "BSODH parameters preset: cifar10 (deep features, default) | mnist | places205."


@contextmanager
def _user_errors() -> Iterator[None]:
    """HashingError (a ValueError from the hashing package) -> UserError, one line."""
    from hashing.errors import HashingError

    try:
        yield
    except HashingError as exc:
        raise UserError(str(exc)) from None


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    for path, why in skipped:
        err_console.print(f"[yellow]skipped[/] {path}: {why}", highlight=False, soft_wrap=True)


def _labels_from_data(y: Any) -> np.ndarray:
    arr = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    if arr.ndim == 2 and not np.isin(arr, (0, 1)).all():  # soft (probability) targets: majority class
        return arr.argmax(axis=1).astype(np.int64)
    return arr.astype(np.uint8) if arr.ndim == 2 else arr.astype(np.int64)


def _add_in_batches(
    index: Any,
    emb: np.ndarray,
    labels: np.ndarray | None,
    sources: list[str],
    batch: int,
    after_batch: Callable[[Any], None] | None = None,
) -> None:
    """Feed the stream one batch (one BSODH stage) at a time; ``after_batch(index)`` runs after
    each, e.g. to measure the retrieval quality the stream has reached so far."""
    with _progress("hashing + indexing", len(emb)) as advance:
        for s in range(0, len(emb), batch):
            index.add(
                emb[s : s + batch],
                labels=None if labels is None else labels[s : s + batch],
                sources=sources[s : s + batch],
            )
            if after_batch is not None:
                after_batch(index)
            advance(min(batch, len(emb) - s))


# -- mAP over the stream -----------------------------------------------------------------------
STREAM_MAP_KEY = "stream_map"  # dashboard.retrieval_data.HISTORY_KEYS[0]: {"update", "items", "mAP"}


def _hold_out_queries(
    emb: np.ndarray, labels: np.ndarray | None, sources: list[str], n_queries: int, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray, list[str]], tuple[np.ndarray, np.ndarray]]:
    """Split ``n_queries`` labelled samples off the stream: ((emb, labels, sources) to index,
    (query embeddings, query labels)).

    The queries are drawn at random (``seed``) rather than taken from the end, because data sets
    are often ordered by class; the remaining items keep their stream order and their sources, so
    ``data#split:i`` still names the original sample.
    """
    if labels is None:
        raise UserError("--eval-queries needs labelled data (a --data spec, or --images with --labels)")
    labelled = np.flatnonzero((labels.reshape(len(labels), -1) >= 0).all(axis=1))
    if n_queries >= len(labelled) or n_queries >= len(emb):
        raise UserError(
            f"--eval-queries {n_queries} leaves nothing to index: only {len(labelled)} labelled "
            f"sample(s) of {len(emb)}; use fewer queries or more data (--n)"
        )
    picked = np.sort(np.random.default_rng(seed).choice(labelled, n_queries, replace=False))
    keep = np.ones(len(emb), bool)
    keep[picked] = False
    kept = (emb[keep], labels[keep], [s for s, k in zip(sources, keep, strict=True) if k])
    return kept, (emb[picked], labels[picked])


def _stream_map_recorder(
    queries: np.ndarray, query_labels: np.ndarray, history: list[dict[str, Any]]
) -> Callable[[Any], None]:
    """An ``after_batch`` hook: after every hash update, the mAP of the held-out queries against
    the items indexed so far, appended to ``history`` as ``{"update", "items", "mAP"}``.

    It ranks with the index's own codes and query-encoding snapshot (what a user querying the
    index at that moment would get, stale codes included when ``--refresh-every`` > 1) and scores
    with :mod:`hashing.metrics`, the benchmarks' mAP. An undefined mAP (no query has a relevant
    item yet) is stored as ``None``: JSON has no NaN and the dashboard skips non-numbers.
    """
    from hashing.metrics import hamming_distances, mean_average_precision, relevance

    def record(index: Any) -> None:
        if index.n_updates == (history[-1]["update"] if history else 0):
            return  # an unlabelled batch: the hash did not change
        dist = hamming_distances(index.encode_queries(queries), index.codes)
        value = mean_average_precision(dist, relevance(query_labels, index.labels))
        history.append(
            {
                "update": int(index.n_updates),
                "items": len(index),
                "mAP": None if np.isnan(value) else round(float(value), 6),
            }
        )

    return record


def _final_map(history: list[dict[str, Any]]) -> float | None:
    return next((h["mAP"] for h in reversed(history) if h["mAP"] is not None), None)


# -- learning checks ------------------------------------------------------------------------------
SIGNAL_KEY = "signal"  # automl.learning_checks.SIGNAL_KEY: the same key as in run summaries


def _judge(index: Any, embeddings: np.ndarray) -> dict[str, Any]:
    """Code collapse of the whole index and embedding collapse of what was just fed in
    (:func:`automl.learning_checks.check_index`), kept in ``index.extra`` (saved with the index
    and copied into its store row) and returned for printing."""
    from automl.learning_checks import check_index

    signal = check_index(index.codes, n_bits=index.n_bits, labels=index.labels, embeddings=embeddings)
    index.extra[SIGNAL_KEY] = signal
    return signal


# -- the store -----------------------------------------------------------------------------------
def _generation_sha256(root: Path) -> str:
    """The sha256 of the saved index's ``manifest.json``: what identifies one saved generation.

    The manifest is the commit point of :meth:`hashing.index.HashIndex.save` (written last,
    atomically replaced) and lists the generation number, counts, ``extra`` and the size + sha256
    of every part file, so its hash covers the whole directory the way a Merkle root does: two
    saves never share it, and checking a store row against the disk means hashing one small file
    (``automl index stats --verify`` then checks the parts against the manifest). Hashing every
    part instead would cost a full read of the embeddings and add nothing.
    """
    from automl.store.repository import file_sha256
    from hashing.index import MANIFEST

    return file_sha256(root / MANIFEST)


def _safe_url(url: str) -> str:
    """The store URL without its password, for error messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from automl.redact import safe_url
    from automl.store.engine import normalize_url

    try:
        make_url(normalize_url(url))
    except ArgumentError:
        return "(invalid URL)"
    return safe_url(normalize_url(url))


def _record_index(ctx: typer.Context, root: Path, index: Any, details: dict[str, Any]) -> int:
    """Add one store row for the generation just saved in ``root``; returns its id.

    Runs only after the save succeeded. A store failure cannot undo the save (and must not:
    the index is good), so it becomes one line, exit 2, saying the index was saved but not
    recorded and why; the user can fix the store and re-run with ``--db``.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from automl.commands.common import resolve_db_url
    from automl.redact import redact
    from automl.store import open_store

    st = index.stats()
    extra = {
        "model": index.extra.get("model"),
        "task": index.extra.get("task"),
        "generation": st["generation"],
        "hash_updates": st["hash_updates"],
        "labelled_items": st["labelled_items"],
        "stale_updates": st["stale_updates"],
        "refresh_every": st["refresh_every"],
        "dim": st["dim"],
        **details,
    }
    if SIGNAL_KEY in index.extra:
        extra[SIGNAL_KEY] = index.extra[SIGNAL_KEY]
    if STREAM_MAP_KEY in index.extra:
        extra[STREAM_MAP_KEY] = index.extra[STREAM_MAP_KEY]
        extra["stream_map_queries"] = index.extra.get("stream_map_queries")
    url = resolve_db_url(ctx)
    store = None
    try:
        sha = _generation_sha256(root)
        store = open_store(url)
        return store.add_index(root, sha256=sha, bits=index.n_bits, size=len(index), extra=extra)
    except (UserError, SQLAlchemyError, OSError) as exc:
        why = redact(" ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__)
        shown = _safe_url(url)
        where = "" if shown in why else f" {shown}"
        raise UserError(
            f"index saved to {root} (complete and usable) but not recorded in the store{where}: {why} "
            f"(fix the store, then `automl index record {root}`; or pass --no-record)"
        ) from None
    finally:
        if store is not None:
            store.close()


@contextmanager
def _progress(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar with ETA on stderr; yields ``advance(n)``."""
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _embed_folder(model: Any, images: Path, labels_csv: Path | None, detect: bool) -> tuple:
    from hashing.stream import embed_images, list_images, read_labels_csv

    paths = list_images(images)
    with _progress(f"embedding {len(paths)} image(s)", len(paths)) as advance:
        batch = embed_images(model, paths, detect=detect, progress=advance)
    _report_skipped(batch.skipped)
    labels = None
    if labels_csv is not None and batch.paths:
        labels = read_labels_csv(labels_csv, batch.paths, model.class_names)
    return batch, labels


def _record_label_names(index: Any, labels: np.ndarray | None, labels_csv: Path | None) -> None:
    """Multi-label CSVs name their columns (AU1, AU2, ...): keep those names for display."""
    from hashing.stream import label_columns

    if (
        labels is not None
        and labels.ndim == 2
        and labels_csv is not None
        and "label_names" not in index.extra
    ):
        index.extra["label_names"] = label_columns(labels_csv)


@index_app.command("build")
def build(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", help="Exported TorchScript model (model.pt + model.pt.json)."),
    out: Path = typer.Option(..., "--out", help="Directory to save the index into (must not exist yet)."),
    data: str = typer.Option(None, "--data", help="Data spec KIND:PATH (e.g. synth:fer, folder:/faces)."),
    images: Path = typer.Option(
        None, "--images", help="An image file or a folder of images instead of --data."
    ),
    labels: Path = typer.Option(None, "--labels", help="CSV: file,label or file,AU1,AU2,... for --images."),
    bits: int = typer.Option(64, "--bits", help="Code length (a multiple of 8)."),
    batch: int = typer.Option(2000, "--batch", help="Stream batch size n_t (one BSODH stage per batch)."),
    refresh_every: int = typer.Option(1, "--refresh-every", help="Re-encode all codes every k hash updates."),
    preset: str = typer.Option("cifar10", "--preset", help=_PRESET_HELP),
    n: int = typer.Option(None, "--n", help="Use at most this many samples of --data."),
    split: str = typer.Option("train", "--split", help="Which split of --data to index: train | test | all."),
    no_detect: bool = typer.Option(
        False, "--no-detect", help="Images are aligned face crops: skip detection."
    ),
    seed: int = typer.Option(0, "--seed"),
    eval_queries: int = typer.Option(
        0,
        "--eval-queries",
        help="Hold out this many labelled samples (not indexed) as queries and record the mAP "
        "after every hash update (0 = off).",
    ),
    no_record: bool = typer.Option(
        False, "--no-record", help="Do not record the saved index in the store (--db)."
    ),
    cpu_threads: int = typer.Option(
        None,
        "--cpu-threads",
        min=1,
        help="torch and FAISS threads for embedding and hashing (default: torch's, one per core; "
        "1 is fastest on a busy small machine, see automl.threads).",
    ),
) -> None:
    """Embed a data set or a folder of photos, learn BSODH on the labelled stream, save the index.

    The saved index is recorded in the store (one row: path, manifest sha256, bits, size, extra)
    unless ``--no-record``. ``--eval-queries N`` keeps N random labelled samples out of the index
    and, after every hash update, scores them against the items indexed so far; that curve is
    saved as ``extra["stream_map"]`` = ``[{"update", "items", "mAP"}, ...]`` with the index and in
    its store row, where the dashboard draws it.
    """
    from automl.threads import apply_cpu_threads
    from hashing import BSODH
    from hashing.bsodh import PRESETS
    from hashing.index import MANIFEST, HashIndex
    from hashing.stream import embed_uint8, load_model

    if (data is None) == (images is None):
        raise UserError("give exactly one of --data SPEC or --images PATH")
    if labels is not None and images is None:
        raise UserError("--labels goes with --images (a data spec carries its own labels)")
    if preset not in PRESETS:
        raise UserError(f"unknown --preset {preset!r}: use one of {', '.join(PRESETS)}")
    if split not in ("train", "test", "all"):
        raise UserError(f"--split must be train, test or all, not {split!r}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, not {batch}")
    if eval_queries < 0:
        raise UserError(f"--eval-queries must be >= 0, not {eval_queries}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        hint = "use 'automl index add'" if (out / MANIFEST).exists() else "pick a new path"
        raise UserError(f"--out {out} already exists and is not empty; {hint}")
    threads = apply_cpu_threads("cpu", cpu_threads, faiss=True)  # embedding runs on the CPU
    with _user_errors():
        m = load_model(model)
        if data is not None:
            from automl.data import load_data

            ds = load_data(data, image_size=m.image_size, channels=m.in_channels, n=n, seed=seed)
            parts = {"train": [(ds.train_x, ds.train_y)], "test": [(ds.test_x, ds.test_y)]}
            parts["all"] = parts["train"] + parts["test"]
            xs = [x.numpy() for x, _ in parts[split]]
            ys = [_labels_from_data(y) for _, y in parts[split]]
            total = sum(len(x) for x in xs)
            with _progress(f"embedding {total} faces from {data}", total) as advance:
                emb = np.concatenate([embed_uint8(m, x, progress=advance) for x in xs])
            lab: np.ndarray | None = np.concatenate(ys)
            sources = [f"{data}#{split}:{i}" for i in range(len(emb))]
        else:
            got, lab = _embed_folder(m, images, labels, not no_detect)
            emb, sources = got.embeddings, got.paths
        if len(emb) == 0:
            raise UserError("no face could be embedded (see the skipped images above); nothing to index")
        history: list[dict[str, Any]] = []
        after_batch = None
        if eval_queries:
            (emb, lab, sources), (q_emb, q_lab) = _hold_out_queries(emb, lab, sources, eval_queries, seed)
            after_batch = _stream_map_recorder(q_emb, q_lab, history)
        index = HashIndex(
            BSODH(bits, **PRESETS[preset], seed=seed), emb.shape[1], refresh_every=refresh_every
        )
        index.extra = {"model": str(model.resolve()), "class_names": m.class_names, "task": m.task}
        if data is not None:  # labels index the data set's own class / AU names
            index.extra["class_names"] = list(ds.class_names)
            if lab is not None and lab.ndim == 2:
                index.extra["label_names"] = list(ds.class_names)
        else:
            _record_label_names(index, lab, labels)
        _add_in_batches(index, emb, lab, sources, batch, after_batch)
        if eval_queries:
            index.extra[STREAM_MAP_KEY] = history
            index.extra["stream_map_queries"] = eval_queries
        signal = _judge(index, emb)
        index.save(out)
    st = index.stats()
    final = _final_map(history)
    console.print(
        f"indexed {st['items']} item(s) ({st['labelled_items']} labelled, "
        f"{st['hash_updates']} hash update(s)) "
        f"with {bits}-bit codes -> {out}"
        + (f"; stream mAP {final:.4f} ({eval_queries} held-out queries)" if final is not None else ""),
        soft_wrap=True,
    )
    if not no_record:
        details = {
            "command": "build",
            "input": data if data is not None else str(images),
            "split": split,
            "cpu_threads": threads,
        }
        row = _record_index(ctx, out, index, details)
        console.print(f"recorded in the store as index record {row}")
    print_signal_warnings(signal, f"index {out}")


@index_app.command("add")
def add(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A saved index directory."),
    images: Path = typer.Option(..., "--images", help="An image file or a folder of images."),
    labels: Path = typer.Option(
        None, "--labels", help="CSV: file,label or file,AU1,...; labelled batches update the hash."
    ),
    model: Path = typer.Option(
        None, "--model", help="Embedding model (default: the one the index was built with)."
    ),
    batch: int = typer.Option(2000, "--batch", help="Stream batch size n_t."),
    no_detect: bool = typer.Option(
        False, "--no-detect", help="Images are aligned face crops: skip detection."
    ),
    no_record: bool = typer.Option(
        False, "--no-record", help="Do not record the new generation in the store (--db)."
    ),
) -> None:
    """Add photos; labelled ones update BSODH and re-encode the collection, unlabelled are only encoded.
    The saved index is replaced atomically: on any failure it stays exactly as it was.

    The new generation is recorded in the store as a new row for the same path (the earlier rows
    stay: they are the index's history) unless ``--no-record``. ``add`` does not extend the
    "mAP over the stream" curve: ``build``'s held-out queries are not kept with the index (storing
    raw query embeddings would change the index format for a diagnostic), so the curve saved by
    ``build --eval-queries`` is carried over unchanged into the index and the new store row.
    """
    from hashing.index import HashIndex
    from hashing.stream import load_model

    with _user_errors():
        index = HashIndex.load(directory)
        m = load_model(model or index.extra.get("model") or "")
        if m.embedding_dim != index.dim:
            raise UserError(
                f"model embeds {m.embedding_dim}-d features but the index holds {index.dim}-d ones"
            )
        got, lab = _embed_folder(m, images, labels, not no_detect)
        if len(got.embeddings) == 0:
            raise UserError(
                "no face could be embedded (see the skipped images above); the index is unchanged"
            )
        _add_in_batches(index, got.embeddings, lab, got.paths, batch)
        _record_label_names(index, lab, labels)
        signal = _judge(index, got.embeddings)
        index.save(directory)
    st = index.stats()
    console.print(
        f"added {len(got.paths)} item(s) ({'labelled' if lab is not None else 'unlabelled'}); "
        f"index now {st['items']} item(s), {st['hash_updates']} hash update(s), "
        f"stale updates {st['stale_updates']}"
    )
    if not no_record:
        details = {
            "command": "add",
            "input": str(images),
            "added_items": len(got.paths),
            "added_labelled": lab is not None,
        }
        row = _record_index(ctx, directory, index, details)
        console.print(f"recorded in the store as index record {row}")
    print_signal_warnings(signal, f"index {directory}")


@index_app.command("query")
def query(
    directory: Path = typer.Argument(..., help="A saved index directory."),
    image: Path = typer.Argument(..., help="The query photo."),
    k: int = typer.Option(10, "-k", "--k", help="Number of neighbours."),
    radius: int = typer.Option(
        None, "--radius", help="Instead of k-NN: everything within this Hamming distance."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    model: Path = typer.Option(None, "--model", help="Embedding model (default: the index's)."),
    no_detect: bool = typer.Option(False, "--no-detect", help="The image is an aligned face crop."),
) -> None:
    """The nearest indexed faces to a photo, by Hamming distance of their codes."""
    from hashing.index import HashIndex
    from hashing.stream import embed_query, load_model

    if k < 1:
        raise UserError(f"-k must be >= 1, not {k}")
    if not image.is_file():
        raise UserError(f"query image {image} not found")
    with _user_errors():
        index = HashIndex.load(directory)
        m = load_model(model or index.extra.get("model") or "")
        emb = embed_query(m, image, detect=not no_detect)
        if radius is not None:
            res = index.range_search(emb, radius)[0]
            ids, dists = res.ids, res.distances
        else:
            res = index.search(emb, k)
            keep = res.ids[0] >= 0
            ids, dists = res.ids[0][keep], res.distances[0][keep]
    names = index.extra.get("class_names") or []
    pos = index.position_of(ids) if len(ids) else np.zeros(0, np.int64)
    rows = []
    for rank, (i, d, p) in enumerate(zip(ids, dists, pos, strict=True), start=1):
        rows.append(
            {
                "rank": rank,
                "id": int(i),
                "distance": int(d),
                "source": index.sources[p],
                "label": _label(index, p, names),
            }
        )
    if as_json:
        print_json({"query": str(image), "bits": index.n_bits, "results": rows})
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} neighbour(s) of {image.name} ({index.n_bits}-bit codes)")
    for col in ("rank", "id", "distance", "label", "source"):
        table.add_column(col, justify="right" if col in ("rank", "id", "distance") else "left")
    for r in rows:
        table.add_row(str(r["rank"]), str(r["id"]), str(r["distance"]), str(r["label"]), r["source"])
    console.print(table)


def _label(index: Any, pos: int, names: list[str]) -> Any:
    if index.labels is None:
        return None
    lab = index.labels[pos]
    if lab.ndim == 0:
        v = int(lab)
        return None if v < 0 else (names[v] if 0 <= v < len(names) else v)
    if (lab < 0).any():
        return None
    names = index.extra.get("label_names") or names
    on = np.flatnonzero(lab > 0)
    return [names[j] if j < len(names) else int(j) for j in on]


@index_app.command("stats")
def stats(
    directory: Path = typer.Argument(..., help="A saved index directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check every file's sha256."),
) -> None:
    """Size, code length, hash updates and staleness of a saved index."""
    from hashing.index import HashIndex

    with _user_errors():
        st = HashIndex.load(directory, verify=verify).stats()
    if as_json:
        print_json(st)
        return
    from rich.table import Table

    table = Table(title=f"index {directory}", show_header=False)
    for key, val in st.items():
        table.add_row(key, str(val))
    console.print(table)


@index_app.command("record")
def record(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A saved index directory."),
) -> None:
    """Record an already-saved index generation in the store (e.g. after the store was unreachable).

    The index is loaded and verified first, so only a complete, intact generation gets a row; a
    generation the store already holds (same path and manifest sha256) is not recorded twice.
    """
    from automl.commands.common import resolve_db_url
    from automl.store import open_store
    from hashing.index import HashIndex

    with _user_errors():
        index = HashIndex.load(directory, verify=True)
    sha = _generation_sha256(directory)
    store = open_store(resolve_db_url(ctx))
    try:
        path = str(directory.resolve())
        known = [r for r in store.list_indexes() if r["path"] == path and r["sha256"] == sha]
    finally:
        store.close()
    if known:
        console.print(f"{directory} (this generation) is already recorded as index record {known[0]['id']}")
        return
    row = _record_index(ctx, directory, index, {"command": "record"})
    console.print(f"recorded {directory} in the store as index record {row}")


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
