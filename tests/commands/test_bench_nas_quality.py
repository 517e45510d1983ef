"""``automl bench nas --seeds 2 --random-archs 3``: the search-quality report, end to end on a tiny space.

Real searches, real retraining, just small: 100 synthetic 8x8 faces (enough validation images
that the supernet's estimates of three random cells are not all equal), one node per cell.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from tests.commands.test_search_bench_nas import TINY

QUALITY = TINY.replace("n = 40", "n = 100")

RECORD_KEYS = {
    "strategy", "seed", "search_seconds", "search_cpu_seconds", "epochs", "seconds_per_epoch", "genotype",
    "search_cost", "final_val_metric", "tie_fraction", "tied_decisions", "prune_decisions", "tie_source",
    "retrained_metric", "params", "percentile", "z_score", "minus_random_mean", "supernet_tau",
    "supernet_tau_p_value",
}


def _in(value, lo, hi) -> bool:
    return value is None or lo <= value <= hi


def test_bench_nas_reports_quality_over_seeds(cli, tmp_path: Path):
    from search_spaces.genotypes import genotype_to_choice

    assert QUALITY != TINY
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(QUALITY)
    out = tmp_path / "nas.json"
    started = time.perf_counter()
    try:
        res = cli(
            "bench", "nas", "--config", str(cfg), "--seeds", "2", "--random-archs", "3", "--out", str(out)
        )
    finally:
        torch.set_num_threads(2)
    took = time.perf_counter() - started
    assert res.code == 0, res.err
    assert took < 120  # ~15 s of CPU on one core; generous for a loaded machine
    report = json.loads(out.read_text())
    for key in (
        "benchmark", "data", "task", "metric", "device", "cpu_count", "retrain_epochs", "seeds",
        "random_archs", "config", "tie_source", "strategies", "random_reference", "ratios",
        "targets_met", "tau", "per_seed", "aggregate", "synthetic",
    ):
        assert key in report, key
    assert report["seeds"] == [0, 1] and report["random_archs"] == 3
    assert report["tie_source"] in ("computed", "recorder")
    names = ["ddpnas", "darts", "random"]
    assert [s["seed"] for s in report["per_seed"]] == [0, 1]
    defined_taus = []
    for run in report["per_seed"]:
        assert [r["strategy"] for r in run["strategies"]] == names
        ref = run["random_reference"]
        assert ref["count"] == 3 and len(ref["archs"]) == 3
        assert ref["min"] <= ref["mean"] <= ref["max"] and ref["std"] >= 0
        for arch in ref["archs"]:
            # The architecture the supernet estimated is the one retrained.
            assert genotype_to_choice(arch["genotype"]) == arch["choice"]
            assert 0 <= arch["retrained_metric"] <= 1 and arch["params"] > 0
            assert set(arch["supernet_estimates"]) == {"ddpnas", "random"}  # single-path supernets
            assert all(0 <= v <= 1 for v in arch["supernet_estimates"].values())
        for r in run["strategies"]:
            assert RECORD_KEYS <= set(r), RECORD_KEYS - set(r)
            assert r["seed"] == run["seed"]
            assert r["search_seconds"] > 0 and r["search_cpu_seconds"] > 0 and r["params"] > 0
            assert 0 <= r["final_val_metric"] <= 1 and 0 <= r["retrained_metric"] <= 1
            assert 0 <= r["percentile"] <= 100
            assert r["z_score"] is None or isinstance(r["z_score"], float)
            assert r["minus_random_mean"] == r["retrained_metric"] - ref["mean"]
            assert _in(r["supernet_tau"], -1, 1) and _in(r["supernet_tau_p_value"], 0, 1)
        by = {r["strategy"]: r for r in run["strategies"]}
        d = by["ddpnas"]
        assert d["prune_decisions"] > 0 and 0 <= d["tied_decisions"] <= d["prune_decisions"]
        assert 0 <= d["tie_fraction"] <= 1
        assert d["tie_fraction"] == d["tied_decisions"] / d["prune_decisions"]
        assert by["darts"]["tie_fraction"] is None and by["darts"]["supernet_tau"] is None
        assert set(run["tau"]) == {"ddpnas", "random"}
        for name, t in run["tau"].items():
            assert t["n"] == 3 and _in(t["tau"], -1, 1) and _in(t["p_value"], 0, 1)
            assert t["tau"] == by[name]["supernet_tau"]
            defined_taus.append(t["tau"])
    assert any(t is not None for t in defined_taus)  # the estimates do differ on 10 val images
    # Fresh random architectures per seed.
    a, b = (run["random_reference"]["archs"] for run in report["per_seed"])
    assert [x["choice"] for x in a] != [x["choice"] for x in b]

    agg = report["aggregate"]
    assert set(agg["strategies"]) == set(names)
    for fields in agg["strategies"].values():
        for summary in fields.values():
            assert set(summary) == {"mean", "std", "n", "values"} and len(summary["values"]) == 2
    pct = agg["strategies"]["ddpnas"]["percentile"]
    assert pct["n"] == 2 and 0 <= pct["mean"] <= 100 and pct["std"] >= 0
    assert 0 <= agg["strategies"]["ddpnas"]["tie_fraction"]["mean"] <= 1
    assert agg["strategies"]["darts"]["tie_fraction"]["n"] == 0
    tau = report["tau"]
    assert tau["supernet"] == "ddpnas" and [t["seed"] for t in tau["per_seed"]] == [0, 1]
    assert _in(tau["mean"], -1, 1)
    # The single-seed keys are still there: the first seed's records, ratios from the means.
    assert report["strategies"] == report["per_seed"][0]["strategies"]
    assert report["random_reference"] == report["per_seed"][0]["random_reference"]
    means = agg["strategies"]
    assert report["ratios"]["ddpnas_over_darts_search_time"] == (
        means["ddpnas"]["search_seconds"]["mean"] / means["darts"]["search_seconds"]["mean"]
    )
    assert set(report["targets_met"]) == {
        "search_time_le_0.25x_darts", "search_cpu_time_le_0.25x_darts", "metric_ge_random_mean",
        "ddpnas_z_ge_1", "tau_ge_0.3",
    }
    assert "Search quality" in res.out and "Kendall tau" in res.out and "mean" in res.out


def test_bench_nas_with_nni_on_the_default_face_space_is_one_line(cli):
    res = cli("bench", "nas", "--with-nni")
    assert res.code == 2 and "add --space darts" in res.err and "Traceback" not in res.err
