"""The pure helpers of the NAS benchmark (:mod:`automl.nas.bench`): ties, ranks, tau, random draws."""

from __future__ import annotations

import numpy as np
import pytest

from automl.nas.bench import (
    bench_ratios,
    bench_targets,
    draw_random_choices,
    kendall_tau,
    percentile_rank,
    prune_ties,
    summarize,
    tie_counts,
    tie_fraction,
    tie_source,
    z_score,
)
from automl.nas.distribution import DDPNASDistribution


def _update(theta, alive, pruned, **extra):
    theta, alive = np.array(theta, dtype=float), np.array(alive, dtype=bool)
    return {"theta": theta, "alive": alive, "pruned": pruned, **extra}


# Two updates of three decisions with three candidates (post-update theta, alive after pruning).
TIED_UPDATES = [
    _update(
        [[0.2, 0.2, 0.6], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]],
        [[False, True, True], [False, True, True], [True, True, False]],
        [0, 0, 2],  # decision 0 ties op 1 (0.2 == 0.2); decisions 1 and 2 are strict minima
    ),
    _update(
        [[0.2, 0.4, 0.4], [0.3, 0.3, 0.6], [0.5, 0.4, 0.1]],
        [[False, False, True], [False, False, True], [True, True, False]],
        # decision 0: op 1 ties survivor op 2; decision 1: op 1 equals op 0, but op 0 was pruned
        # earlier and is no survivor, so no tie; decision 2: nothing pruned this time.
        [1, 1, None],
    ),
]


def test_tie_fraction_counts_exact_ties_among_the_survivors_before_pruning():
    assert prune_ties(TIED_UPDATES[0]) == [True, False, False]
    assert prune_ties(TIED_UPDATES[1]) == [True, False, None]
    assert tie_counts(TIED_UPDATES) == (2, 5)
    assert tie_fraction(TIED_UPDATES) == pytest.approx(0.4)
    assert tie_source(TIED_UPDATES) == "computed"


def test_tie_fraction_without_ties_and_without_prunes():
    strict = [
        _update([[0.1, 0.3, 0.6], [0.6, 0.25, 0.15]], [[False, True, True], [True, True, False]], [0, 2]),
        _update([[0.1, 0.3, 0.6], [0.6, 0.25, 0.15]], [[False, False, True], [True, False, False]], [1, 1]),
    ]
    assert tie_fraction(strict) == 0.0
    # Equal to within rounding is not an exact tie.
    near = [_update([[0.2, 0.2 + 1e-12, 0.6]], [[False, True, True]], [0])]
    assert tie_fraction(near) == 0.0
    assert tie_fraction([_update([[1.0, 0.0]], [[True, False]], [None])]) is None
    assert tie_fraction([]) is None


def test_a_recorded_tied_field_is_preferred_over_recomputing():
    update = _update([[0.2, 0.2, 0.6]], [[False, True, True]], [0], tied=[False])
    assert prune_ties(update) == [False]
    assert tie_source([update]) == "recorder"
    assert prune_ties(_update([[0.1, 0.2, 0.6]], [[False, True, True]], [0], ties=[True])) == [True]


def test_a_constant_accuracy_search_prunes_by_ties_only():
    """Through the real (V1) distribution: when every path scores the same, every prune is a
    tie-break; distinct accuracies per op give no ties at all."""

    def run(acc):
        dist = DDPNASDistribution(3, [4, 4, 3], pruning_step=1, update_rule="v1", seed=0)
        updates = []
        while not dist.finished:
            sample = dist.sample()
            u = dist.tell(sample, acc(sample))
            if u is not None:
                updates.append(u)
        return updates

    const = run(lambda s: 0.5)
    assert tie_counts(const) == (3 + 3 + 2, 3 + 3 + 2) and tie_fraction(const) == 1.0
    # Accuracy set by decision 0's op alone: its ops separate strictly, and no prune of it ties.
    distinct = run(lambda s: 0.5 + 0.01 * float(s[0]))
    assert [prune_ties(u)[0] for u in distinct] == [False, False, False]
    # Too wide a spread ties in floating point: at temperature 100, softmax weights of exp(-40)
    # and exp(-60) both vanish next to the 0.125 carried over in theta -- a tie the metric catches.
    saturated = run(lambda s: 0.1 + 0.2 * float(s[0]))
    assert prune_ties(saturated[0])[0] is True


def test_percentile_rank_counts_ties_half():
    pop = [0.1, 0.2, 0.3, 0.4]
    assert percentile_rank(0.25, pop) == 50.0
    assert percentile_rank(0.5, pop) == 100.0
    assert percentile_rank(0.0, pop) == 0.0
    assert percentile_rank(0.2, pop) == pytest.approx(37.5)
    assert percentile_rank(0.3, [0.3, 0.3]) == 50.0
    assert percentile_rank(0.3, []) is None


def test_z_score_is_the_distance_to_the_random_mean_in_random_stds():
    assert z_score(4.0, [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert z_score(1.5, [1.0, 2.0, 3.0]) == pytest.approx(-0.5)
    assert z_score(1.0, [2.0, 2.0, 2.0]) is None  # no spread: undefined, not infinite
    assert z_score(1.0, [2.0]) is None


def test_kendall_tau_matches_scipy_and_reports_undefined_as_none():
    from scipy.stats import kendalltau

    assert kendall_tau([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4])[0] == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1])[0] == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    a, b = rng.random(12), rng.random(12)
    tau, p = kendall_tau(a, b)
    ref = kendalltau(a, b)
    assert tau == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert kendall_tau([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) == (None, None)  # constant estimates
    assert kendall_tau([0.5], [0.1]) == (None, None)
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


def test_summarize_skips_missing_values():
    s = summarize([1.0, None, 3.0, float("nan")])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(np.sqrt(2.0)) and s["n"] == 2
    assert s["values"] == [1.0, None, 3.0, None]
    assert summarize([0.5]) == {"mean": 0.5, "std": None, "n": 1, "values": [0.5]}
    assert summarize([None])["mean"] is None


def test_ratios_and_targets_tolerate_missing_strategies():
    figures = {
        "ddpnas": {"search_seconds": 1.0, "search_cpu_seconds": 2.0, "retrained_metric": 0.5},
        "darts": {"search_seconds": 5.0, "search_cpu_seconds": 4.0, "retrained_metric": 0.4},
    }
    r = bench_ratios(figures, 0.45)
    assert r["ddpnas_over_darts_search_time"] == 0.2 and r["ddpnas_over_darts_search_cpu_time"] == 0.5
    assert r["ddpnas_over_random_search_time"] is None
    assert r["ddpnas_minus_random_mean_metric"] == pytest.approx(0.05)
    t = bench_targets(r)
    assert t == {
        "search_time_le_0.25x_darts": True,
        "search_cpu_time_le_0.25x_darts": False,
        "metric_ge_random_mean": True,
        "ddpnas_z_ge_1": None,  # not measured: no random reference / no tau
        "tau_ge_0.3": None,
    }
    t = bench_targets(r, ddpnas_z=0.8, tau=0.45)
    assert (t["ddpnas_z_ge_1"], t["tau_ge_0.3"]) == (False, True)
    assert bench_targets({})["metric_ge_random_mean"] is None


def test_random_darts_choices_are_the_cells_they_retrain():
    """A random DARTS choice is a discrete cell: its genotype maps back to the same path, so the
    supernet's estimate and the retrained network are one architecture."""
    from search_spaces.genotypes import NONE_INDEX, genotype_to_choice
    from search_spaces.registry import create_space

    space = create_space("darts", nodes=3, task="fer")
    choices = draw_random_choices(space, 20, np.random.default_rng(0))
    assert len({tuple(c) for c in choices}) == 20
    for choice in choices:
        assert genotype_to_choice(space.genotype_from_choice(choice)) == choice
        assert sum(c != NONE_INDEX for c in choice) == 2 * 2 * 3  # two inputs per node, both cells
    again = draw_random_choices(space, 20, np.random.default_rng(0))
    assert again == choices


def test_random_choices_stay_within_the_search_budget():
    from search_spaces.registry import create_space

    space = create_space("mobilenet", task="fer", layers=4)
    budget = space.budget(in_channels=1, num_outputs=7, image_size=16, init_channels=8, max_mflops=0.5)
    choices = draw_random_choices(space, 10, np.random.default_rng(0), budget)
    assert all(budget.feasible(c) for c in choices)
    free = draw_random_choices(space, 50, np.random.default_rng(0))
    assert not all(budget.feasible(c) for c in free)  # the budget binds: the draw really was limited
