"""The mobilenet space: decisions, supernet modes, genotypes, costs, budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces.base import SearchSpace
from search_spaces.blocks import MBCONV_OPS, SKIP, ConvBNAct, MBConv, count_cost
from search_spaces.budget import BudgetError
from search_spaces.mobilenet import MobileNetSpace

SIZES = dict(in_channels=1, num_outputs=7, image_size=48, init_channels=4)


@pytest.fixture(autouse=True)
def _one_thread():
    # The nets are tiny; a 2-thread pool on a busy 2-core box is far slower than one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_choice(space, rng):
    return [int(rng.integers(len(d.candidates))) for d in space.decisions()]


def test_decisions_offer_skip_only_where_shapes_allow():
    space = MobileNetSpace(layers=7)
    assert isinstance(space, SearchSpace)
    assert space.depths == (2, 2, 3)
    decisions = space.decisions()
    assert [d.name for d in decisions] == [f"layer{i}" for i in range(7)]
    first_of_stage = {0, 2, 4}
    for i, d in enumerate(decisions):
        expected = MBCONV_OPS if i in first_of_stage else MBCONV_OPS + (SKIP,)
        assert d.candidates == expected
    mask = space.candidate_mask()
    assert mask.shape == (7, 7) and mask.sum() == 7 * 6 + 4


@pytest.mark.parametrize("image_size,in_channels", [(16, 1), (32, 1), (48, 3), (64, 1), (112, 3)])
def test_supernet_and_network_shapes(image_size, in_channels):
    space = MobileNetSpace(layers=4)
    rng = np.random.default_rng(image_size)
    net = space.supernet(in_channels=in_channels, num_outputs=5, image_size=image_size, init_channels=4)
    choice = random_choice(space, rng)
    net.set_sample(choice)
    x = torch.rand(2, in_channels, image_size, image_size)
    assert net(x).shape == (2, 5)
    model = space.network(
        space.genotype_from_choice(choice),
        in_channels=in_channels,
        num_outputs=5,
        image_size=image_size,
        init_channels=4,
    )
    logits, emb = model.forward_with_embedding(x)
    assert logits.shape == (2, 5) and emb.shape == (2, model.embed_dim) == (2, 32)
    # Stem stride 1 below 64x64, then three stride-2 stages.
    assert model.features(x).shape[-1] == {16: 2, 32: 4, 48: 6, 64: 4, 112: 7}[image_size]


def test_single_path_runs_and_trains_only_the_sampled_ops():
    space = MobileNetSpace(layers=5)
    net = space.supernet(**SIZES)
    calls: dict[tuple[int, int], int] = {}
    for d, layer in enumerate(net.layers):
        for j, op in enumerate(layer.ops):
            op.register_forward_hook(lambda *_, key=(d, j): calls.__setitem__(key, calls.get(key, 0) + 1))
    choice = [1, 3, 6, 0, 5]
    net.set_sample(choice)
    net(torch.rand(2, 1, 48, 48)).sum().backward()
    assert calls == {(d, c): 1 for d, c in enumerate(choice)}
    for d, layer in enumerate(net.layers):
        for j, op in enumerate(layer.ops):
            grads = [p.grad for p in op.parameters()]
            if j == choice[d]:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads)
    assert net.arch_parameters() == []
    with pytest.raises(ValueError, match="decisions"):
        net.set_sample([0, 0])
    with pytest.raises(ValueError, match="out of range"):
        net.set_sample([0, 0, 7, 0, 0])
    fresh = space.supernet(**SIZES)
    with pytest.raises(RuntimeError, match="set_sample"):
        fresh(torch.rand(1, 1, 48, 48))


def test_mixed_mode_alphas_get_gradients_only_on_real_candidates():
    space = MobileNetSpace(layers=4)
    net = space.supernet(mode="mixed", **SIZES)
    (alpha,) = net.arch_parameters()
    assert alpha.shape == (4, 7)
    assert all(p is not alpha for p in net.weight_parameters())
    assert len(net.weight_parameters()) + 1 == len(list(net.parameters()))
    net(torch.rand(2, 1, 48, 48)).pow(2).sum().backward()
    mask = torch.as_tensor(space.candidate_mask())
    assert torch.all(alpha.grad[~mask] == 0) and torch.all(alpha.grad[mask] != 0)
    probs = net.arch_weights()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(probs[~space.candidate_mask()] == 0)
    net.set_sample([0, 1, 2, 3])  # a discrete path of the mixed supernet, for evaluation
    assert net(torch.rand(1, 1, 48, 48)).shape == (1, 7)
    net.set_sample(None)


def test_genotype_round_trip_and_derivation():
    space = MobileNetSpace(layers=6)
    rng = np.random.default_rng(0)
    for _ in range(5):
        choice = random_choice(space, rng)
        genotype = json.loads(json.dumps(space.genotype_from_choice(choice)))
        assert genotype["space"] == "mobilenet" and genotype["depths"] == [2, 2, 2]
        assert space.choice_from_genotype(genotype) == choice
    weights = rng.random(space.candidate_mask().shape)
    weights[~space.candidate_mask()] = 99.0  # padding never wins
    genotype = space.derive_genotype(weights)
    masked = np.where(space.candidate_mask(), weights, -np.inf)
    assert space.choice_from_genotype(genotype) == list(masked.argmax(axis=1))
    # Ragged rows (one per decision) work too; NaN / -inf cells never win (pruned ops).
    rows = [np.full(len(d.candidates), 0.1) for d in space.decisions()]
    for row in rows[1::2]:
        row[-1] = 5.0  # skip wins on layers 1, 3, 5
    rows[0][0] = np.nan
    genotype = space.derive_genotype(rows)
    assert genotype["ops"][1::2] == [SKIP] * 3 and genotype["ops"][0] == MBCONV_OPS[1]
    capped = space.derive_genotype(rows, skip_cap=1)
    assert capped["ops"].count(SKIP) == 1
    with pytest.raises(ValueError, match="rows"):
        space.derive_genotype(np.ones((3, 7)))


def test_validate_genotype_rejects_bad_genotypes_clearly():
    space = MobileNetSpace(layers=6)
    good = space.genotype_from_choice([0] * 6)
    assert space.validate_genotype(good) is good
    bad = dict(good, ops=["mb_k3_e3", "sep_conv_9x9"] + good["ops"][2:])
    with pytest.raises(ValueError, match=r"layer 1 has op 'sep_conv_9x9'.*choose one of"):
        space.validate_genotype(bad)
    with pytest.raises(ValueError, match="layer 2 has op 'skip'"):  # first layer of stage 2 changes shape
        space.validate_genotype(dict(good, ops=good["ops"][:2] + [SKIP] + good["ops"][3:]))
    with pytest.raises(ValueError, match="space 'darts'"):
        space.validate_genotype(dict(good, space="darts"))
    with pytest.raises(ValueError, match="6 ops"):
        space.validate_genotype(dict(good, ops=good["ops"][:5]))
    with pytest.raises(ValueError, match="unknown mobilenet space option"):
        space.network(good, in_channels=1, num_outputs=7, image_size=48, widht=3)
    with pytest.raises(ValueError, match="layers=5"):
        space.supernet(in_channels=1, num_outputs=7, image_size=48, layers=5)


def test_network_follows_the_genotype_depths_and_width_options():
    genotype = MobileNetSpace(layers=6).genotype_from_choice([0, 6, 1, 2, 0, 6])
    other = MobileNetSpace()  # default depths differ: the genotype's own depths are used
    assert other.depths != (2, 2, 2)
    model = other.network(
        genotype,
        in_channels=1,
        num_outputs=3,
        image_size=32,
        init_channels=6,
        drop_path=0.1,
        layers=20,  # DARTS-only knobs are ignored
        nodes=4,
    )
    assert len(model.layers) == 6 and model.stem[0].out_channels == 6
    assert isinstance(model.layers[1], nn.Identity) and isinstance(model.layers[5], nn.Identity)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 3)
    assert other.cost(genotype, in_channels=1, num_outputs=3, image_size=32, init_channels=6)[
        "params"
    ] == sum(p.numel() for p in model.parameters())


def test_count_cost_matches_hand_count():
    conv = nn.Sequential(ConvBNAct(3, 8, 3, 2), nn.Flatten(), nn.LazyLinear(5))
    conv(torch.zeros(1, 3, 16, 16))
    params, macs = count_cost(conv, (1, 3, 16, 16))
    assert params == sum(p.numel() for p in conv.parameters())
    assert macs == 8 * 8 * 8 * (3 * 9) + (8 * 8 * 8) * 5
    block = MBConv(8, 8, kernel=5, expand=3, stride=1)
    _, macs = count_cost(block, (1, 8, 10, 10))
    assert macs == 100 * (8 * 24) + 100 * 24 * 25 + 100 * (24 * 8)


@pytest.mark.parametrize("image_size,in_channels", [(32, 1), (112, 3)])
def test_cost_is_consistent_with_the_built_network(image_size, in_channels):
    space = MobileNetSpace(layers=5)
    rng = np.random.default_rng(1)
    sizes = dict(in_channels=in_channels, num_outputs=7, image_size=image_size, init_channels=4)
    for _ in range(3):
        genotype = space.genotype_from_choice(random_choice(space, rng))
        cost = space.cost(genotype, **sizes)
        model = space.network(genotype, **sizes)
        params, macs = count_cost(model, (1, in_channels, image_size, image_size))
        assert cost["params"] == params == sum(p.numel() for p in model.parameters())
        assert cost["mflops"] == pytest.approx(macs / 1e6)
    deeper = space.cost(space.genotype_from_choice([5] * 5), **sizes)
    shallower = space.cost(space.genotype_from_choice([0, 0, 6, 0, 6]), **sizes)
    assert deeper["params"] > shallower["params"] and deeper["mflops"] > shallower["mflops"]


def test_budget_sampling_repair_and_final_choice_stay_within_budget():
    space = MobileNetSpace(layers=6)
    sizes = dict(in_channels=1, num_outputs=7, image_size=48, init_channels=4)
    table = space.cost_table(**sizes)
    cheapest = table.total([0, 6, 0, 6, 0, 6])
    priciest = table.total([5] * 6)
    limit = (cheapest[1] + priciest[1]) / 2 / 1e6
    budget = space.budget(max_mflops=limit, **sizes)
    rng = np.random.default_rng(0)
    over = 0
    for _ in range(50):
        raw = random_choice(space, rng)
        over += not budget.feasible(raw)
        fixed = budget.repair(raw, rng)
        assert budget.feasible(fixed) and budget.cost(fixed)["mflops"] <= limit
        assert space.sample_within_budget(rng, max_mflops=limit, **sizes) is not None
        assert space.feasible(budget.sample(rng), max_mflops=limit, **sizes)
    assert over > 0  # the limit really binds
    # Repair prefers the caller's subset (e.g. DDPNAS: ops not yet sampled this round).
    preferred = space.candidate_mask().copy()
    preferred[:, 1:6] = False  # only mb_k3_e3 and skip
    fixed = budget.repair([5] * 6, rng, preferred=preferred)
    assert budget.feasible(fixed) and set(fixed) <= {0, 5, 6} and fixed != [5] * 6
    assert budget.repair(fixed, rng) == fixed  # a feasible choice is left alone
    # The final genotype: argmax when it fits, the least-weight-losing swaps otherwise.
    weights = np.zeros(space.candidate_mask().shape)
    weights[:, 5] = 1.0
    best = budget.best_within(weights)
    assert budget.feasible(best) and best != [5] * 6
    assert space.budget(max_mflops=1e6, **sizes).best_within(weights) == [5] * 6
    # Pruning guard: with only the priciest op left on a layer, the budget may become unreachable.
    alive = space.candidate_mask().copy()
    assert budget.satisfiable(alive)
    tight = space.budget(max_mflops=cheapest[1] / 1e6 * 1.001, **sizes)
    assert tight.satisfiable(alive) and not tight.prunable(alive, 1, 6)
    with pytest.raises(BudgetError, match="cheapest needs"):
        space.budget(max_mflops=cheapest[1] / 1e6 * 0.5, **sizes).sample(rng)
    params_budget = space.budget(max_params=priciest[0] / 1e6 * 0.6, **sizes)
    assert params_budget.feasible(params_budget.sample(rng))


def test_measure_latency_reports_positive_times():
    space = MobileNetSpace(layers=3)
    genotype = space.genotype_from_choice([0, 0, 0])
    result = space.measure_latency(genotype, warmup=1, repeats=3, **SIZES)
    assert result["device"] == "cpu" and 0 < result["latency_ms"] <= result["latency_p90_ms"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace: what the export uses
def test_drop_path_prob_drives_stochastic_depth_of_residual_layers():
    space = MobileNetSpace(layers=6)
    model = space.network(space.genotype_from_choice([0, 1, 0, 1, 0, 1]), **SIZES)
    assert model.drop_path_prob == 0.0
    model.drop_path_prob = 0.3  # what the training loop does every epoch
    probs = [m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    assert len(probs) == 3 and max(probs) == pytest.approx(0.3) and probs == sorted(probs)
    model.train()
    x = torch.rand(8, 1, 48, 48)
    torch.manual_seed(0)
    a = model(x)
    model.eval()
    assert not torch.allclose(a, model(x))
    traced = torch.jit.trace(model, x)  # the export path traces eval-mode networks
    torch.testing.assert_close(traced(x), model(x))


def test_budgeted_ddpnas_pruning_ends_within_budget():
    """The recipe for DDPNAS: prune with op_to_prune; the single survivors fit the budget."""
    space = MobileNetSpace(layers=6)
    sizes = dict(in_channels=1, num_outputs=7, image_size=48, init_channels=4)
    table = space.cost_table(**sizes)
    cheapest = table.total([0, 6, 0, 6, 0, 6])[1]
    budget = space.budget(max_mflops=cheapest * 1.3 / 1e6, **sizes)
    rng = np.random.default_rng(0)
    alive = space.candidate_mask().copy()
    theta = np.where(alive, 0.0, np.nan)
    theta[:, 5] = 1.0  # the search likes the priciest op everywhere
    theta += rng.random(theta.shape) * 0.1
    while alive.sum(axis=1).max() > 1:
        for d in range(alive.shape[0]):
            op = budget.op_to_prune(theta, alive, d)
            if op is not None:
                alive[d, op] = False
        assert budget.satisfiable(alive)
    survivors = alive.argmax(axis=1).tolist()
    assert budget.feasible(survivors)
    unconstrained = space.budget(**sizes)
    assert unconstrained.op_to_prune(theta, space.candidate_mask(), 0) == int(np.nanargmin(theta[0]))
