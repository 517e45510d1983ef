"""``automl search``: run (or resume) an architecture search and record it in the store."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from automl.commands.common import console, print_json, print_signal_warnings, resolve_db_url
from automl.config import Config, load_config, validate_config
from automl.errors import UserError

AU_KINDS = ("bp4d", "disfa")


class Space(StrEnum):
    darts = "darts"
    mobilenet = "mobilenet"
    face = "face"


class TaskKind(StrEnum):
    fer = "fer"
    au = "au"


class StrategyName(StrEnum):
    ddpnas = "ddpnas"
    darts = "darts"
    random = "random"


class Preset(StrEnum):
    quick = "quick"
    paper = "paper"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def task_of_data(spec: str) -> str:
    """The task a data spec implies: AU sets (synth:au, BP4D, DISFA) are multi-label, the rest FER."""
    kind, _, path = spec.strip().partition(":")
    kind = kind.lower()
    if kind in AU_KINDS or (kind == "synth" and path.lower().startswith("au")):
        return "au"
    return "fer"


def build_config(
    *,
    preset: str = "quick",
    config_file: Path | None = None,
    space: str | None = None,
    task: str | None = None,
    data: str | None = None,
    strategy: str | None = None,
    epochs_scale: float | None = None,
    device: str | None = None,
    seed: int | None = None,
) -> Config:
    """Preset, then ``--config``, then the command-line options (the same layering everywhere).

    A user's NNI space (``nni:...``) must come from ``space`` (``--space``): a config file naming
    one is refused, so a search run's stored ``search.space`` is always the user's explicit choice.
    """
    search: dict[str, Any] = {}
    for key, value in (
        ("space", space),
        ("data", data),
        ("strategy", strategy),
        ("epochs_scale", epochs_scale),
        ("device", device),
        ("seed", seed),
        ("task", task),
    ):
        if value is not None:
            search[key] = value
    cfg = load_config(preset, config_file, {"search": search} if search else None)
    if cfg.search.space.startswith("nni:") and cfg.search.space != space:
        # A config file is data: only --space may name a user's module to import (and run).
        raise UserError(
            f"{config_file or 'the preset'} sets search.space = '{cfg.search.space}', which names user "
            f"code to import; automl runs it only when you choose it yourself: pass --space "
            f"{cfg.search.space} to allow it"
        )
    if task is None and data is not None:
        cfg.search.task = task_of_data(cfg.search.data)  # type: ignore[assignment]
    elif task is not None and data is None and task_of_data(cfg.search.data) != task:
        # `--task au` alone means the embedded AU set, as `--task fer` alone means synth:fer.
        cfg.search.data = f"synth:{task}"
    return cfg


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        transient=False,
    )


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def execute_search(
    cfg: Config, db_url: str, *, resume_run: int | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Create (or reopen) the run, search with a progress bar, and mark the run's final state."""
    import torch

    from automl.nas import distributed
    from automl.nas.search import resolve_device

    ctx = None
    if distributed.env_world_size() > 1:  # one rank of `--nproc N` / torchrun
        ctx = distributed.init_from_env(resolve_device(cfg.search.device).type)
    default_dtype = torch.get_default_dtype()  # search.precision = float64 changes it
    try:
        return _execute(cfg, db_url, resume_run, show_progress, ctx)
    finally:
        torch.set_default_dtype(default_dtype)
        if ctx is not None:
            distributed.shutdown()


def _execute(
    cfg: Config, db_url: str, resume_run: int | None, show_progress: bool, ctx: Any
) -> dict[str, Any]:
    from automl.nas import distributed
    from automl.nas.recorder import MemoryRecorder
    from automl.nas.search import SearchLoop
    from automl.store import open_store
    from automl.store.recorder import StoreRecorder

    if ctx is not None and not ctx.is_main:
        # Only rank 0 writes the store; the others learn the run id and directory from it.
        run_id, run_dir = distributed.broadcast_object(None)  # type: ignore[misc]
        loop = distributed.distributed_loop_class()(cfg, MemoryRecorder(), run_dir=run_dir, ctx=ctx)
        outcome = loop.run(resume=resume_run is not None)
        assert outcome is not None
        return {"run_id": run_id, "genotype": outcome.genotype, "search_epochs": outcome.epochs,
                "wall_time": outcome.wall_time, "cost": outcome.summary.get("cost"),
                "metric_name": outcome.summary.get("metric_name"), "rank": ctx.rank}

    store = open_store(db_url)
    if resume_run is None:
        run_id = store.create_run(
            kind="search",
            config=cfg.model_dump(mode="json"),
            seed=cfg.search.seed,
            space=cfg.search.space,
            task=cfg.search.task,
            strategy=cfg.search.strategy,
            data=cfg.search.data,
        )
    else:
        run_id = resume_run
    run_dir = store.run_dir(run_id)
    if ctx is not None:
        distributed.broadcast_object((run_id, str(run_dir)))
        store.set_summary(run_id, {"world_size": ctx.world_size, "backend": ctx.backend})
    recorder = StoreRecorder(store, run_id)
    progress = _progress_bar() if show_progress else None
    bar = None

    def on_progress(info: dict[str, Any]) -> None:
        if progress is None or bar is None:
            return
        metric = info.get("metric_name", "val")
        text = (
            f"{info.get('phase', '')} round {info.get('round', '-')} "
            f"ops {info.get('surviving_ops', '-')} {metric} {info.get('val_metric', float('nan')):.3f}"
        )
        progress.update(bar, completed=info["epoch"], info=text, eta=_fmt_eta(info.get("eta_seconds")))

    try:
        if ctx is None:
            loop = SearchLoop(cfg, recorder, run_dir=run_dir, progress=on_progress)
        else:
            loop = distributed.distributed_loop_class()(
                cfg, recorder, run_dir=run_dir, progress=on_progress, ctx=ctx
            )
        total = loop.strategy.total_epochs()
        if progress is not None:
            progress.start()
            bar = progress.add_task(
                f"search #{run_id} {cfg.search.strategy}", total=total, info="starting", eta="?"
            )
        outcome = loop.run(resume=resume_run is not None)
    except KeyboardInterrupt:
        store.set_state(run_id, "interrupted", error="interrupted by the user (Ctrl-C)")
        raise
    except UserError as exc:
        store.set_state(run_id, "failed", error=str(exc))
        raise
    except Exception as exc:
        store.set_state(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if progress is not None:
            progress.stop()
    assert outcome is not None
    return {
        "run_id": run_id,
        "genotype": outcome.genotype,
        "search_epochs": outcome.epochs,
        "wall_time": outcome.wall_time,
        "cost": outcome.summary.get("cost"),
        "metric_name": outcome.summary.get("metric_name"),
        "signal": outcome.summary.get("signal"),
    }


def launch_distributed(nproc: int, db_url: str) -> int:
    """Re-run this very command as ``nproc`` torchrun ranks on this machine; their exit code."""
    import subprocess
    import sys

    from automl.cli import current_argv

    args = [a for a in _without_option(current_argv(), "--nproc")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "automl", "--db", db_url, *args]
    return subprocess.call(cmd)


def _without_option(argv: list[str], name: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search(
        ctx: typer.Context,
        space: str = typer.Option(
            None, "--space",
            help="darts (default), mobilenet, face, or nni:module:ClassName / nni:path/file.py:ClassName "
            "(an NNI ModelSpace; needs the 'nni' extra).",
        ),
        task: TaskKind = typer.Option(None, "--task", help="fer or au (default: implied by --data)."),
        data: str = typer.Option(None, "--data", help="KIND:PATH, e.g. synth:fer, fer2013:/p/fer2013.csv."),
        strategy: StrategyName = typer.Option(None, "--strategy", help="ddpnas (default), darts or random."),
        preset: Preset = typer.Option(Preset.quick, "--preset", help="quick (minutes on a CPU) or paper."),
        config: Path = typer.Option(None, "--config", help="TOML file layered over the preset."),
        epochs_scale: float = typer.Option(
            None,
            "--epochs-scale",
            help="DARTS/random: multiply the epochs; DDPNAS: multiply the steps per epoch.",
        ),
        device: DeviceName = typer.Option(None, "--device", help="auto, cpu or cuda."),
        seed: int = typer.Option(None, "--seed", help="Random seed (default 0)."),
        db: str = typer.Option(None, "--db", help="Store URL (overrides the global --db)."),
        resume: int = typer.Option(None, "--resume", help="Continue the killed search RUN_ID."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and plan as JSON."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (no progress bar)."),
        max_mflops: float = typer.Option(None, "--max-mflops", help="FLOPs budget (millions of multiply-"
                                         "adds) of the found network at the train size (mobilenet, face)."),
        max_params: float = typer.Option(None, "--max-params", help="Parameter budget in millions."),
        nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes (torch.distributed: "
                                  "gloo on CPU, NCCL on GPUs; one GPU per process)."),
        cpu_threads: int = typer.Option(
            None, "--cpu-threads", min=1, help="torch threads on CPU (default: search.cpu_threads)."
        ),
    ) -> None:
        """Search an architecture (default: DDPNAS on synth:fer, quick preset)."""
        db_url = resolve_db_url(ctx, db)
        if nproc > 1 and not dry_run:
            from automl.nas.distributed import env_world_size

            if env_world_size() == 1:
                raise typer.Exit(launch_distributed(nproc, db_url))
        if resume is not None:
            from automl.store import open_store

            run = open_store(db_url).get_run(resume)
            if run.get("kind") != "search":
                raise UserError(f"run {resume} is a {run.get('kind')} run, not a search")
            if run.get("state") == "completed":
                raise UserError(f"search run {resume} is already completed (nothing to resume)")
            cfg = validate_config(run.get("config") or {}, f"stored config of run {resume}")
            if device is not None:
                cfg.search.device = device.value  # type: ignore[assignment]
        else:
            cfg = build_config(
                preset=preset.value,
                config_file=config,
                space=space,
                task=task.value if task else None,
                data=data,
                strategy=strategy.value if strategy else None,
                epochs_scale=epochs_scale,
                device=device.value if device else None,
                seed=seed,
            )
            if max_mflops is not None or max_params is not None:
                cfg = validate_config(
                    {**cfg.model_dump(), "search": {**cfg.search.model_dump(), "max_mflops": max_mflops,
                                                    "max_params": max_params}},
                    "command line",
                )
        if cpu_threads is not None:
            cfg.search.cpu_threads = cpu_threads
        if dry_run:
            from automl.nas.search import dry_run_plan

            print_json({"config": cfg.model_dump(mode="json"), "plan": dry_run_plan(cfg)})
            return
        try:
            result = execute_search(cfg, db_url, resume_run=resume, show_progress=not as_json)
        except KeyboardInterrupt:
            console.print(
                "[yellow]search interrupted[/]: continue it with [bold]automl search --resume <RUN_ID>[/]"
            )
            raise
        if result.get("rank", 0) != 0:
            return
        what = f"search run {result['run_id']}'s supernet"
        if as_json:
            print_json(result)
            print_signal_warnings(result.get("signal"), what)
            return
        console.print(
            f"[bold green]search run {result['run_id']} completed[/] in {result['wall_time']:.1f} s"
        )
        g = result["genotype"]
        for key in ("normal", "reduce"):  # DARTS cells one line each; other spaces as compact JSON
            if key in g:
                console.print(f"{key}: " + ", ".join(f"{op}<-{src}" for op, src in g[key]), highlight=False)
        console.print(json.dumps(g, separators=(",", ":")), highlight=False, soft_wrap=True)
        cost = result.get("cost") or {}
        if "params" in cost:
            console.print(
                f"params {cost['params'] / 1e6:.3f} M, {cost.get('mflops', 0):.1f} MFLOPs (train size)"
            )
        console.print(f"run id: {result['run_id']}  (train it: automl train {result['run_id']})")
        print_signal_warnings(result.get("signal"), what)
