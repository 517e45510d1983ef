"""``automl data``: write synthetic faces in real formats, preview and describe data sets."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from automl.commands.common import console, err_console, print_json, print_table
from automl.commands.options import FIXED_SEED_OPTION, JSON_TABLE_OPTION
from automl.errors import UserError

data_app = typer.Typer(
    help="Face data: synthetic sets in real formats, previews, summaries.", no_args_is_help=True
)


@contextmanager
def _warnings_shown() -> Iterator[None]:
    """The warnings of loading a data set, caught and printed on stderr, one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        err_console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)


@data_app.command("synth")
def synth(
    fmt: str = typer.Option(
        ..., "--format", help="fer2013 | ferplus | rafdb | affectnet | bp4d | disfa | folder"
    ),
    out: Path = typer.Option(..., "--out", help="Directory to write the data set into."),
    n: int = typer.Option(2000, "--n", help="Number of faces (frames for bp4d/disfa)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes the same files."),
) -> None:
    """Write synthetic faces in the exact layout of a real data set (readers then run on it)."""
    from automl.atomic import check_writable
    from automl.config import check_seed
    from automl.data.synthface.writer import FORMATS, write_format

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    if n < 10:
        raise UserError(f"--n must be at least 10, not {n}")
    check_seed(seed)  # before --out is created
    if os.path.exists(out) and not os.path.isdir(out):  # os.path: False, not EACCES, for no access
        raise UserError(f"--out {out} exists and is not a directory")
    check_writable(out / "SYNTHETIC.txt")  # a read-only or unreachable --out fails before rendering
    with console.status(f"rendering {n} synthetic faces as {fmt}"):
        info = write_format(fmt, out, n=n, seed=seed)
    console.print(
        f"wrote synthetic {fmt} to {out}: "
        + ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("format", "out"))
    )
    console.print(f"read it with: --data {fmt}:{out}")


@data_app.command("preview")
def preview(
    data: str = typer.Option(
        "synth:fer", "--data", help="Data spec KIND:PATH (e.g. synth:fer, rafdb:/data/raf)."
    ),
    out: Path = typer.Option(Path("grid.png"), "--out", help="Image file to write (png/jpg)."),
    n: int = typer.Option(64, "--n", help="Faces in the grid: 1 to 10,000."),
    split: str = typer.Option("train", "--split", help="train | test"),
    size: int = typer.Option(None, "--size", help="Resize faces to this many pixels."),
    channels: int = typer.Option(None, "--channels", help="1 (grey) or 3 (RGB)."),
    fold: int = typer.Option(None, "--fold", help="CV fold 1..3 for AU sets."),
    seed: int = FIXED_SEED_OPTION,
) -> None:
    """Write a labelled grid of faces from any data spec."""
    from automl.atomic import check_writable
    from automl.data import load_data
    from automl.data.preview import check_grid_faces, save_grid

    if split not in ("train", "test"):
        raise UserError(f"--split must be train or test, not {split!r}")
    check_grid_faces(n)  # before the data is loaded (n sets how much synthetic data is rendered)
    check_writable(out)  # before loading the data
    with _warnings_shown():
        d = load_data(
            data,
            image_size=size,
            channels=channels,
            fold=fold,
            n=max(n * 4, 200) if data.startswith("synth") else None,
            seed=seed,
        )
    path = save_grid(d, out, n=n, split=split, seed=seed)
    console.print(f"{d.summary()}\nwrote {path}")


@data_app.command("info")
def info(
    data: str = typer.Option("synth:fer", "--data", help="Data spec KIND:PATH."),
    fold: int = typer.Option(None, "--fold", help="CV fold 1..3 for AU sets."),
    n: int = typer.Option(None, "--n", help="Limit the number of samples."),
    as_json: bool = JSON_TABLE_OPTION,
) -> None:
    """Sizes, classes and label counts of a data set."""
    from automl.data import load_data

    with _warnings_shown():
        d = load_data(data, fold=fold, n=n)
    payload = d.describe()
    if as_json:
        print_json(payload)
        return
    console.print(d.summary())
    counts = payload["counts"]
    rows = [[name, str(counts["train"][name]), str(counts["test"][name])] for name in d.class_names]
    print_table(None, ["label", "train", "test"], rows, left=("label", "train", "test"))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
