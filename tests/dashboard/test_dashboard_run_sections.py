"""The Run page's decisions as pure functions: tabs by kind, messages, colour range, compaction."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import run_sections
from dashboard.progress import RunProgress, epoch_seconds, planned_units, run_progress, units_done


# -- progress and ETA -------------------------------------------------------------------------
def test_planned_units_follow_the_plan_then_the_config() -> None:
    assert planned_units({"kind": "search", "summary": {"plan": {"search_epochs": 27}}}) == (27, "epochs")
    assert planned_units({"kind": "train", "config": {"train": {"epochs": 15}}}) == (15, "epochs")
    assert planned_units({"kind": "hpo", "config": {"trials": 20}}) == (20, "trials")
    assert planned_units({"kind": "hpo", "config": {"hpo": {"trials": 4}}}) == (4, "trials")
    assert planned_units({"kind": "search", "summary": {"plan": {"search_epochs": 0}}}) == (None, "epochs")
    assert planned_units({"kind": "search"}) == (None, "epochs")


def test_eta_is_the_median_of_recent_epochs_times_what_is_left() -> None:
    run = {"kind": "search", "liveness": "live", "summary": {"plan": {"search_epochs": 10}}}
    # One slow epoch (a checkpoint) among 2 s epochs does not move the median.
    progress = run_progress(run, 6, [9.0, 2.0, 2.0, 30.0, 2.0, 2.0])
    assert progress.seconds_per_unit == 2.0 and progress.eta_s == 8.0
    assert progress.fraction == pytest.approx(0.6) and progress.label() == "6 / 10 epochs"


def test_a_run_that_is_not_live_has_no_eta() -> None:
    for liveness in ("dead", "stale", None):
        run = {"kind": "search", "liveness": liveness, "summary": {"plan": {"search_epochs": 10}}}
        assert run_progress(run, 3, [1.0, 1.0, 1.0]).eta_s is None


def test_epoch_seconds_ignores_missing_and_broken_durations() -> None:
    assert epoch_seconds([None, float("nan"), -1.0, 0.0]) is None
    assert epoch_seconds([1.0, None, 3.0]) == 2.0
    assert epoch_seconds([100.0] + [1.0] * 5) == 1.0  # only the last five count


def test_hpo_progress_counts_finished_trials() -> None:
    run = {
        "kind": "hpo",
        "config": {"trials": 8},
        "summary": {"counts": {"complete": 3, "pruned": 2, "running": 1}},
    }
    assert units_done(run, 0) == 5
    progress = run_progress(run, units_done(run, 0), live=True)
    assert progress.label() == "5 / 8 trials" and progress.eta_s is None  # no per-trial clock
    assert RunProgress(done=4, total=None).fraction is None


# -- tabs and messages ---------------------------------------------------------------------------
def test_tabs_by_kind_and_strategy() -> None:
    assert run_sections.run_tabs("hpo", None) == ["Trials", "Artifacts", "Config"]
    assert run_sections.run_tabs("train", None) == ["Architecture", "Artifacts", "Config"]
    assert run_sections.run_tabs("search", "ddpnas")[:3] == [
        "Architecture",
        "Distribution",
        "Sampled architectures",
    ]
    darts = run_sections.run_tabs("search", "darts")
    assert "Distribution" in darts and "Sampled architectures" not in darts
    random = run_sections.run_tabs("search", "random")
    assert "Candidate ranking" in random and "Distribution" not in random


def test_a_ddpnas_run_before_its_first_update_is_told_so() -> None:
    message = run_sections.no_distribution_message("ddpnas", {"updates": 6}, "running")
    assert "No distribution update yet" in message and "6 updates" in message
    assert "only DDPNAS" not in message
    assert "keeps no distribution" in run_sections.no_distribution_message("random", {}, "completed")


def test_strategy_texts_describe_each_strategy() -> None:
    assert "random path" in run_sections.strategy_text("random")
    assert "DARTS" not in run_sections.strategy_text("random")
    assert "softmax(alpha)" in run_sections.strategy_text("darts")
    assert run_sections.strategy_text("nni_evolution").startswith("NNI's evolution")


def test_theta_note_explains_v1_row_sums() -> None:
    assert "towards 2" in run_sections.theta_note("ddpnas", {"update_rule": "v1"})
    assert "rows sum to 1" in run_sections.theta_note("darts", {})


# -- the distribution's colour scale and decidedness ------------------------------------------------
def test_darts_colour_range_spans_the_runs_values_not_zero() -> None:
    rng = np.random.default_rng(0)
    snaps = [(1 / 8 + rng.normal(0, 3e-4, (14, 8))).tolist() for _ in range(5)]
    low, high = run_sections.color_range(snaps)
    flat = np.asarray(snaps).ravel()
    assert low == pytest.approx(flat.min()) and high == pytest.approx(flat.max())
    assert 0.12 < low < high < 0.13  # not from 0: a 0.001-wide spread gets the whole scale


def test_colour_range_skips_pruned_zeros_and_survives_constant_theta() -> None:
    assert run_sections.color_range([[[0.0, 0.5, 1.5]]]) == (0.5, 1.5)
    low, high = run_sections.color_range([[[0.25, 0.25]]])
    assert low < 0.25 < high
    assert run_sections.color_range([]) is None


def test_decidedness_moves_from_uniform_to_decided() -> None:
    assert run_sections.decidedness([[1, 1, 1, 1]], None) == pytest.approx(0.25)
    assert run_sections.decidedness([[0.7, 0.1, 0.2], [0.0, 1.0, 0.0]], None) == pytest.approx(
        (0.7 + 1.0) / 2
    )
    # pruned ops do not count towards their row
    assert run_sections.decidedness([[0.5, 0.5, 9.0]], [[True, True, False]]) == pytest.approx(0.5)


# -- the Config tab ----------------------------------------------------------------------------------
def test_compact_replaces_big_arrays_by_their_shape() -> None:
    theta = np.ones((28, 8)).tolist()
    summary = {"theta": theta, "surviving_choice": [3, 4, 0, 3], "nested": {"alpha": theta}, "name": "x"}
    out = run_sections.compact(summary)
    assert out["theta"] == "28 x 8 numbers" and out["nested"]["alpha"] == "28 x 8 numbers"
    assert out["surviving_choice"] == [3, 4, 0, 3] and out["name"] == "x"
    assert list(run_sections.numeric_arrays(summary)) == ["theta"]


def test_found_ops_of_each_genotype_kind() -> None:
    face = {"space": "face", "ops": ["mb_k5_e6", "mb_k3_e3"], "head": "linear"}
    assert run_sections.found_ops(face) == "mb_k5_e6 · mb_k3_e3 (head: linear)"
    darts = {
        "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["sep_conv_3x3", 1]],
        "reduce": [["max_pool_3x3", 0]],
    }
    assert (
        run_sections.found_ops(darts) == "normal: sep_conv_3x3 x2, skip_connect x1; reduce: max_pool_3x3 x1"
    )
    assert run_sections.found_ops(None) is None


def test_relative_to_uniform_and_padding_cells() -> None:
    from dashboard import charts

    theta = [[1 / 6] * 6 + [0.0], [1 / 7] * 7]
    relative = np.asarray(run_sections.relative_to_uniform(theta, [6, 7]))
    assert np.allclose(relative, [[1.0] * 6 + [0.0], [1.0] * 7])
    names = [[f"op{j}" for j in range(6)] + ["-"], [f"op{j}" for j in range(7)]]
    padding = charts.padding_mask(names, (2, 7))
    assert padding.tolist() == [[False] * 6 + [True], [False] * 7]
    fig = charts.theta_heatmap(theta, None, ["a", "b"], [f"c{j}" for j in range(7)], names=names)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(z[0, 6]) and len(fig.data) == 1  # blank, and no "pruned" cross on a non-op
