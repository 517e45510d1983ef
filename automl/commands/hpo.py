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
from rich.table import Table

from automl.commands.common import (
    SPACE_OPTION_HELP,
    console,
    print_json,
    print_signal_warnings,
    progress_bar,
    resolve_db_url,
)
from automl.hpo_registry import PRUNERS, SAMPLERS

HP_COLUMNS = ("lr", "weight_decay", "batch_size", "epochs_scale", "drop_path", "init_channels")


def register(app: typer.Typer) -> None:
    app.command("hpo")(hpo_command)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _trials_table(rows: list[dict[str, Any]], objectives: tuple[str, ...], title: str) -> Table:
    table = Table(title=title)
    table.add_column("trial", justify="right")
    for name in objectives:
        table.add_column(name, justify="right")
    for name in HP_COLUMNS:
        table.add_column(name, justify="right")
    table.add_column("train run", justify="right")
    for row in rows:
        values = row.get("values") or [None] * len(objectives)
        params = row.get("params") or {}
        table.add_row(
            str(row["number"]),
            *(_fmt(v) for v in values),
            *(_fmt(params.get(k)) for k in HP_COLUMNS),
            _fmt(row.get("train_run_id")),
        )
    return table


def print_summary(summary: dict[str, Any], objectives: tuple[str, ...], metric: str) -> None:
    counts = summary.get("counts", {})
    states = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    console.print(f"study [bold]{summary['study']}[/]: {states or 'no trials'}")
    shown = tuple(
        metric if o == "accuracy" else f"{o} ({'ms' if o == 'latency' else 'M'})" for o in objectives
    )
    if "best" in summary:
        console.print(_trials_table([summary["best"]], shown, "best trial"))
        params = dict(summary["best_params"])
        params["epochs"] = summary["best"].get("epochs")
        snippet = "\n".join(
            f"{k} = {params[k]!r}"
            for k in ("epochs", "lr", "weight_decay", "batch_size", "drop_path", "init_channels")
            if params.get(k) is not None
        )
        console.print(
            "[bold]train with it[/]: put this in a TOML file for `automl train ... --config FILE`:"
            f"\n\\[train]\n{snippet}",
            highlight=False,
        )
    elif "pareto_front" in summary:
        console.print(_trials_table(summary["pareto_front"], shown, "Pareto front"))
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
    data: str = typer.Option(None, "--data", help="KIND:PATH (default: the config's data, e.g. synth:fer)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Base epochs (scaled by epochs_scale)."),
    preset_name: str = typer.Option(None, "--preset", help="quick|paper (default: the run's config)."),
    config_file: Path = typer.Option(None, "--config", help="TOML file layered over the preset."),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(None, "--seed", help="Seed of the sampler and of every trial's training."),
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
    space: str = typer.Option(None, "--space", help=SPACE_OPTION_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Tune lr, weight decay, batch size, epochs, drop-path and width of an architecture's training."""
    import optuna

    from automl.hpo_job import tune_job

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with progress_bar(enabled=not json_out) as progress:
        result = tune_job(
            target, resolve_db_url(ctx), preset=preset_name, config_file=config_file, data=data, seed=seed,
            device=device, epochs=epochs, cpu_threads=cpu_threads, space=space, trials=trials,
            workers=workers, storage=storage, study_name=study_name, objectives=objectives_text,
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
