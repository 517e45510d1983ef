"""``automl index``: build, grow, query and inspect an online-hashed face retrieval index.

Thin layer over :mod:`hashing` (which knows nothing about ``automl``): it parses options, loads
data through :func:`automl.data.load_data` where a data spec is given, converts
:class:`hashing.HashingError` into :class:`automl.errors.UserError` (one line, exit 2) and prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer

from automl.commands.common import console, err_console, print_json
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
    index: Any, emb: np.ndarray, labels: np.ndarray | None, sources: list[str], batch: int
) -> None:
    with _progress("hashing + indexing", len(emb)) as advance:
        for s in range(0, len(emb), batch):
            index.add(
                emb[s : s + batch],
                labels=None if labels is None else labels[s : s + batch],
                sources=sources[s : s + batch],
            )
            advance(min(batch, len(emb) - s))


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
) -> None:
    """Embed a data set or a folder of photos, learn BSODH on the labelled stream, save the index."""
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
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        hint = "use 'automl index add'" if (out / MANIFEST).exists() else "pick a new path"
        raise UserError(f"--out {out} already exists and is not empty; {hint}")
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
        _add_in_batches(index, emb, lab, sources, batch)
        index.save(out)
    st = index.stats()
    console.print(
        f"indexed {st['items']} item(s) ({st['labelled_items']} labelled, "
        f"{st['hash_updates']} hash update(s)) "
        f"with {bits}-bit codes -> {out}"
    )


@index_app.command("add")
def add(
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
) -> None:
    """Add photos; labelled ones update BSODH and re-encode the collection, unlabelled are only encoded.
    The saved index is replaced atomically: on any failure it stays exactly as it was."""
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
        index.save(directory)
    st = index.stats()
    console.print(
        f"added {len(got.paths)} item(s) ({'labelled' if lab is not None else 'unlabelled'}); "
        f"index now {st['items']} item(s), {st['hash_updates']} hash update(s), "
        f"stale updates {st['stale_updates']}"
    )


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


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
