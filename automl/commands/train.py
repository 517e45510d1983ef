"""``automl train GENOTYPE_FILE|RUN_ID``: train a searched architecture from scratch.

The command parses, calls :func:`automl.train_job.train_job` and prints; the configuration
layering (:func:`automl.train_job.train_config`), the run record, distillation, the concatenated
students and the attention maps all live in the library (see :mod:`automl.train_job`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from automl.commands.common import (
    SPACE_OPTION_HELP,
    console,
    print_json,
    print_signal_warnings,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import DeviceName, Preset
from automl.errors import UserError

OCCLUDE_PARTS = ("none", "lower", "upper")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def print_result(result: Any) -> None:
    """Tables of a :class:`automl.train_job.TrainJobResult`: test metrics, per-AU F1, confusion."""
    metrics, primary = result.metrics, result.primary_metric
    table = Table(title=f"train run {result.run_id}: test split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(primary, _fmt(metrics.get(primary)))
    table.add_row("loss", _fmt(metrics.get("loss")))
    table.add_row("params (M)", _fmt(result.params / 1e6))
    table.add_row("MFLOPs", _fmt(result.mflops))
    table.add_row("epochs", str(len(result.history)))
    table.add_row("wall time (s)", _fmt(result.wall_time))
    console.print(table)
    if isinstance(metrics.get("per_au_f1"), dict):
        au = Table(title="per-AU F1")
        for name in metrics["per_au_f1"]:
            au.add_column(name, justify="right")
        au.add_row(*(_fmt(v) for v in metrics["per_au_f1"].values()))
        console.print(au)
    if isinstance(metrics.get("confusion"), list):
        names = result.class_names or [str(i) for i in range(len(metrics["confusion"]))]
        cm = Table(title="confusion (rows: true, columns: predicted)")
        cm.add_column("")
        for name in names:
            cm.add_column(name[:8], justify="right")
        for name, row in zip(names, metrics["confusion"], strict=False):
            cm.add_row(name, *(str(int(v)) for v in row))
        console.print(cm)
    console.print(f"checkpoint: {result.checkpoint}")
    console.print(f"export it with: automl export {result.run_id} --format torchscript")
    if result.concat:
        test = result.concat["test_metrics"].get(primary)
        with_ckpt = result.concat["checkpoint"]
        console.print(f"concatenated students: test {primary} {_fmt(test)} (with {with_ckpt})")


def _check_options(occlude: str, distill_from: str | None, concat_with: str | None) -> None:
    if occlude not in OCCLUDE_PARTS:
        raise UserError(f"--occlude must be one of {', '.join(OCCLUDE_PARTS)}, not {occlude!r}")
    if distill_from is not None and occlude == "none":
        raise UserError(
            "--distill-from trains a student on occluded faces: add --occlude lower or --occlude upper"
        )
    if concat_with is not None and distill_from is None:
        raise UserError(
            "--concat-with joins two distilled students: add --distill-from TEACHER and --occlude"
        )


def train_command(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="GENOTYPE_FILE|RUN_ID", help="JSON genotype file or a run id."),
    data: str = typer.Option(None, "--data", help="KIND:PATH, e.g. synth:fer (default: the config's data)."),
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Training epochs (default: the config's train.epochs)."
    ),
    device: DeviceName = typer.Option(None, "--device", help="auto, cpu or cuda (default: the config's)."),
    seed: int = typer.Option(None, "--seed", help="Seed of weights, batches and augmentation."),
    cpu_threads: int = typer.Option(
        None, "--cpu-threads", min=1, help="torch threads on CPU (default: the config's search.cpu_threads)."
    ),
    out: Path = typer.Option(None, "--out", help="Also write the checkpoint + sidecar into this directory."),
    occlude: str = typer.Option(
        "none", "--occlude",
        help="Hide the lower or upper half of every face (train and test): none|lower|upper.",
    ),  # fmt: skip
    distill_from: str = typer.Option(
        None, "--distill-from", metavar="TEACHER",
        help="Train run id or checkpoint of a teacher trained on full faces (needs --occlude).",
    ),  # fmt: skip
    temperature: float = typer.Option(4.0, "--temperature", help="Soft-target temperature T (distillation)."),
    kd_weight: float = typer.Option(1.0, "--kd-weight", min=0, help="Weight of the soft-target term."),
    triplet_weight: float = typer.Option(
        0.0, "--triplet-weight", min=0, help="Weight of the triplet term (0: soft targets only)."
    ),
    margin: float = typer.Option(0.2, "--margin", help="Triplet margin (L2-normalised embeddings)."),
    concat_with: str = typer.Option(
        None, "--concat-with", metavar="CKPT",
        help="Train run id or checkpoint of a second distilled student: also fit a classifier on both "
        "students' concatenated embeddings (needs --distill-from).",
    ),  # fmt: skip
    save_attention: Path = typer.Option(
        None, "--save-attention", metavar="DIR",
        help="Write the AU attention maps of a few test faces as PNGs.",
    ),  # fmt: skip
    preset_name: Preset = typer.Option(
        None, "--preset", help="quick|paper (default: the run's stored config, or quick for a file)."
    ),
    config_file: Path = typer.Option(None, "--config", help="TOML file layered over the preset."),
    space: str = typer.Option(None, "--space", help=SPACE_OPTION_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a searched architecture from scratch, evaluate it, store the checkpoint."""
    from automl.distill_setup import DistillOptions
    from automl.store import open_store
    from automl.train_job import train_config, train_job

    _check_options(occlude, distill_from, concat_with)
    distill = None
    if distill_from is not None:
        distill = DistillOptions(distill_from, temperature, kd_weight, triplet_weight, margin)
    store = open_store(resolve_db_url(ctx))
    cfg = train_config(
        target, store, preset=preset_name.value if preset_name else None, config_file=config_file,
        data=data, seed=seed, device=device.value if device else None, epochs=epochs,
        cpu_threads=cpu_threads, space=space,
    )  # fmt: skip
    with progress_bar(enabled=not json_out) as progress:
        result = train_job(
            target, store, config=cfg, progress=progress, space=space, occlude=occlude, distill=distill,
            concat_with=concat_with, save_attention=save_attention, out=out,
        )  # fmt: skip
    if json_out:
        print_json(result.to_dict())
    else:
        print_result(result)
        if result.attention_files:
            console.print(f"attention maps: {len(result.attention_files)} PNGs in {save_attention}")
    print_signal_warnings(result.signal, f"train run {result.run_id}")
