"""Two rules of the authors' code (zhengxiawu/MIGO_NAS), checked on the real objects:

* the lr step decay counts *search* epochs only (``one_shot_search.py``: warm-up has its own loop,
  the search loop's ``epoch`` starts at 0; decay after a round-closing epoch with
  ``epoch >= lr_flag * w_lr_step``, then ``lr_flag += 1``);
* V3 (``Category_DDPNAS_V3.py``) prunes per DARTS edge at most 3 parameter-free ops (max/avg pool,
  skip, none) and 3 convs, ending after 6 updates with one survivor of each group.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from automl.config import load_config
from automl.errors import UserError
from automl.nas.ddpnas import DDPNASStrategy, v3_groups
from automl.nas.distribution import DDPNASDistribution, balanced_prune_choice, schedule_length
from automl.nas.recorder import MemoryRecorder
from automl.nas.search import SearchLoop, dry_run_plan
from search_spaces.genotypes import validate_genotype
from search_spaces.ops import PRIMITIVES
from search_spaces.registry import create_space
from tests.nas.tiny import tiny_config

# The DARTS op order: max_pool, avg_pool, skip, sep3, sep5, dil3, dil5, none.
PARAM_FREE = [0, 1, 2, 7]
CONVS = [3, 4, 5, 6]
DARTS_GROUPS = [0 if j in PARAM_FREE else 1 for j in range(8)]

def authors_lr_trajectory(round_lengths, every, lr=0.1, decay=0.1, min_lr=1e-4, first_index=0):
    """The lr at the start of each *search* epoch under the authors' rule (lines 177-196 of
    one_shot_search.py), written out independently of our LrSchedule. ``first_index`` is the
    index the counter gives the first search epoch (the authors: 0)."""
    round_ends = set((np.cumsum(round_lengths) - 1).tolist())
    out, flag = [], 1
    for k in range(int(sum(round_lengths))):
        out.append(lr)
        if lr > min_lr and first_index + k >= flag * every and k in round_ends:
            lr *= decay
            flag += 1
    return out


# --- the lr rule with warm-up -------------------------------------------------------------------


def test_lr_decay_counts_search_epochs_not_warmup_passes_and_survives_resume(tmp_path: Path):
    # 4 edges x 8 ops, one round per update: rounds of 8, 7, ..., 2 search epochs (35 in all);
    # 2 warm-up epochs = 16 warm-up passes before them; decay interval 10 epochs.
    cfg = dict(ddpnas={"pruning_step": 1, "warmup_epochs": 2}, optim={"lr_decay_every": 10})
    rounds = [8, 7, 6, 5, 4, 3, 2]
    expected = authors_lr_trajectory(rounds, every=10)
    # Round ends at search epochs 7, 14, 20, 25, 29, 32, 34: decays after 14, 20 and 32.
    assert [i for i in range(1, 35) if expected[i] < expected[i - 1]] == [15, 21, 33]
    # Counting warm-up passes as well would decay elsewhere: the test can tell the two apart.
    shifted = authors_lr_trajectory(rounds, every=10, first_index=16)
    assert [i for i in range(1, 35) if shifted[i] < shifted[i - 1]] == [8, 15, 21, 26]

    full = MemoryRecorder()
    out = SearchLoop(tiny_config(**cfg), full).run()
    assert out is not None and out.epochs == 16 + 35
    phases = [full.epochs[e]["phase"] for e in range(51)]
    assert phases == ["warmup"] * 16 + ["search"] * 35
    lrs = [full.epochs[e]["lr"] for e in range(51)]
    assert lrs == pytest.approx([0.1] * 16 + expected)

    # Killed just before the first decay (16 warm-up + 14 search epochs), then resumed.
    part = MemoryRecorder()
    assert SearchLoop(tiny_config(**cfg), part, run_dir=tmp_path).run(stop_after=30) is None
    resumed = SearchLoop(tiny_config(**cfg), part, run_dir=tmp_path).run(resume=True)
    assert resumed.summary["resumed"] and resumed.summary["epochs_this_process"] == 21
    assert [part.epochs[e]["lr"] for e in range(51)] == lrs
    assert resumed.genotype == out.genotype


def test_schedule_epoch_is_the_search_epoch_index():
    space = create_space("darts", nodes=1)
    s = DDPNASStrategy(space, pruning_step=1, warmup_epochs=1)
    assert s.warmup_passes() == 8
    for _ in range(8):
        s.end_epoch(s.next_sample(), 0.5)
        assert s.phase() == "warmup" and s.schedule_epoch(99) == -1 and not s.round_boundary()
    for k in range(8):
        s.end_epoch(s.next_sample(), 0.5)
        assert s.schedule_epoch(8 + k) == k
    assert s.round_boundary()  # search epoch 7 closed the first round


# --- V3 balanced pruning ------------------------------------------------------------------------


def test_balanced_choice_hand_worked_prunes_a_parameter_free_op_instead_of_a_fourth_conv():
    # Three convs (sep3, sep5, dil3) are gone; dil_conv_5x5 has the lowest theta of the survivors.
    theta = np.array([0.20, 0.15, 0.18, 0.01, 0.02, 0.03, 0.10, 0.19])
    alive = np.array([True, True, True, False, False, False, True, True])
    plain = int(np.argmin(np.where(alive, theta, np.inf)))
    assert PRIMITIVES[plain] == "dil_conv_5x5"  # plain arg-min would remove the last conv
    pick = balanced_prune_choice(theta, alive, np.array(DARTS_GROUPS))
    assert PRIMITIVES[pick] == "avg_pool_3x3"  # V3: the lowest parameter-free op instead
    # While the conv group has spares, V3 is plain arg-min.
    assert balanced_prune_choice(theta, np.ones(8, bool), np.array(DARTS_GROUPS)) == 3
    # One survivor per group: nothing left to prune.
    assert balanced_prune_choice(theta, np.eye(8, dtype=bool)[6] | np.eye(8, dtype=bool)[7],
                                 np.array(DARTS_GROUPS)) is None


def _run(dist, acc_fn):
    updates, epochs = [], 0
    while not dist.finished:
        assert dist.remaining_epochs() == dist.total_epochs() - epochs
        s = dist.sample()
        u = dist.tell(s, acc_fn(s))
        epochs += 1
        if u is not None:
            updates.append(u)
    assert dist.remaining_epochs() == 0
    return updates, epochs


def test_v3_one_edge_keeps_a_conv_where_v1_prunes_all_four():
    # Convs are the worst ops here, parameter-free ones the best (close accuracies, as in practice).
    quality = np.array([0.60, 0.61, 0.62, 0.50, 0.51, 0.52, 0.53, 0.63])
    acc = lambda s: float(quality[s[0]])  # noqa: E731
    v1 = DDPNASDistribution(1, 8, pruning_step=1, seed=0)
    v1_ups, _ = _run(v1, acc)
    assert [u["pruned"][0] for u in v1_ups] == [3, 4, 5, 6, 0, 1, 2]  # the 4th conv goes 4th

    v3 = DDPNASDistribution(1, 8, pruning_step=1, update_rule="v3", groups=[DARTS_GROUPS], seed=0)
    assert v3.total_epochs() == 8 + 7 + 6 + 5 + 4 + 3 and v3.total_updates() == 6
    ups, epochs = _run(v3, acc)
    assert epochs == 33 and len(ups) == 6
    # Update 4: dil_conv_5x5 has the lowest theta but is the last conv -> max_pool goes instead.
    assert [u["pruned"][0] for u in ups] == [3, 4, 5, 0, 1, 2]
    alive4 = ups[3]["alive"][0]
    assert ups[3]["theta"][0][6] < min(ups[3]["theta"][0][j] for j in (0, 1, 2, 7))
    assert not alive4[0] and alive4[6]
    assert np.flatnonzero(v3.alive[0]).tolist() == [6, 7]  # dil_conv_5x5 and none survive


def test_v3_on_the_darts_edges_caps_each_group_at_three_and_stops_at_two_survivors():
    dist = DDPNASDistribution(28, 8, pruning_step=3, update_rule="v3", groups=[DARTS_GROUPS] * 28, seed=5)
    assert dist.total_epochs() == 3 * (8 + 7 + 6 + 5 + 4 + 3) == 99
    assert schedule_length([8] * 28, 3, keep=[2] * 28) == 99
    rng = np.random.default_rng(3)
    redirected = 0
    alive_before = dist.alive.copy()
    ups: list[dict] = []
    while not dist.finished:
        s = dist.sample()
        u = dist.tell(s, float(0.5 + 0.05 * rng.random()))
        if u is None:
            continue
        ups.append(u)
        for i in range(28):
            pruned = np.flatnonzero(dist.valid[i] & ~dist.alive[i])
            assert sum(j in PARAM_FREE for j in pruned) <= 3 and sum(j in CONVS for j in pruned) <= 3
            survivors = np.flatnonzero(alive_before[i])
            plain = survivors[np.argmin(u["theta"][i, survivors])]
            redirected += int(u["pruned"][i] != plain)
        alive_before = dist.alive.copy()
    assert len(ups) == 6 and dist.epochs_done == 99
    assert redirected > 0  # the cap really acted somewhere
    for i in range(28):
        left = np.flatnonzero(dist.alive[i]).tolist()
        assert len(left) == 2 and sum(j in PARAM_FREE for j in left) == 1
    np.testing.assert_allclose(dist.theta.sum(axis=1), 1.0)
    with pytest.raises(RuntimeError, match="finished"):
        dist.sample()


def test_v3_state_round_trips_mid_search():
    groups = [DARTS_GROUPS] * 5
    a = DDPNASDistribution(5, 8, pruning_step=2, update_rule="v3", groups=groups, seed=7)
    rng = np.random.default_rng(0)
    for _ in range(8 * 2 + 7 * 2 + 9):  # two updates done, mid-way through the third step
        a.tell(a.sample(), float(0.5 + 0.05 * rng.random()))
    assert a.update_index == 2
    state = json.loads(json.dumps(a.state_dict()))
    b = DDPNASDistribution(5, 8, pruning_step=2, update_rule="v3", groups=groups, seed=999)
    b.load_state_dict(state)
    assert b.remaining_epochs() == a.remaining_epochs()
    while not a.finished:
        sa, sb = a.sample(), b.sample()
        assert sa.tolist() == sb.tolist()
        acc = float(0.5 + 0.05 * rng.random())
        ua, ub = a.tell(sa, acc), b.tell(sb, acc)
        assert (ua is None) == (ub is None)
        if ua is not None:
            assert ua["pruned"] == ub["pruned"]
    assert b.finished and b.update_index == 6
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.alive, b.alive)
    with pytest.raises(ValueError, match="update rule or op groups"):
        DDPNASDistribution(5, 8, pruning_step=2, seed=0).load_state_dict(state)


def test_v3_needs_groups_and_v1_refuses_them():
    with pytest.raises(ValueError, match="pass groups"):
        DDPNASDistribution(2, 8, update_rule="v3")
    with pytest.raises(ValueError, match="belong to update rule 'v3'"):
        DDPNASDistribution(2, 8, groups=[DARTS_GROUPS] * 2)
    with pytest.raises(ValueError, match="one group id per candidate"):
        DDPNASDistribution(2, 8, update_rule="v3", groups=[DARTS_GROUPS, [0, 1]])


def test_v3_groups_come_from_the_darts_op_names_and_chain_spaces_refuse_v3():
    darts = create_space("darts", nodes=4)
    assert v3_groups(darts.decisions()) == [DARTS_GROUPS] * 28
    for name in ("mobilenet", "face"):
        space = create_space(name, task="fer", layers=6)
        with pytest.raises(UserError, match="update_rule 'v1'"):
            DDPNASStrategy(space, update_rule="v3")
        DDPNASStrategy(space, update_rule="v1")  # v1 is fine there


def test_v3_plan_of_the_paper_preset_is_99_epochs_and_6_updates():
    v1 = dry_run_plan(load_config("paper"))
    assert v1["search_epochs"] == 105 and v1["updates"] == 7
    plan = dry_run_plan(load_config("paper", overrides={"ddpnas": {"update_rule": "v3", "warmup_epochs": 2}}))
    assert plan["update_rule"] == "v3" and plan["updates"] == 6
    assert plan["warmup_passes"] == 16 and plan["search_epochs"] == 16 + 99


def test_v3_tiny_darts_search_ends_with_one_op_per_group_and_derives_from_survivors():
    rec = MemoryRecorder()
    out = SearchLoop(tiny_config(ddpnas={"pruning_step": 1, "update_rule": "v3"}), rec).run()
    assert out is not None and out.epochs == 33 and rec.plan["updates"] == 6
    assert sorted(rec.epochs) == list(range(33)) and len(rec.distributions) == 6
    final = rec.distributions[6]["alive"]
    assert (final.sum(axis=1) == 2).all() and (final[:, PARAM_FREE].sum(axis=1) == 1).all()
    survivors = rec.summary["survivors"]
    assert [len(s) for s in survivors] == [2, 2, 2, 2]
    validate_genotype(out.genotype)
    # nodes=1: each cell is node 2 with inputs 0 and 1 = decision rows (cell * 2 + input).
    for c, cell in enumerate(("normal", "reduce")):
        for op, src in out.genotype[cell]:
            assert op in survivors[c * 2 + src] and op != "none"


def test_v3_finalize_never_brings_back_a_pruned_op():
    # The authors keep pruned ops' theta under V3; give every pruned op the largest theta of its
    # row and check that the genotype still uses survivors only.
    space = create_space("darts", nodes=2)
    s = DDPNASStrategy(space, pruning_step=1, update_rule="v3", seed=1)
    rng = np.random.default_rng(0)
    while not s.finished:
        s.end_epoch(s.next_sample(), float(0.5 + 0.05 * rng.random()))
    alive = s.dist.alive
    s.dist.theta = np.where(alive, s.dist.theta, 1.0 + rng.random(alive.shape))
    result = s.finalize(lambda choice: 0.0)
    survivors = result.summary["survivors"]
    # Decision rows of nodes=2: per cell (node 2: inputs 0, 1; node 3: inputs 0, 1, 2).
    row = {(c, node, src): 5 * ci + r for ci, c in enumerate(("normal", "reduce"))
           for r, (node, src) in enumerate([(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)])}

    def ops_outside_survivors(genotype):  # [(op, its decision row)]
        slots = [(op, row[(c, 2 + k // 2, src)]) for c in ("normal", "reduce")
                 for k, (op, src) in enumerate(genotype[c])]
        return [(op, r) for op, r in slots if op not in survivors[r]]

    assert ops_outside_survivors(space.derive_genotype(s.dist.theta))  # raw theta would
    assert ops_outside_survivors(result.genotype) == []
    # Skip-capped variants put a parameter-free op on exactly `cap` slots: only an edge whose
    # parameter-free survivor is 'none' may have to borrow a (zero-weighted) pruned one.
    for variant in result.summary["variants"].values():
        for op, r in ops_outside_survivors(variant):
            assert op in ("max_pool_3x3", "avg_pool_3x3", "skip_connect") and "none" in survivors[r]
