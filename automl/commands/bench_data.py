"""``automl bench data``: synthetic faces/s (48x48 grey on one core, 112x112 RGB), augmentation
throughput, and JPEG decode vs memory-mapped cache, side by side (:mod:`automl.data.bench`)."""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, print_table, write_report
from automl.commands.options import FIXED_SEED_OPTION, REPORT_OUT_OPTION
from automl.errors import UserError


@bench_app.command("data")
def bench_data(
    out: Path = REPORT_OUT_OPTION,
    n: int = typer.Option(2000, "--n", help="Faces to render for the 48x48 measurement."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (smoke test)."),
    seed: int = FIXED_SEED_OPTION,
) -> None:
    """Faces per second of the synthetic renderer and the data pipeline."""
    from automl.data.bench import data_benchmark, data_table, target_line

    if n < 64:
        raise UserError(f"--n must be at least 64, not {n}")
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with console.status("benchmarking") as status:
        res = data_benchmark(n=n, quick=quick, seed=seed, progress=lambda s: status.update(s))
    print_table(*data_table(res))
    console.print(target_line(res), markup=False)
    write_report(out, res)


def register(app: typer.Typer) -> None:
    """The command attaches to the shared ``bench`` group at import; nothing else to add."""
