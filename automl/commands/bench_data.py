"""``automl bench data``: synthetic faces/s (48x48 grey on one core, 112x112 RGB), augmentation
throughput, and JPEG decode vs memory-mapped cache, side by side."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, write_report
from automl.errors import UserError


@bench_app.command("data")
def bench_data(
    out: Path = typer.Option(None, "--out", help="Write the results as JSON here."),
    n: int = typer.Option(2000, "--n", help="Faces to render for the 48x48 measurement."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (smoke test)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Faces per second of the synthetic renderer and the data pipeline."""
    from automl.data.bench import data_benchmark

    if n < 64:
        raise UserError(f"--n must be at least 64, not {n}")
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with console.status("benchmarking") as status:
        res = data_benchmark(n=n, quick=quick, seed=seed, progress=lambda s: status.update(s))
    res["machine"] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }
    table = Table(title="Data pipeline throughput (one core)")
    for col in ("what", "n", "wall s", "per wall s", "per CPU s", "ratio"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in res["rows"]:
        ratio = next(
            (
                f"{r[k]:.2f}x {k.replace('vs_', 'vs ')}"
                for k in ("vs_48_grey", "vs_no_aug", "vs_decode")
                if k in r
            ),
            "",
        )
        table.add_row(
            r["what"],
            str(r["n"]),
            f"{r['seconds']:.3f}",
            f"{r['per_s']:,.0f}",
            f"{r['per_cpu_s']:,.0f}",
            ratio,
        )
    console.print(table)
    verdict = "meets" if res["meets_target"] else "is below"
    first = res["rows"][0]
    console.print(
        f"48x48 grey rendering {verdict} the 2,000 faces/s one-core target: "
        f"{first['per_cpu_s']:,.0f} faces per CPU second ({first['per_s']:,.0f} per wall second; "
        f"load average {res['machine']['load_average'][0]:.1f})"
    )
    write_report(out, res)


def register(app: typer.Typer) -> None:
    """The command attaches to the shared ``bench`` group at import; nothing else to add."""
