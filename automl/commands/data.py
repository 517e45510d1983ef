"""``automl data``: write synthetic faces in real formats, preview and describe data sets."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import typer

from automl.commands.common import console, err_console, print_json
from automl.errors import UserError

data_app = typer.Typer(
    help="Face data: synthetic sets in real formats, previews, summaries.", no_args_is_help=True
)


def _show_warnings(caught: list) -> None:
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
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a labelled grid of faces from any data spec."""
    from automl.atomic import check_writable
    from automl.data import load_data
    from automl.data.preview import check_grid_faces, save_grid

    if split not in ("train", "test"):
        raise UserError(f"--split must be train or test, not {split!r}")
    check_grid_faces(n)  # before the data is loaded (n sets how much synthetic data is rendered)
    check_writable(out)  # before loading the data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_data(
            data,
            image_size=size,
            channels=channels,
            fold=fold,
            n=max(n * 4, 200) if data.startswith("synth") else None,
            seed=seed,
        )
    _show_warnings(caught)
    path = save_grid(d, out, n=n, split=split, seed=seed)
    console.print(f"{d.summary()}\nwrote {path}")


@data_app.command("info")
def info(
    data: str = typer.Option("synth:fer", "--data", help="Data spec KIND:PATH."),
    fold: int = typer.Option(None, "--fold", help="CV fold 1..3 for AU sets."),
    n: int = typer.Option(None, "--n", help="Limit the number of samples."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Sizes, classes and label counts of a data set."""
    from rich.table import Table

    from automl.data import load_data

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_data(data, fold=fold, n=n)
    _show_warnings(caught)
    counts = {}
    for split, y in (("train", d.train_y), ("test", d.test_y)):
        if d.task == "au":
            c = y.sum(0).tolist()
        elif y.dim() == 2:
            c = y.argmax(1).bincount(minlength=d.num_outputs).tolist()
        else:
            c = y.bincount(minlength=d.num_outputs).tolist()
        counts[split] = dict(zip(d.class_names, [int(v) for v in c], strict=True))
    payload = {
        "name": d.name,
        "task": d.task,
        "train": len(d.train_x),
        "test": len(d.test_x),
        "channels": d.in_channels,
        "image_size": d.image_size,
        "subjects_train": None if d.train_subjects is None else len(set(d.train_subjects.tolist())),
        "subjects_test": None if d.test_subjects is None else len(set(d.test_subjects.tolist())),
        "counts": counts,
    }
    if as_json:
        print_json(payload)
        return
    console.print(d.summary())
    table = Table("label", "train", "test")
    for name in d.class_names:
        table.add_row(name, str(counts["train"][name]), str(counts["test"][name]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
