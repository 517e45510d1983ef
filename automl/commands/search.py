"""``automl search``: run (or resume) an architecture search and record it in the store."""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands.common import (
    console,
    print_json,
    print_signal_warnings,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import (
    CONFIG_OPTION,
    CPU_THREADS_OPTION,
    DATA_OPTION,
    DEVICE_OPTION,
    EPOCHS_SCALE_OPTION,
    JSON_RESULT_OPTION,
    SEARCH_PRESET_OPTION,
    SEED_OPTION,
    DeviceName,
    Preset,
    StrategyName,
    TaskKind,
)


def register(app: typer.Typer) -> None:
    app.command("search")(search)


def search(
    ctx: typer.Context,
    space: str = typer.Option(
        None, "--space",
        help="face (the quick preset's default), darts, mobilenet, or nni:module:ClassName / "
        "nni:path/file.py:ClassName "
        "(an NNI ModelSpace; needs the 'nni' extra).",
    ),
    task: TaskKind = typer.Option(None, "--task", help="fer or au (default: implied by --data)."),
    data: str = DATA_OPTION,
    strategy: StrategyName = typer.Option(None, "--strategy", help="ddpnas (default), darts or random."),
    preset: Preset = SEARCH_PRESET_OPTION,
    config: Path = CONFIG_OPTION,
    epochs_scale: float = EPOCHS_SCALE_OPTION,
    device: DeviceName = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    db: str = typer.Option(None, "--db", help="Store URL (overrides the global --db)."),
    resume: int = typer.Option(None, "--resume", help="Continue the killed search RUN_ID."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and plan as JSON."),
    as_json: bool = JSON_RESULT_OPTION,
    max_mflops: float = typer.Option(None, "--max-mflops", help="FLOPs budget (millions of multiply-"
                                     "adds) of the found network at the train size (mobilenet, face)."),
    max_params: float = typer.Option(None, "--max-params", help="Parameter budget in millions."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes (torch.distributed: "
                              "gloo on CPU, NCCL on GPUs; one GPU per process)."),
    cpu_threads: int = CPU_THREADS_OPTION,
) -> None:
    """Search an architecture (default: DDPNAS on synth:fer, quick preset)."""
    db_url = resolve_db_url(ctx, db)
    if nproc > 1 and not dry_run:
        from automl.nas.distributed import env_world_size

        if env_world_size() == 1:
            from automl.cli import current_argv
        from automl.nas.torchrun import run_ranks

        raise typer.Exit(run_ranks(nproc, current_argv(), db_url))  # this command, as nproc ranks
    from automl.nas.job import resume_config, search_config, search_job

    if resume is not None:
        cfg = resume_config(db_url, resume, device=device and device.value, cpu_threads=cpu_threads)
    else:
        cfg = search_config(
            preset=preset.value,
            config_file=config,
            space=space,
            task=task.value if task else None,
            data=data,
            strategy=strategy.value if strategy else None,
            epochs_scale=epochs_scale,
            device=device.value if device else None,
            seed=seed,
            max_mflops=max_mflops,
            max_params=max_params,
            cpu_threads=cpu_threads,
        )
    if dry_run:
        from automl.nas.search import dry_run_plan

        print_json({"config": cfg.model_dump(mode="json"), "plan": dry_run_plan(cfg)})
        return
    with progress_bar(enabled=not as_json) as progress:
        result = search_job(cfg, db_url, resume=resume, progress=progress)
    if result.rank != 0:
        return
    _print_result(result.to_dict(), as_json)


def _print_result(result: dict, as_json: bool) -> None:
    from automl.result_tables import search_lines

    what = f"search run {result['run_id']}'s supernet"
    if as_json:
        print_json(result)
    else:
        run_id, seconds = result["run_id"], result["wall_time"]
        console.print(f"[bold green]search run {run_id} completed[/] in {seconds:.1f} s")
        for line in search_lines(result):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(f"run id: {run_id}  (train it: automl train {run_id})")
    print_signal_warnings(result.get("signal"), what)
