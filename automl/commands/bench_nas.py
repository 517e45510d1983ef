"""``automl bench nas``: DDPNAS vs DARTS (first order) vs random search with weight sharing.

All three search the same space on the same data, device and preset budget, in one process, one
after the other; then every found architecture, and for reference a handful of uniformly random
architectures, is retrained with the same short schedule and evaluated on the test split. The
figures that matter are ratios measured side by side: DDPNAS search time / DARTS search time, and
the DDPNAS architecture's accuracy against the random architectures' mean.

``--with-nni`` adds NNI's own DARTS and RandomOneShot (:mod:`automl.nas.nni_baselines`) on the
same space, data, device and budgets, after ours in the same run, retrained the same way: an
outside reference for both the search time and the found architecture's accuracy.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import console, write_report
from automl.commands.search import DeviceName, Preset, build_config
from automl.config import Config
from automl.errors import UserError

STRATEGIES = ("ddpnas", "darts", "random")


def _search(cfg: Config, strategy: str, data: Any, device: str) -> dict[str, Any]:
    from automl.nas.recorder import MemoryRecorder
    from automl.nas.search import SearchLoop

    c = cfg.model_copy(deep=True)
    c.search.strategy = strategy  # type: ignore[assignment]
    rec = MemoryRecorder()
    cpu_started = time.process_time()
    started = time.perf_counter()
    with console.status(f"searching with {strategy}...") as status:

        def progress(info: dict[str, Any]) -> None:
            status.update(
                f"searching with {strategy}: epoch {info['epoch']}/{info['total']} "
                f"val {info['val_metric']:.3f} ETA {info.get('eta_seconds', 0):.0f} s"
            )

        outcome = SearchLoop(c, rec, data=data, device=device, progress=progress).run()
    total = time.perf_counter() - started
    cpu_total = time.process_time() - cpu_started
    assert outcome is not None
    return {
        "strategy": strategy,
        "search_seconds": total,
        # CPU seconds of this process: on a shared machine, wall time follows other jobs' load.
        "search_cpu_seconds": cpu_total,
        "epochs": outcome.epochs,
        "seconds_per_epoch": float(np.mean(outcome.epoch_times)) if outcome.epoch_times else None,
        "genotype": outcome.genotype,
        "search_cost": outcome.summary.get("cost"),
        "final_val_metric": rec.epochs[max(rec.epochs)]["val_metric"] if rec.epochs else None,
    }


def _nni_search(cfg: Config, name: str, data: Any, device: str) -> dict[str, Any]:
    from automl.nas.nni_baselines import run_nni_strategy

    with console.status(f"searching with {name}...") as status:

        def progress(info: dict[str, Any]) -> None:
            status.update(f"searching with {name}: epoch {info['epoch']}/{info['total']}")

        return run_nni_strategy(name, cfg, data, device, progress=progress)


def _retrain(
    genotype: dict[str, Any], data: Any, task: Any, cfg: Config, device: str, seed: int, epochs: int
):
    from automl.train import train_genotype

    result = train_genotype(genotype, data, task, cfg.train, device=device, seed=seed, epochs=epochs)
    return float(result.metrics[task.primary_metric]), int(result.params)


def run_bench(
    cfg: Config, *, retrain_epochs: int, random_archs: int, device: str = "auto", with_nni: bool = False
) -> dict[str, Any]:
    """The whole comparison as a JSON-able dict (the CLI prints and saves it); ``with_nni`` adds
    NNI's DARTS and RandomOneShot after ours."""
    from automl.data import make_task
    from automl.nas.search import build_space, load_search_data, resolve_device

    dev = str(resolve_device(device if device != "auto" else cfg.search.device))
    data = load_search_data(cfg)
    if data.task != cfg.search.task:
        cfg = cfg.model_copy(deep=True)
        cfg.search.task = data.task  # type: ignore[assignment]
    task = make_task(data)
    seed = cfg.search.seed
    if with_nni:  # fail before the long searches, not after them
        from automl.nas.nni_baselines import check_nni

        check_nni(cfg, data.task)
    results = [_search(cfg, s, data, dev) for s in STRATEGIES]
    if with_nni:
        from automl.nas.nni_baselines import NNI_STRATEGIES

        results += [_nni_search(cfg, s, data, dev) for s in NNI_STRATEGIES]
    for r in results:
        with console.status(f"retraining the {r['strategy']} architecture ({retrain_epochs} epochs)..."):
            r["retrained_metric"], r["params"] = _retrain(
                r["genotype"], data, task, cfg, dev, seed, retrain_epochs
            )
    space = build_space(cfg, data.task)
    draw = getattr(space, "random_choice", None)
    rng = np.random.default_rng(seed + 1)
    randoms = []
    for k in range(random_archs):
        if draw is not None:
            genotype = space.genotype_from_choice(draw(rng))
        else:
            genotype = space.genotype_from_choice(
                [int(rng.integers(len(d.candidates))) for d in space.decisions()]
            )
        with console.status(f"retraining random architecture {k + 1}/{random_archs}..."):
            metric, params = _retrain(genotype, data, task, cfg, dev, seed, retrain_epochs)
        randoms.append({"genotype": genotype, "retrained_metric": metric, "params": params})
    by = {r["strategy"]: r for r in results}
    metrics = [r["retrained_metric"] for r in randoms]
    reference = {
        "count": len(randoms),
        "mean": statistics.fmean(metrics) if metrics else None,
        "std": statistics.stdev(metrics) if len(metrics) > 1 else 0.0,
        "min": min(metrics) if metrics else None,
        "max": max(metrics) if metrics else None,
        "archs": randoms,
    }
    ratios = {
        "ddpnas_over_darts_search_time": by["ddpnas"]["search_seconds"] / by["darts"]["search_seconds"],
        "ddpnas_over_darts_search_cpu_time": by["ddpnas"]["search_cpu_seconds"]
        / by["darts"]["search_cpu_seconds"],
        "ddpnas_over_random_search_time": by["ddpnas"]["search_seconds"] / by["random"]["search_seconds"],
        "ddpnas_minus_random_mean_metric": (
            by["ddpnas"]["retrained_metric"] - reference["mean"] if reference["mean"] is not None else None
        ),
    }
    if with_nni:
        for key, name in (("nni_darts", "nni-darts"), ("nni_random", "nni-random")):
            ratios[f"ddpnas_over_{key}_search_time"] = (
                by["ddpnas"]["search_seconds"] / by[name]["search_seconds"]
            )
            ratios[f"ddpnas_over_{key}_search_cpu_time"] = (
                by["ddpnas"]["search_cpu_seconds"] / by[name]["search_cpu_seconds"]
            )
    targets = {
        "search_time_le_0.25x_darts": ratios["ddpnas_over_darts_search_time"] <= 0.25,
        "search_cpu_time_le_0.25x_darts": ratios["ddpnas_over_darts_search_cpu_time"] <= 0.25,
        "metric_ge_random_mean": reference["mean"] is None
        or by["ddpnas"]["retrained_metric"] >= reference["mean"],
    }
    return {
        "benchmark": "nas",
        "data": data.name,
        "task": data.task,
        "metric": task.primary_metric,
        "device": dev,
        "cpu_count": os.cpu_count(),
        "retrain_epochs": retrain_epochs,
        "config": cfg.model_dump(mode="json"),
        "strategies": results,
        "random_reference": reference,
        "ratios": ratios,
        "targets_met": targets,
        "synthetic": data.name.startswith("synth"),
    }


def _table(report: dict[str, Any]) -> Table:
    metric = report["metric"]
    table = Table(
        title=f"NAS benchmark on {report['data']} ({report['device']}, retrain {report['retrain_epochs']} ep)"
    )
    # With NNI's strategies beside ours, one more column: DDPNAS' search time over each one's.
    with_nni = any(r["strategy"].startswith("nni-") for r in report["strategies"])
    cols = ["strategy", "search s", "CPU s", "epochs", "s/epoch", "params", f"retrained {metric}"]
    if with_nni:
        cols.append("DDPNAS / it: wall, CPU")
    for col in cols:
        table.add_column(col, justify="right" if col != "strategy" else "left")
    ddpnas = next((r for r in report["strategies"] if r["strategy"] == "ddpnas"), None)
    for r in report["strategies"]:
        row = [
            r["strategy"],
            f"{r['search_seconds']:.1f}",
            f"{r['search_cpu_seconds']:.1f}",
            str(r["epochs"]),
            f"{r['seconds_per_epoch']:.2f}",
            f"{r['params'] / 1e3:.1f} k",
            f"{r['retrained_metric']:.3f}",
        ]
        if with_nni:
            row.append(
                "-"
                if ddpnas is None or r is ddpnas
                else f"{ddpnas['search_seconds'] / r['search_seconds']:.3f}x, "
                f"{ddpnas['search_cpu_seconds'] / r['search_cpu_seconds']:.3f}x"
            )
        table.add_row(*row)
    ref = report["random_reference"]
    if ref["count"]:
        params = statistics.fmean(a["params"] for a in ref["archs"])
        table.add_row(
            f"{ref['count']} random archs",
            "-",
            "-",
            "-",
            "-",
            f"{params / 1e3:.1f} k",
            f"{ref['mean']:.3f} ± {ref['std']:.3f}",
            *(["-"] if with_nni else []),
        )
    return table


@bench_app.command("nas")
def bench_nas(
    data: str = typer.Option(None, "--data", help="KIND:PATH (default: the preset's, synth:fer)."),
    preset: Preset = typer.Option(Preset.quick, "--preset"),
    config: Path = typer.Option(None, "--config", help="TOML layered over the preset."),
    epochs_scale: float = typer.Option(None, "--epochs-scale", help="Multiply every strategy's epochs."),
    device: DeviceName = typer.Option(None, "--device"),
    seed: int = typer.Option(None, "--seed"),
    retrain_epochs: int = typer.Option(None, "--retrain-epochs", help="Default: the preset's train.epochs."),
    random_archs: int = typer.Option(5, "--random-archs", min=0, help="Random architectures retrained."),
    out: Path = typer.Option(None, "--out", help="Write the JSON report here."),
    with_nni: bool = typer.Option(
        False,
        "--with-nni",
        help="Also run NNI's DARTS and RandomOneShot on the same space and data (needs the nni extra).",
    ),
) -> None:
    """DDPNAS vs DARTS vs random WS: search time, params, retrained accuracy, in one run."""
    cfg = build_config(
        preset=preset.value,
        config_file=config,
        data=data,
        epochs_scale=epochs_scale,
        device=device.value if device else None,
        seed=seed,
    )
    if cfg.search.space != "darts":
        raise UserError("bench nas compares strategies on the darts space (set search.space = 'darts')")
    epochs = retrain_epochs if retrain_epochs is not None else cfg.train.epochs
    if epochs < 1:
        raise UserError("--retrain-epochs must be >= 1")
    report = run_bench(
        cfg, retrain_epochs=epochs, random_archs=random_archs, device=cfg.search.device, with_nni=with_nni
    )
    console.print(_table(report))
    r = report["ratios"]
    console.print(
        f"DDPNAS / DARTS search time: [bold]{r['ddpnas_over_darts_search_time']:.3f}x[/] wall, "
        f"[bold]{r['ddpnas_over_darts_search_cpu_time']:.3f}x[/] CPU; "
        f"DDPNAS minus random mean: [bold]{r['ddpnas_minus_random_mean_metric']:+.3f}[/] {report['metric']}"
    )
    if with_nni:
        console.print(
            f"DDPNAS / NNI DARTS search time: [bold]{r['ddpnas_over_nni_darts_search_time']:.3f}x[/] wall, "
            f"[bold]{r['ddpnas_over_nni_darts_search_cpu_time']:.3f}x[/] CPU; "
            f"DDPNAS / NNI RandomOneShot: [bold]{r['ddpnas_over_nni_random_search_time']:.3f}x[/] wall, "
            f"[bold]{r['ddpnas_over_nni_random_search_cpu_time']:.3f}x[/] CPU"
        )
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command lives on the shared ``bench`` group (registered by :mod:`automl.cli`)."""
