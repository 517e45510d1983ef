"""The results of :mod:`hashing.bench` as tables and lines of text, for a console or a notebook.

``*_table`` functions return ``(title, columns, rows)`` of plain strings (numbers formatted);
``automl bench hash|index`` print them with :func:`automl.commands.common.print_table`, and
``pandas.DataFrame(rows, columns=columns)`` shows them in a notebook. Pure Python, no numpy.
"""

from __future__ import annotations

import os
import platform
from typing import Any

Table = tuple[str, list[str], list[list[str]]]

INDEX_SEARCHERS = (
    ("numpy_popcount", "numpy popcount brute force"),
    ("raw_faiss", "raw faiss IndexBinaryFlat"),
    ("raw_faiss_1_thread", "raw faiss IndexBinaryFlat, 1 OpenMP thread"),
    ("hashindex", "HashIndex (codes)"),
    ("hashindex_from_embeddings", "HashIndex (embeddings: encode + search)"),
)
"""The ``qps`` keys of :func:`hashing.bench.index_benchmark`, in table order, with their labels."""


def machine_info() -> dict[str, Any]:
    """Where a benchmark ran: cores, platform, processor and the load average (None where unknown)."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def busy_machine(machine: dict[str, Any]) -> float | None:
    """The 1-minute load average when it exceeds the core count (the timings are noisy), else None."""
    load = machine.get("load_average")
    return load[0] if load and load[0] > (machine.get("cpu_count") or 1) else None


def hash_table(res: dict[str, Any]) -> Table:
    """One row per dataset, code length and method of :func:`hashing.bench.hash_benchmark`, with
    each method's mAP relative to BSODH's on the same dataset and code length."""
    columns = ["dataset", "bits", "method", "mAP", "mAP@1000", "P@H<=2", "train s", "s/stage", "mAP / BSODH"]
    best = {(r["dataset"], r["bits"]): r["mAP"] for r in res["results"] if r["method"] == "BSODH"}
    rows = []
    for r in res["results"]:
        ref = best.get((r["dataset"], r["bits"]))
        rows.append([
            r["dataset"], str(r["bits"]), r["method"], f"{r['mAP']:.4f}", f"{r['mAP@1000']:.4f}",
            f"{r['P@H<=2']:.4f}", f"{r['train_s']:.2f}", f"{r['stage_s']:.3f}",
            f"{r['mAP'] / ref:.2f}" if ref else "-",
        ])  # fmt: skip
    return "Online hashing: MIHash protocol (higher is better; time = total training)", columns, rows


def stage_line(st: dict[str, Any]) -> str:
    """:func:`hashing.bench.bsodh_stage_timing` in one line: fast vs literal dense stage, the target."""
    dense = ""
    if "dense_stage_s" in st:
        dense = f", literal dense {st['dense_stage_s']:.2f} s ({st['speedup']:.1f}x)"
    verdict = "met" if st["target_met"] else "NOT met"
    return (
        f"BSODH stage d={st['d']} n_t={st['n_t']} m={st['m']} r={st['bits']}: "
        f"paper mode {st['fast_stage_s']:.3f} s{dense}; {st['fast_stage_cpu_s']:.2f} CPU-s; "
        f"robust mode {st['robust_stage_s']:.3f} s ({st['robust_over_paper']:.2f}x paper)"
        f" -> target < 0.5 s {verdict}"
    )


def index_table(res: dict[str, Any]) -> Table:
    """Queries per second of each searcher of :func:`hashing.bench.index_benchmark`, and vs numpy."""
    q = res["qps"]
    base = q["numpy_popcount"]
    rows = [[label, f"{q[key]:.1f}", f"{q[key] / base:.1f}x"] for key, label in INDEX_SEARCHERS]
    title = f"Index queries: {res['n']:,} items x {res['bits']} bits, k={res['k']}"
    return title, ["searcher", "queries/s", "vs numpy"], rows


def index_lines(res: dict[str, Any]) -> list[str]:
    """The rest of :func:`hashing.bench.index_benchmark`: HashIndex vs raw FAISS, the refresh, the
    single-threaded searchers in queries per CPU-second."""
    cq = res["cpu_qps"]
    return [
        f"HashIndex / raw faiss = {res['ratio_vs_raw_faiss']:.2f}; "
        f"same results: {res['results_identical_to_raw_faiss']}; "
        f"re-encode + refresh of {res['n']:,} items at d={res['dim']}: {res['refresh_s']:.2f} s; "
        f"build {res['build_s']:.1f} s",
        f"CPU-time view (single-threaded searchers): faiss {cq['raw_faiss_1_thread']:.0f} vs numpy "
        f"{cq['numpy_popcount']:.0f} queries per CPU-second "
        f"({cq['raw_faiss_1_thread'] / cq['numpy_popcount']:.1f}x); "
        f"refresh used {res['refresh_cpu_s']:.2f} CPU-s",
    ]


def streams_table(res: dict[str, Any]) -> Table:
    """:func:`hashing.bench_streams.stream_benchmark`: one row per data set, method and stream
    order; "vs shuffled" is the method's mAP on that order over its mAP on the shuffled stream."""
    columns = ["dataset", "order", "method", "mAP", "mAP@1000", "P@H<=2", "codes", "train s", "vs shuffled"]
    shuffled = {(r["dataset"], r["method"]): r["mAP"] for r in res["results"] if r["order"] == "shuffled"}
    rows = []
    for r in res["results"]:
        ref = shuffled.get((r["dataset"], r["method"]))
        top = next(v for k, v in r.items() if k.startswith("mAP@"))
        rows.append([
            r["dataset"], r["order"], r["method"], f"{r['mAP']:.3f}", f"{top:.3f}", f"{r['P@H<=2']:.3f}",
            str(r["distinct_codes"]), f"{r['train_s']:.2f}", f"{r['mAP'] / ref:.2f}" if ref else "-",
        ])  # fmt: skip
    return "Online hashing on real-world streams (tie-aware mAP; higher is better)", columns, rows
