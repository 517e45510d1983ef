"""The DDPNAS distribution: schedule length, sampling without replacement, update and pruning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from automl.nas.distribution import DDPNASDistribution, schedule_length


def _run(dist: DDPNASDistribution, acc_fn) -> list[dict]:
    updates = []
    while not dist.finished:
        s = dist.sample()
        u = dist.tell(s, acc_fn(s))
        if u is not None:
            updates.append(u)
    return updates


def test_eight_ops_three_rounds_per_step_is_105_epochs():
    assert schedule_length([8] * 28, 3) == 105
    dist = DDPNASDistribution(28, 8, pruning_step=3, seed=0)
    assert dist.total_epochs() == 105
    epochs = 0
    rng = np.random.default_rng(0)
    while not dist.finished:
        assert dist.remaining_epochs() == 105 - epochs
        dist.tell(dist.sample(), float(rng.random()))
        epochs += 1
    assert epochs == 105
    assert (dist.alive.sum(axis=1) == 1).all()


def test_each_round_samples_every_surviving_op_once():
    dist = DDPNASDistribution(6, 8, pruning_step=2, seed=3)
    rng = np.random.default_rng(1)
    while not dist.finished:
        alive_before = dist.alive.copy()
        n = dist.round_length
        rows = []
        for _ in range(n):
            s = dist.sample()
            rows.append(s)
            dist.tell(s, float(rng.random()))
        draws = np.stack(rows)  # (epochs in round, decisions)
        for i in range(6):
            assert sorted(draws[:, i].tolist()) == np.flatnonzero(alive_before[i]).tolist()


def test_pruned_op_is_argmin_theta_among_survivors_and_accuracy_drives_it():
    dist = DDPNASDistribution(4, 8, pruning_step=3, seed=0)
    quality = np.array([0.5, 0.4, 0.3, 0.9, 0.8, 0.7, 0.6, 0.1])  # op 3 best, op 7 worst

    first = None
    while not dist.finished:
        alive_before = dist.alive.copy()
        s = dist.sample()
        u = dist.tell(s, float(quality[s].mean()))
        if u is None:
            continue
        first = first or u
        for i in range(4):
            survivors = np.flatnonzero(alive_before[i])
            expected = survivors[np.argmin(u["theta"][i, survivors])]
            assert u["pruned"][i] == expected
    assert first is not None


def test_accuracy_not_error_drives_pruning():
    # Realistically close accuracies (softmax(100 * acc) saturates on gaps of tens of points).
    quality = np.array([0.50, 0.49, 0.48, 0.53, 0.52, 0.51, 0.505, 0.47])  # op 3 best, op 7 worst
    dist = DDPNASDistribution(1, 8, pruning_step=1, seed=0)
    ups = _run(dist, lambda s: float(quality[s[0]]))
    # The worst op goes first, then the next worst...; the best op survives.
    assert [u["pruned"][0] for u in ups] == [7, 2, 1, 0, 6, 5, 4]
    assert dist.final_choice().tolist() == [3]


def test_update_v1_formula():
    dist = DDPNASDistribution(1, 3, pruning_step=1, temperature=100.0, seed=0)
    accs = {}
    for _ in range(3):
        s = dist.sample()
        accs[int(s[0])] = [0.2, 0.3, 0.25][int(s[0])]
        u = dist.tell(s, accs[int(s[0])])
    perf = np.array([0.2, 0.3, 0.25]) * 100
    e = np.exp(perf - perf.max())
    expected = e / e.sum() + 0.5 * np.full(3, 1 / 3)
    np.testing.assert_allclose(u["theta"][0], expected)
    assert u["pruned"] == [0]


def test_v3_momentum_formula_and_rows_are_normalised():
    # V3 needs op groups (balanced pruning, tests/nas/test_ddpnas_v3_and_lr.py); two groups here.
    dist = DDPNASDistribution(1, 3, pruning_step=1, update_rule="v3", groups=[[0, 1, 1]], seed=2)
    for _ in range(3):
        s = dist.sample()
        u = dist.tell(s, [0.2, 0.3, 0.25][int(s[0])])
    perf = np.array([0.2, 0.3, 0.25]) * 100
    e = np.exp(perf - perf.max())
    e /= e.sum()
    np.testing.assert_allclose(u["expectation"][0], e)
    raw = np.full(3, 1 / 3) + (1 - 0.8) * e  # v = 0.8 * 0 + 0.2 * E; theta += v
    np.testing.assert_allclose(u["theta"][0], raw / raw.sum())
    assert u["pruned"] == [2]  # arg-min of the conv group: op 0 is its group's last op
    assert dist.finished and dist.alive[0].tolist() == [True, True, False]
    np.testing.assert_allclose(dist.theta.sum(axis=1), 1.0)


def test_state_dict_round_trips_through_json_and_continues_identically():
    a = DDPNASDistribution(5, 8, pruning_step=2, seed=7)
    rng = np.random.default_rng(0)
    for _ in range(11):
        a.tell(a.sample(), float(rng.random()))
    state = json.loads(json.dumps(a.state_dict()))
    b = DDPNASDistribution(5, 8, pruning_step=2, seed=999)
    b.load_state_dict(state)
    while not a.finished:
        sa, sb = a.sample(), b.sample()
        assert sa.tolist() == sb.tolist()
        acc = float(rng.random())
        a.tell(sa, acc)
        b.tell(sb, acc)
    assert b.finished
    np.testing.assert_array_equal(a.theta, b.theta)


def test_warmup_samples_are_permutations_and_uneven_candidates_work():
    dist = DDPNASDistribution(3, [8, 8, 5], pruning_step=1, seed=0)
    cols = np.stack(dist.warmup_samples())
    assert cols.shape == (8, 3)
    assert sorted(cols[:, 0].tolist()) == list(range(8))
    assert set(cols[:, 2].tolist()) == set(range(5))
    assert dist.total_epochs() == schedule_length([8, 8, 5], 1) == sum(range(2, 9))
    ups = _run(dist, lambda s: 0.5)
    assert len(ups) == 7
    assert (dist.alive.sum(axis=1) == 1).all()


def test_bad_inputs_are_rejected():
    dist = DDPNASDistribution(2, 3, seed=0)
    with pytest.raises(ValueError, match="not finite"):
        dist.tell(dist.sample(), float("nan"))
    with pytest.raises(ValueError, match="surviving"):
        dist.tell(np.array([5, 0]), 0.5)
    with pytest.raises(ValueError):
        DDPNASDistribution(2, 3, update_rule="v2")  # type: ignore[arg-type]


def test_prunes_decided_by_exact_ties_are_flagged_and_counted():
    # Every path scores the same: every theta stays equal, so every prune is the tie-break's.
    flat = DDPNASDistribution(3, 4, pruning_step=1, seed=0)
    updates = []
    while not flat.finished:
        update = flat.tell(flat.sample(), 0.5)
        if update is not None:
            updates.append(update)
    assert all(t is True for u in updates for t in u["tied"])
    assert flat.tie_fraction == 1.0 and flat.prunes == 3 * 3

    # Accuracy grows with the op index: every prune is decided by the metric, never by a tie.
    ranked = DDPNASDistribution(3, 4, pruning_step=1, seed=0)
    ranked_updates = _run(ranked, lambda choice: 0.1 * float(choice[0]) + 0.3)
    # Decision 0's op drives the metric: its prunes follow the metric, none by a tie.
    assert ranked.pruned[0] == [0, 1, 2]
    assert [u["tied"][0] for u in ranked_updates] == [False, False, False]
    assert ranked.tie_fraction is not None and ranked.tie_fraction < 1.0

    # The counters survive a state round trip.
    copy = DDPNASDistribution(3, 4, pruning_step=1, seed=0)
    copy.load_state_dict(flat.state_dict())
    assert (copy.prunes, copy.tied_prunes) == (flat.prunes, flat.tied_prunes)
