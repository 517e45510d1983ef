"""``automl bench hash`` and ``automl bench index``: retrieval quality and index speed, side by side.

``hash``: BSODH vs OKH, OSH, AdaptHash, SketchHash, LSH and offline ITQ on MNIST-5k and sklearn's
digits (the MIHash protocol: mAP, mAP@1000, P@H<=2 at several code lengths, training time per
stage), plus one BSODH stage timed at d=4096, n_t=2000, m=18,000, r=64 against the literal
dense stage. ``index``: query throughput of the project's index vs raw FAISS vs a numpy popcount
brute force, and the time to re-encode and refresh the whole collection after a hash update.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, err_console, write_report
from automl.errors import UserError


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average": load,
    }


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
    out: Path = typer.Option(None, "--out", help="Write the results as JSON here."),
    bits: str = typer.Option("16,32,64", "--bits", help="Code lengths, comma separated."),
    datasets: str = typer.Option("mnist5k,digits", "--datasets", help="mnist5k and/or digits."),
    stage: bool = typer.Option(True, "--stage/--no-stage", help="Also time one large BSODH stage."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Retrieval quality and training time: BSODH vs the online baselines (MIHash protocol)."""
    from hashing.bench import bsodh_stage_timing, hash_benchmark
    from hashing.errors import HashingError

    bit_list = _ints(bits, "--bits")
    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    try:
        with console.status("running") as status:
            res = hash_benchmark(names, bit_list, seed=seed, progress=lambda s: status.update(s))
            if stage:
                status.update("one BSODH stage at d=4096, n_t=2000, m=18,000, r=64 (fast vs dense)")
                res["bsodh_stage"] = bsodh_stage_timing(seed=seed)
    except HashingError as exc:
        raise UserError(str(exc)) from None
    res["machine"] = _machine()
    table = Table(title="Online hashing: MIHash protocol (higher is better; time = total training)")
    for col in (
        "dataset",
        "bits",
        "method",
        "mAP",
        "mAP@1000",
        "P@H<=2",
        "train s",
        "s/stage",
        "mAP / BSODH",
    ):
        table.add_column(col, justify="left" if col in ("dataset", "method") else "right")
    best = {(r["dataset"], r["bits"]): r["mAP"] for r in res["results"] if r["method"] == "BSODH"}
    for r in res["results"]:
        ref = best.get((r["dataset"], r["bits"]))
        table.add_row(
            r["dataset"],
            str(r["bits"]),
            r["method"],
            f"{r['mAP']:.4f}",
            f"{r['mAP@1000']:.4f}",
            f"{r['P@H<=2']:.4f}",
            f"{r['train_s']:.2f}",
            f"{r['stage_s']:.3f}",
            f"{r['mAP'] / ref:.2f}" if ref else "-",
        )
    console.print(table)
    for key, ok in res["targets"].items():
        console.print(f"target {key}: {'[green]met[/]' if ok else '[red]NOT met[/]'}")
    if stage:
        st = res["bsodh_stage"]
        console.print(
            f"BSODH stage d={st['d']} n_t={st['n_t']} m={st['m']} r={st['bits']}: "
            f"fast {st['fast_stage_s']:.3f} s"
            + (
                f", literal dense {st['dense_stage_s']:.2f} s ({st['speedup']:.1f}x)"
                if "dense_stage_s" in st
                else ""
            )
            + f"; {st['fast_stage_cpu_s']:.2f} CPU-s"
            + f" -> target < 0.5 s {'[green]met[/]' if st['target_met'] else '[red]NOT met[/]'}"
        )
    write_report(out, res)


_INDEX_FLAGS = {"n": "--n", "n_bits": "--bits", "dim": "--dim", "n_queries": "--queries",
                "numpy_queries": "--numpy-queries", "k": "--k"}  # fmt: skip


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
    out: Path = typer.Option(None, "--out", help="Write the results as JSON here."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Query throughput (HashIndex vs raw IndexBinaryFlat vs numpy popcount) and refresh time."""
    from hashing.bench import check_index_benchmark, index_benchmark
    from hashing.errors import HashingError

    try:  # the library's bounds, before any memory is allocated; its names -> these flags
        check_index_benchmark(n, bits, dim, queries, k, numpy_queries)
    except HashingError as exc:
        msg, param = str(exc), exc.param or ""
        flag = _INDEX_FLAGS.get(param) if msg.startswith(param) else None
        raise UserError(flag + msg[len(param) :] if flag else msg) from None
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    try:
        with console.status("running") as status:
            res = index_benchmark(
                n, bits, dim, queries, k, numpy_queries, seed, progress=lambda s: status.update(s)
            )
    except HashingError as exc:
        raise UserError(str(exc)) from None
    except MemoryError:
        raise UserError(f"not enough memory for {n:,} x {dim} embeddings; lower --n") from None
    res["machine"] = _machine()
    table = Table(title=f"Index queries: {n:,} items x {bits} bits, k={k}")
    table.add_column("searcher")
    table.add_column("queries/s", justify="right")
    table.add_column("vs numpy", justify="right")
    q = res["qps"]
    for name, label in (
        ("numpy_popcount", "numpy popcount brute force"),
        ("raw_faiss", "raw faiss IndexBinaryFlat"),
        ("raw_faiss_1_thread", "raw faiss IndexBinaryFlat, 1 OpenMP thread"),
        ("hashindex", "HashIndex (codes)"),
        ("hashindex_from_embeddings", "HashIndex (embeddings: encode + search)"),
    ):
        table.add_row(label, f"{q[name]:.1f}", f"{q[name] / q['numpy_popcount']:.1f}x")
    console.print(table)
    console.print(
        f"HashIndex / raw faiss = {res['ratio_vs_raw_faiss']:.2f}; "
        f"same results: {res['results_identical_to_raw_faiss']}; "
        f"re-encode + refresh of {n:,} items at d={dim}: {res['refresh_s']:.2f} s; "
        f"build {res['build_s']:.1f} s"
    )
    cq = res["cpu_qps"]
    cpu_ratio = cq["raw_faiss_1_thread"] / cq["numpy_popcount"]
    console.print(
        f"CPU-time view (single-threaded searchers): faiss {cq['raw_faiss_1_thread']:.0f} vs numpy "
        f"{cq['numpy_popcount']:.0f} queries per CPU-second ({cpu_ratio:.1f}x); "
        f"refresh used {res['refresh_cpu_s']:.2f} CPU-s"
    )
    for key, ok in res["targets"].items():
        console.print(f"target {key}: {'[green]met[/]' if ok else '[red]NOT met[/]'}")
    if res["machine"]["load_average"] and res["machine"]["load_average"][0] > (os.cpu_count() or 1):
        err_console.print(
            f"[yellow]note:[/] load average {res['machine']['load_average'][0]:.1f}: timings are noisy"
        )
    write_report(out, res)


def register(app: typer.Typer) -> None:
    """Commands attach to the shared ``bench`` group at import; nothing else to register."""
