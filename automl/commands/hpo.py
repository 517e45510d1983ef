"""``automl hpo RUN_ID|GENOTYPE_FILE``: tune the final training of a searched architecture with Optuna.

The study lives in the store's database unless ``--storage`` names another (``postgresql://...``
for workers on several machines, ``journal:PATH`` for a journal file). ``--trials N`` is the
study's total budget: running the same command on several machines against one PostgreSQL
study shares those N trials among them; ``--workers K`` starts K processes on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

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
    DATA_OPTION,
    DEVICE_OPTION,
    JSON_RESULT_OPTION,
    RUN_PRESET_OPTION,
    SEED_OPTION,
    SPACE_OPTION,
    DeviceName,
    Preset,
)
from automl.hpo_registry import PRUNERS, SAMPLERS


def register(app: typer.Typer) -> None:
    app.command("hpo")(hpo_command)


def print_summary(summary: dict[str, Any], objectives: tuple[str, ...], metric: str) -> None:
    """A study summary: its trials' states, then the best trial (and its TOML) or the Pareto front."""
    from automl.result_tables import best_train_toml, objective_labels, trials_table

    states = ", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items() if v)
    console.print(f"study [bold]{summary['study']}[/]: {states or 'no trials'}")
    shown = objective_labels(objectives, metric)
    if "best" in summary:
        print_table(*trials_table([summary["best"]], shown, "best trial"), left=())
        console.print(
            "[bold]train with it[/]: put this in a TOML file for `automl train ... --config FILE`:\n"
            + escape(best_train_toml(summary)),
            highlight=False,
        )
    elif "pareto_front" in summary:
        print_table(*trials_table(summary["pareto_front"], shown, "Pareto front"), left=())
    else:
        console.print("[yellow]no trial completed[/] (failed trials: `automl runs list --kind train`)")


def hpo_command(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="RUN_ID|GENOTYPE_FILE", help="Search run id or genotype JSON."),
    trials: int = typer.Option(20, "--trials", min=1, help="The study's total trial budget."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes on this machine."),
    storage: str = typer.Option(
        None, "--storage", help="Optuna storage: a SQLAlchemy URL or journal:PATH (default: the store's DB)."
    ),
    study_name: str = typer.Option(None, "--study", help="Study name (default: derived from the target)."),
    objectives_text: str = typer.Option(
        "accuracy", "--objectives", help="accuracy, accuracy,latency or accuracy,params."
    ),
    enqueue_file: Path = typer.Option(None, "--enqueue", help="JSON list of configurations to try first."),
    data: str = DATA_OPTION,
    epochs: int = typer.Option(None, "--epochs", min=1, help="Base epochs (scaled by epochs_scale)."),
    preset_name: Preset = RUN_PRESET_OPTION,
    config_file: Path = CONFIG_OPTION,
    device: DeviceName = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    cpu_threads: int = typer.Option(
        None,
        "--cpu-threads",
        min=1,
        help="torch threads of each worker on CPU (default: search.cpu_threads, else the cores split "
        "between the workers).",
    ),
    sampler: str = typer.Option("tpe", "--sampler", help=", ".join(SAMPLERS) + "."),
    pruner: str = typer.Option("median", "--pruner", help=", ".join(PRUNERS) + " (one objective only)."),
    heartbeat: int = typer.Option(
        None, "--heartbeat", min=0, help="RDB heartbeat seconds (0: off); stale trials are re-run."
    ),
    space: str = SPACE_OPTION,
    json_out: bool = JSON_RESULT_OPTION,
) -> None:
    """Tune lr, weight decay, batch size, epochs, drop-path and width of an architecture's training."""
    import optuna

    from automl.hpo_job import tune_job

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with progress_bar(enabled=not json_out) as progress:
        result = tune_job(
            target, resolve_db_url(ctx), preset=preset_name and preset_name.value, config_file=config_file,
            data=data, seed=seed, device=device and device.value, epochs=epochs, cpu_threads=cpu_threads,
            space=space, trials=trials, workers=workers, storage=storage, study_name=study_name,
            objectives=objectives_text,
            sampler=sampler, pruner=pruner, enqueue=enqueue_file, heartbeat=heartbeat, progress=progress,
        )  # fmt: skip
    summary = result.to_dict()
    if json_out:
        print_json(summary)
    else:
        console.print(
            f"hpo run {result.run_id}: study [bold]{result.study}[/] in {result.storage}, {trials} trials, "
            f"{workers} worker(s), objectives {','.join(result.objectives)}",
            highlight=False,
        )
        print_summary(summary, result.objectives, summary.get("primary_metric", "accuracy"))
    print_signal_warnings(summary.get("signal"), f"hpo run {result.run_id}")
