"""``automl train GENOTYPE_FILE|RUN_ID``: train a searched architecture from scratch.

The command parses, calls :func:`automl.train_job.train_job` and prints; the configuration
layering (:func:`automl.train_job.train_config`), the run record, distillation, the concatenated
students and the attention maps all live in the library (see :mod:`automl.train_job`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from automl.commands.common import (
    console,
    print_json,
    print_signal_warnings,
    print_table,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import (
    CONFIG_OPTION,
    CPU_THREADS_OPTION,
    DATA_OPTION,
    DEVICE_OPTION,
    JSON_RESULT_OPTION,
    RUN_PRESET_OPTION,
    SEED_OPTION,
    SPACE_OPTION,
    DeviceName,
    Preset,
)
from automl.errors import UserError

OCCLUDE_PARTS = ("none", "lower", "upper")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def print_result(result: Any) -> None:
    """The tables of a :class:`automl.train_job.TrainJobResult` (:func:`automl.result_tables.train_tables`:
    test metrics, per-AU F1, confusion), where it was written and how to export it."""
    from automl.result_tables import fmt, train_tables

    for name, table in train_tables(result).items():
        print_table(*table, left=() if name == "per_au_f1" else None)
    console.print(f"checkpoint: {result.checkpoint}")
    console.print(f"export it with: automl export {result.run_id} --format torchscript")
    if result.concat:
        test = result.concat["test_metrics"].get(result.primary_metric)
        with_ckpt = result.concat["checkpoint"]
        console.print(f"concatenated students: test {result.primary_metric} {fmt(test)} (with {with_ckpt})")


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
    data: str = DATA_OPTION,
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Training epochs (default: the config's train.epochs)."
    ),
    device: DeviceName = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    cpu_threads: int = CPU_THREADS_OPTION,
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
    preset_name: Preset = RUN_PRESET_OPTION,
    config_file: Path = CONFIG_OPTION,
    space: str = SPACE_OPTION,
    json_out: bool = JSON_RESULT_OPTION,
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
