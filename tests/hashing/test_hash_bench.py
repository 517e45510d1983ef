"""The benchmark functions at toy sizes: they run, agree with each other, and report targets."""

from __future__ import annotations

from hashing.bench import bsodh_stage_timing, index_benchmark


def test_index_benchmark_small():
    res = index_benchmark(n=5000, n_bits=64, dim=16, n_queries=20, k=10, numpy_queries=5)
    assert res["results_identical_to_raw_faiss"] and res["distances_identical_to_numpy"]
    assert set(res["qps"]) >= {"hashindex", "raw_faiss", "raw_faiss_1_thread", "numpy_popcount"}
    assert set(res["targets"]) == {"ge_10x_numpy", "ge_0.8x_raw_faiss", "refresh_lt_2s"}


def test_stage_timing_small():
    res = bsodh_stage_timing(d=64, n_t=50, m=100, n_bits=16, repeats=1)
    assert res["m"] == 100 and res["fast_stage_s"] > 0 and res["dense_stage_s"] > 0
    assert res["robust_stage_s"] > 0 and res["robust_over_paper"] > 0
