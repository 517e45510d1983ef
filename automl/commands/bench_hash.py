"""``automl bench hash`` and ``automl bench index``: retrieval quality and index speed, side by side.

``hash``: BSODH vs the online baselines and offline ITQ (the MIHash protocol), and one large BSODH
stage vs the literal dense stage; ``index``: queries/s of the project's index vs raw FAISS vs a numpy
popcount brute force, and the refresh time. The benchmarks are :mod:`hashing.bench`, their tables
:mod:`hashing.bench_report`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import (
    check_report_out,
    console,
    err_console,
    hashing_errors,
    print_table,
    print_targets,
    write_report,
)
from automl.commands.options import FIXED_SEED_OPTION, REPORT_OUT_OPTION
from automl.errors import UserError


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, not {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise UserError(f"{what} must list positive integers")
    return vals


@bench_app.command("hash")
def bench_hash(
    out: Path = REPORT_OUT_OPTION,
    bits: str = typer.Option("16,32,64", "--bits", help="Code lengths, comma separated."),
    datasets: str = typer.Option("mnist5k,digits", "--datasets", help="mnist5k and/or digits."),
    stage: bool = typer.Option(True, "--stage/--no-stage", help="Also time one large BSODH stage."),
    seed: int = FIXED_SEED_OPTION,
) -> None:
    """Retrieval quality and training time: BSODH vs the online baselines (MIHash protocol)."""
    from hashing.bench import bsodh_stage_timing, hash_benchmark
    from hashing.bench_report import hash_table, machine_info, stage_line

    bit_list = _ints(bits, "--bits")
    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with hashing_errors(), console.status("running") as status:
        res = hash_benchmark(names, bit_list, seed=seed, progress=lambda s: status.update(s))
        if stage:
            status.update("one BSODH stage at d=4096, n_t=2000, m=18,000, r=64 (fast vs dense)")
            res["bsodh_stage"] = bsodh_stage_timing(seed=seed)
    res["machine"] = machine_info()
    print_table(*hash_table(res), left=("dataset", "method"))
    print_targets(res["targets"])
    if stage:
        console.print(stage_line(res["bsodh_stage"]), markup=False)
    write_report(out, res)


@bench_app.command("streams")
def bench_streams(
    out: Path = REPORT_OUT_OPTION,
    identities: str = typer.Option("100,1000,10000", "--identities", help="Synthetic identity counts."),
    bits: int = typer.Option(64, "--bits", help="Code length."),
    orders: str = typer.Option(
        "shuffled,class-sorted,one-class adds", "--orders", help="Stream orders, comma separated."
    ),
    methods: str = typer.Option(None, "--methods", help="Only these methods (table labels)."),
    mnist: bool = typer.Option(True, "--mnist/--no-mnist", help="Include MNIST-5k (10 classes)."),
    au: bool = typer.Option(True, "--au/--no-au", help="Include synth:au pixels (multi-label)."),
    seed: int = FIXED_SEED_OPTION,
) -> None:
    """Every hasher on many-identity, class-sorted, one-class-at-a-time and multi-label AU streams."""
    from hashing.bench_report import machine_info, streams_table
    from hashing.bench_streams import check_methods, stream_benchmark

    ids = _ints(identities, "--identities")
    check_report_out(out)
    picked = tuple(m.strip() for m in methods.split(",")) if methods else None
    with hashing_errors():
        check_methods(picked)
    extra = {"synth-au": _au_pixels(seed)} if au else {}
    with hashing_errors(), console.status("running") as status:
        res = stream_benchmark(
            ids,
            bits=bits,
            seed=seed,
            mnist=mnist,
            orders=tuple(o.strip() for o in orders.split(",") if o.strip()),
            methods=picked,
            extra=extra,
            progress=lambda s: status.update(s),
        )
    res["machine"] = machine_info()
    print_table(*streams_table(res), left=("dataset", "order", "method"))
    print_targets(res["targets"])
    write_report(out, res)


def _au_pixels(seed: int) -> tuple:
    """``synth:au`` as (queries, labels, items, labels): 500 test faces as queries, the training
    faces as the indexed stream; 48x48 grey pixels, centred, unit rows (no model involved)."""
    import numpy as np

    from automl.data import load_data
    from hashing.base import l2_rows

    data = load_data("synth:au", seed=seed)
    xs = [x.numpy().reshape(len(x), -1).astype(np.float64) for x in (data.test_x[:500], data.train_x)]
    mean = np.concatenate(xs).mean(axis=0)
    Xq, Xdb = (l2_rows(x - mean) for x in xs)
    yq, ydb = (y.numpy().astype(np.uint8) for y in (data.test_y[:500], data.train_y))
    return Xq, yq, Xdb, ydb


@bench_app.command("index")
def bench_index(
    n: int = typer.Option(1_000_000, "--n", help="Items in the index."),
    bits: int = typer.Option(64, "--bits", help="Code length."),
    dim: int = typer.Option(128, "--dim", help="Embedding width."),
    queries: int = typer.Option(1000, "--queries", help="Queries for FAISS-based searches."),
    numpy_queries: int = typer.Option(
        100, "--numpy-queries", help="Queries for the (slow) numpy brute force."
    ),
    k: int = typer.Option(100, "-k", "--k", help="Neighbours per query."),
    out: Path = REPORT_OUT_OPTION,
    seed: int = FIXED_SEED_OPTION,
) -> None:
    """Query throughput (HashIndex vs raw IndexBinaryFlat vs numpy popcount) and refresh time."""
    from hashing.bench import check_index_benchmark, index_benchmark
    from hashing.bench_report import busy_machine, index_lines, index_table, machine_info

    with hashing_errors():  # the library's bounds, before any memory is allocated
        check_index_benchmark(n, bits, dim, queries, k, numpy_queries)
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    try:
        with hashing_errors(), console.status("running") as status:
            res = index_benchmark(
                n, bits, dim, queries, k, numpy_queries, seed, progress=lambda s: status.update(s)
            )
    except MemoryError:
        raise UserError(f"not enough memory for {n:,} x {dim} embeddings; lower --n") from None
    res["machine"] = machine_info()
    print_table(*index_table(res))
    for line in index_lines(res):
        console.print(line, markup=False)
    print_targets(res["targets"])
    if (load := busy_machine(res["machine"])) is not None:
        err_console.print(f"[yellow]note:[/] load average {load:.1f}: timings are noisy")
    write_report(out, res)


def register(app: typer.Typer) -> None:
    """Commands attach to the shared ``bench`` group at import; nothing else to register."""
