"""``automl hpo RUN_ID|GENOTYPE_FILE``: tune the final training of a searched architecture with Optuna.

The study lives in the store's database unless ``--storage`` names another (``postgresql://...``
for workers on several machines, ``journal:PATH`` for a journal file). ``--trials N`` is the
study's total budget: running the same command on several machines against one PostgreSQL
study shares those N trials among them; ``--workers K`` starts K processes on this machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from automl.commands.common import (
    SPACE_OPTION_HELP,
    console,
    err_console,
    guard_genotype_space,
    print_json,
    print_signal_warnings,
    resolve_db_url,
)
from automl.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("hpo")(hpo_command)


def default_study_name(source: str, data: str, objectives: tuple[str, ...]) -> str:
    """Deterministic, so re-running the same command resumes the same study."""
    data_tag = re.sub(r"[^A-Za-z0-9]+", "_", data).strip("_")[:40]
    return f"hpo-{source}-{data_tag}-{'-'.join(objectives)}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _trials_table(rows: list[dict[str, Any]], objectives: tuple[str, ...], title: str) -> Table:
    table = Table(title=title)
    table.add_column("trial", justify="right")
    for name in objectives:
        table.add_column(name, justify="right")
    for name in ("lr", "weight_decay", "batch_size", "epochs_scale", "drop_path", "init_channels"):
        table.add_column(name, justify="right")
    table.add_column("train run", justify="right")
    for row in rows:
        values = row.get("values") or [None] * len(objectives)
        params = row.get("params") or {}
        table.add_row(
            str(row["number"]),
            *(_fmt(v) for v in values),
            *(
                _fmt(params.get(k))
                for k in ("lr", "weight_decay", "batch_size", "epochs_scale", "drop_path", "init_channels")
            ),
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
        console.print(
            "[yellow]no trial completed[/] (see failed trials with `automl runs list --kind train`)"
        )


class _ProgressView:
    """A rich bar of trials taken out of the study budget, with the state counts."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.progress = Progress(
            TextColumn("[bold]hpo[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeElapsedColumn(),
            console=err_console,
        )
        self.task = self.progress.add_task("trials", total=total, states="")

    def __call__(self, counts: dict[str, int], budget: Any) -> None:
        finished = counts.get("complete", 0) + counts.get("pruned", 0) + counts.get("fail", 0)
        states = " ".join(f"{k}:{v}" for k, v in counts.items() if v and k != "waiting")
        self.progress.update(self.task, completed=min(finished - budget.retried, self.total), states=states)


def hpo_command(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., metavar="RUN_ID|GENOTYPE_FILE", help="A search run id or a genotype JSON."
    ),
    trials: int = typer.Option(20, "--trials", min=1, help="The study's total trial budget."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes on this machine."),
    storage: str = typer.Option(
        None, "--storage", help="Optuna storage: a SQLAlchemy URL or journal:PATH (default: the store's DB)."
    ),
    study_name: str = typer.Option(None, "--study", help="Study name (default: derived from the target)."),
    objectives_text: str = typer.Option(
        "accuracy", "--objectives", help="accuracy, accuracy,latency or accuracy,params."
    ),
    enqueue_file: Path = typer.Option(
        None, "--enqueue", help="JSON list of known configurations to try first."
    ),
    data: str = typer.Option(None, "--data", help="KIND:PATH (default: the config's data, e.g. synth:fer)."),
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Base epochs (each trial scales it by epochs_scale)."
    ),
    preset_name: str = typer.Option(
        None, "--preset", help="quick|paper (default: the run's config, or quick)."
    ),
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
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random or nsga2."),
    pruner: str = typer.Option("median", "--pruner", help="median, hyperband or none (one objective only)."),
    heartbeat: int = typer.Option(
        None, "--heartbeat", min=0, help="RDB heartbeat seconds (0: off); stale trials are re-run."
    ),
    space: str = typer.Option(None, "--space", help=SPACE_OPTION_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Tune lr, weight decay, batch size, epochs, drop-path and width of an architecture's training."""
    import optuna

    from automl.commands.train import option_overrides, resolve_config, resolve_target
    from automl.hpo import HPOTarget, parse_objectives, read_enqueue_file, run_study
    from automl.hpo_workers import choose_storage, storage_kind
    from automl.store import genotype_hash, open_store

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = parse_objectives(objectives_text)
    if sampler not in ("tpe", "random", "nsga2"):
        raise UserError(f"unknown sampler '{sampler}' (choose tpe, random or nsga2)")
    if pruner not in ("median", "hyperband", "none"):
        raise UserError(f"unknown pruner '{pruner}' (choose median, hyperband or none)")
    configurations = read_enqueue_file(enqueue_file) if enqueue_file is not None else []
    store_url = resolve_db_url(ctx)
    storage_url = storage or choose_storage(store_url, workers)
    storage_kind(storage_url)  # validates the URL before anything is written
    store = open_store(store_url)

    genotype, search_run_id, stored = resolve_target(store, target)
    allow_user_code = guard_genotype_space(genotype, space, stored)
    overrides = option_overrides(data=data, seed=seed, device=device, epochs=epochs, cpu_threads=cpu_threads)
    if space:  # recorded with the hpo run and every trial's train run: the user's explicit choice
        overrides["search"]["space"] = space
    cfg = resolve_config(stored, preset_name=preset_name, config_file=config_file, overrides=overrides)
    _check_target(genotype, cfg, allow_user_code)

    g_hash = genotype_hash(genotype)
    source = f"run{search_run_id}" if search_run_id is not None else g_hash[:10]
    name = study_name or default_study_name(source, cfg.search.data, objectives)
    architecture_id = _architecture_id(store, search_run_id, g_hash)
    hpo_run_id = store.create_run(
        kind="hpo",
        config={
            **cfg.model_dump(mode="json"),
            "hpo": {
                "study": name,
                "storage": _safe(storage_url),
                "trials": trials,
                "workers": workers,
                "objectives": list(objectives),
                "sampler": sampler,
                "pruner": pruner,
                "enqueued": configurations,
            },
        },
        seed=cfg.search.seed,
        space=genotype.get("space"),
        task=cfg.search.task,
        data=cfg.search.data,
        parent_run_id=search_run_id,
    )
    if architecture_id is None:
        architecture_id = store.add_architecture(hpo_run_id, genotype, role="hpo_target")
    store.set_state(hpo_run_id, "running")
    target_obj = HPOTarget(
        genotype=genotype,
        genotype_hash=g_hash,
        config=cfg.model_dump(mode="json"),
        store_url=store_url,
        hpo_run_id=hpo_run_id,
        objectives=objectives,
        base_epochs=cfg.train.epochs,
        device=cfg.search.device,
        seed=cfg.search.seed,
        cpu_threads=cfg.search.cpu_threads,
        search_run_id=search_run_id,
        architecture_id=architecture_id,
        allow_user_code=allow_user_code,
    )
    view = _ProgressView(trials)
    if not json_out:
        console.print(
            f"hpo run {hpo_run_id}: study [bold]{name}[/] in {_safe(storage_url)}, {trials} trials, "
            f"{workers} worker(s), objectives {','.join(objectives)}",
            highlight=False,
        )
    try:
        with view.progress:
            summary = run_study(
                target_obj,
                storage_url=storage_url,
                study_name=name,
                n_trials=trials,
                workers=workers,
                configurations=configurations,
                sampler=sampler,
                pruner=pruner,
                heartbeat_interval=heartbeat,
                on_progress=view,
            )
    except KeyboardInterrupt:
        store.set_state(hpo_run_id, "interrupted", error="interrupted by the user")
        raise
    except BaseException as exc:
        store.set_state(hpo_run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    summary["hpo_run_id"] = hpo_run_id
    summary["storage"] = _safe(storage_url)
    summary["storage_kind"] = storage_kind(storage_url)
    if "best_value" in summary:
        summary["best_val_metric"] = summary["best_value"]  # what `automl runs list` shows as "best"
    store.set_summary(hpo_run_id, summary)
    store.set_state(hpo_run_id, "completed")
    if json_out:
        print_json(summary)
    else:
        print_summary(summary, objectives, summary.get("primary_metric", "accuracy"))
    print_signal_warnings(summary.get("signal"), f"hpo run {hpo_run_id}")


def _check_target(genotype: dict[str, Any], cfg: Any, allow_user_code: str | None = None) -> None:
    """Fail fast (exit 2) on a genotype the space rejects, before any worker starts."""
    from search_spaces import UserCodeRefusedError, create_space

    try:
        create_space(genotype["space"], allow_user_code=allow_user_code).validate_genotype(genotype)
    except UserCodeRefusedError as exc:
        raise UserError(str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"the genotype is not valid for its space: {exc}") from None
    from automl.data.spec import parse_spec

    try:
        parse_spec(cfg.search.data)
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(f"bad --data '{cfg.search.data}': {exc}") from None


def _architecture_id(store: Any, run_id: int | None, g_hash: str) -> int | None:
    if run_id is None:
        return None
    for arch in reversed(store.list_architectures(run_id)):
        if arch["genotype_hash"] == g_hash:
            return int(arch["id"])
    return None


def _safe(url: str) -> str:
    from automl.redact import safe_url

    return safe_url(url)
