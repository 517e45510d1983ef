"""The DARTS space: decisions, single-path and mixed supernets, genotypes, eval network, cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.darts import DartsSpace
from search_spaces.genotypes import GenotypeError, genotype_to_choice
from search_spaces.ops import PARAMETRIC_OPS, PRIMITIVES
from search_spaces.registry import UnknownSpaceError, create_space


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_registry_and_decisions_in_design_order():
    space = create_space("darts", nodes=4, task="fer")
    assert isinstance(space, DartsSpace)
    decisions = space.decisions()
    assert len(decisions) == 28
    assert decisions[0].candidates == (
        "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
        "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "none",
    )  # fmt: skip
    assert decisions[0].name == "normal.n2.in0" and decisions[14].name == "reduce.n2.in0"
    with pytest.raises(UnknownSpaceError, match="unknown search space"):
        create_space("nope")


def test_single_path_runs_only_the_sampled_ops():
    space = DartsSpace(nodes=2)
    net = space.supernet(in_channels=1, num_outputs=3, image_size=8, init_channels=2, layers=3)
    calls: dict[int, int] = {}
    for m in net.modules():
        if m.__class__.__name__ == "SearchEdge":
            for op in m.candidates:
                op.register_forward_hook(
                    lambda mod, i, o, key=id(op): calls.__setitem__(key, calls.get(key, 0) + 1)
                )
    choice = [3, 4, 5, 6, 0, 3, 4, 5, 6, 0]  # no 'none'; 5 edges per cell
    net.set_sample(choice)
    out = net(torch.rand(4, 1, 8, 8))
    out.sum().backward()
    cells = list(net.cells)
    for cell in cells:
        sample = choice[5:] if cell.reduction else choice[:5]
        for e, edge in enumerate(cell.edges):
            for k, op in enumerate(edge.candidates):
                ran = calls.get(id(op), 0) > 0
                assert ran == (k == sample[e]), (cell.reduction, e, k)
                grads = [p.grad for p in op.parameters()]
                if k != sample[e]:
                    assert all(g is None for g in grads)
                elif grads:
                    assert all(g is not None for g in grads)
    assert net.arch_parameters() == []


def test_single_path_requires_a_valid_sample():
    net = DartsSpace(nodes=1).supernet(in_channels=1, num_outputs=2, image_size=8, init_channels=2, layers=3)
    with pytest.raises(RuntimeError, match="set_sample"):
        net(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="expected 4"):
        net.set_sample([0, 1])
    net.set_sample([7, 7, 7, 7])  # every edge 'none' still gives an output of the right shape
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 2)


def test_mixed_mode_has_alphas_that_get_gradients():
    space = DartsSpace(nodes=2)
    net = space.supernet(in_channels=3, num_outputs=4, image_size=8, init_channels=2, layers=3, mode="mixed")
    alphas = net.arch_parameters()
    assert [a.shape for a in alphas] == [(5, 8), (5, 8)]
    assert not any(p is a for p in net.weight_parameters() for a in alphas)
    net(torch.rand(2, 3, 8, 8)).sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)
    w = net.arch_weights()
    assert w.shape == (10, 8)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)


def test_derive_genotype_takes_best_non_none_op_and_top2_edges():
    space = DartsSpace(nodes=2)
    w = np.full((10, 8), 0.01)
    # normal cell, node 2 (edges 0, 1): both kept; edge 0 prefers 'none' but that is ignored
    w[0, 7], w[0, 3] = 0.9, 0.5
    w[1, 4] = 0.6
    # node 3 (edges 2, 3, 4 = inputs 0, 1, 2): inputs 2 and 0 win
    w[2, 5], w[3, 0], w[4, 6] = 0.4, 0.2, 0.7
    g = space.derive_genotype(w)
    assert g["normal"] == [["sep_conv_3x3", 0], ["sep_conv_5x5", 1], ["dil_conv_3x3", 0], ["dil_conv_5x5", 2]]
    assert g["normal_concat"] == [2, 3] and g["space"] == "darts"
    assert space.validate_genotype(g) == g


@pytest.mark.parametrize("cap", [2, 4, 6])
def test_skip_capped_variant_has_exactly_cap_parameter_free_ops(cap):
    space = DartsSpace(nodes=4)
    w = np.random.default_rng(cap).random((28, 8))
    w[:, 2] += 0.5  # skip connections dominate, as they do in collapsed searches
    g = space.derive_genotype(w, skip_cap=cap)
    free = sum(op not in PARAMETRIC_OPS for op, _ in g["normal"])
    assert free == cap
    space.validate_genotype(g)


def test_validate_genotype_errors_are_clear():
    space = DartsSpace(nodes=2)
    good = space.derive_genotype(np.random.default_rng(0).random((10, 8)))
    bad_op = {**good, "normal": [["conv_9x9", 0]] + good["normal"][1:]}
    with pytest.raises(GenotypeError, match="unknown op 'conv_9x9'"):
        space.validate_genotype(bad_op)
    bad_src = {**good, "normal": good["normal"][:3] + [["skip_connect", 3]]}
    with pytest.raises(GenotypeError, match="input 3 of node 3"):
        space.validate_genotype(bad_src)
    with pytest.raises(GenotypeError, match="lacks"):
        space.validate_genotype({"space": "darts", "normal": good["normal"]})
    assert DartsSpace(nodes=4).validate_genotype(good)["nodes"] == 2  # genotypes carry their node count
    with pytest.raises(GenotypeError, match="must list 4"):
        space.validate_genotype({**good, "reduce": good["reduce"][:2]})
    with pytest.raises(GenotypeError, match="shape"):
        space.derive_genotype(np.zeros((3, 8)))


def test_network_forward_aux_drop_path_and_cost():
    space = DartsSpace(nodes=2)
    g = space.derive_genotype(np.random.default_rng(1).random((10, 8)))
    net = space.network(
        g, in_channels=1, num_outputs=5, image_size=16, init_channels=4, layers=4, drop_path=0.3
    )
    net.train()
    logits, aux = net.forward_with_aux(torch.rand(3, 1, 16, 16))
    assert logits.shape == (3, 5) and aux is not None and aux.shape == (3, 5)
    net.eval()
    assert net.forward_with_aux(torch.rand(3, 1, 16, 16))[1] is None
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 5)
    cost = space.cost(g, in_channels=1, num_outputs=5, image_size=16, init_channels=4, layers=4)
    no_aux = space.network(
        g, in_channels=1, num_outputs=5, image_size=16, init_channels=4, layers=4, auxiliary=False
    )
    assert cost["params"] == sum(p.numel() for p in no_aux.parameters())
    assert cost["mflops"] > 0


def test_random_choice_is_a_discrete_cell_and_round_trips():
    space = DartsSpace(nodes=4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        choice = space.random_choice(rng)
        assert len(choice) == 28
        g = space.genotype_from_choice(choice)
        assert genotype_to_choice(g) == choice
        assert all(op in PRIMITIVES and op != "none" for op, _ in g["normal"] + g["reduce"])
