"""``automl search``: run (or resume) an architecture search and record it in the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from automl.commands.common import (
    console,
    print_json,
    print_signal_warnings,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import DeviceName, Preset, StrategyName, TaskKind


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
            help="face (the quick preset's default), darts, mobilenet, or nni:module:ClassName / "
            "nni:path/file.py:ClassName "
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
        from automl.nas.job import resume_config, search_config, search_job

        if resume is not None:
            cfg = resume_config(db_url, resume)
            if device is not None:
                cfg.search.device = device.value  # type: ignore[assignment]
            if cpu_threads is not None:
                cfg.search.cpu_threads = cpu_threads
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
    what = f"search run {result['run_id']}'s supernet"
    if as_json:
        print_json(result)
        print_signal_warnings(result.get("signal"), what)
        return
    console.print(f"[bold green]search run {result['run_id']} completed[/] in {result['wall_time']:.1f} s")
    g = result["genotype"]
    for key in ("normal", "reduce"):  # DARTS cells one line each; other spaces as compact JSON
        if key in g:
            console.print(f"{key}: " + ", ".join(f"{op}<-{src}" for op, src in g[key]), highlight=False)
    console.print(json.dumps(g, separators=(",", ":")), highlight=False, soft_wrap=True)
    cost = result.get("cost") or {}
    if "params" in cost:
        console.print(f"params {cost['params'] / 1e6:.3f} M, {cost.get('mflops', 0):.1f} MFLOPs (train size)")
    console.print(f"run id: {result['run_id']}  (train it: automl train {result['run_id']})")
    print_signal_warnings(result.get("signal"), what)
