"""``automl bench nas``: DDPNAS vs DARTS (first order) vs random search with weight sharing, over
seeds, against random architectures; ``--with-nni`` adds NNI's DARTS and RandomOneShot.

What is measured and how: :mod:`automl.nas.bench` (:func:`~automl.nas.bench.run_nas_bench`); the
tables: :mod:`automl.nas.bench_report`. This module parses, calls and prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, print_table, write_report
from automl.commands.options import (
    CONFIG_OPTION,
    DATA_OPTION,
    DEVICE_OPTION,
    EPOCHS_SCALE_OPTION,
    REPORT_OUT_OPTION,
    SEARCH_PRESET_OPTION,
    DeviceName,
    Preset,
    StrategyName,
)
from automl.errors import UserError

STRATEGIES = tuple(s.value for s in StrategyName)  # automl.nas.bench.STRATEGIES, without numpy


@bench_app.command("nas")
def bench_nas(
    space: str = typer.Option(
        None, "--space", help="darts, mobilenet, face or nni:module:Class (default: the preset's, face)."
    ),
    data: str = DATA_OPTION,
    preset: Preset = SEARCH_PRESET_OPTION,
    config: Path = CONFIG_OPTION,
    epochs_scale: float = EPOCHS_SCALE_OPTION,
    device: DeviceName = DEVICE_OPTION,
    seed: int = typer.Option(None, "--seed", help="First seed (default: the config's, 0)."),
    seeds: int = typer.Option(
        1, "--seeds", min=1, help="Repeat everything for N seeds (search and retraining): seed .. seed+N-1."
    ),
    retrain_epochs: int = typer.Option(None, "--retrain-epochs", help="Default: the preset's train.epochs."),
    random_archs: int = typer.Option(
        10, "--random-archs", min=0, help="Random architectures retrained per seed (the chance reference)."
    ),
    strategies: str = typer.Option(
        ",".join(STRATEGIES), "--strategies", help="Comma-separated subset of ddpnas,darts,random."
    ),
    out: Path = REPORT_OUT_OPTION,
    with_nni: bool = typer.Option(
        False,
        "--with-nni",
        help="Also run NNI's DARTS and RandomOneShot on the same space and data (needs the nni extra).",
    ),
) -> None:
    """DDPNAS vs DARTS vs random WS: search time, retrained accuracy against random architectures,
    prune ties and supernet ranking (Kendall tau), over seeds."""
    from automl.nas.bench import run_nas_bench
    from automl.nas.bench_report import quality_table, results_table, summary_lines
    from automl.nas.job import search_config

    cfg = search_config(
        preset=preset.value,
        config_file=config,
        space=space,
        data=data,
        epochs_scale=epochs_scale,
        device=device.value if device else None,
        seed=seed,
    )
    if with_nni and cfg.search.space != "darts":
        raise UserError("--with-nni compares NNI's strategies on the darts space: add --space darts")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with console.status("bench nas...") as status:
        report = run_nas_bench(
            cfg,
            seeds=seeds,
            random_archs=random_archs,
            strategies=names,
            retrain_epochs=retrain_epochs,
            device=cfg.search.device,
            with_nni=with_nni,
            status=status.update,
        )
    print_table(*results_table(report))
    print_table(*quality_table(report))
    for line in summary_lines(report):
        console.print(line, markup=False)
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command lives on the shared ``bench`` group (registered by :mod:`automl.cli`)."""
