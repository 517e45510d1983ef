"""The face space: AU head decision, every head's shapes and learning, genotypes, costs, budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from search_spaces.base import SearchSpace
from search_spaces.blocks import count_cost
from search_spaces.face import AU_HEADS, FaceSpace, attention_images

NUM_AUS = 12


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def au_genotype(head: str, layers: int = 3) -> dict:
    space = FaceSpace(task="au", layers=layers)
    return space.genotype_from_choice([1] * layers + [AU_HEADS.index(head)])


def test_decisions_per_task():
    au = FaceSpace(task="au", layers=4)
    fer = FaceSpace(task="fer", layers=4)
    assert isinstance(au, SearchSpace)
    assert [d.name for d in au.decisions()][-1] == "au_head"
    assert au.decisions()[-1].candidates == AU_HEADS
    assert [d.name for d in fer.decisions()] == [f"layer{i}" for i in range(4)]
    assert au.candidate_mask().shape == (5, 7) and au.candidate_mask()[-1].sum() == 4
    with pytest.raises(ValueError, match="unknown face task"):
        FaceSpace(task="age")
    with pytest.raises(ValueError, match="AU heads"):
        FaceSpace(task="au", heads=["linear", "capsules"])


@pytest.mark.parametrize("head", AU_HEADS)
@pytest.mark.parametrize("image_size,in_channels,feat", [(48, 1, 12), (64, 3, 8), (112, 1, 14)])
def test_au_heads_shapes(head, image_size, in_channels, feat):
    model = FaceSpace(task="au").network(
        au_genotype(head),
        in_channels=in_channels,
        num_outputs=NUM_AUS,
        image_size=image_size,
        init_channels=4,
        head_dim=16,
    )
    x = torch.rand(2, in_channels, image_size, image_size)
    logits, emb = model.forward_with_embedding(x)
    assert logits.shape == (2, NUM_AUS)
    assert emb.shape == (2, model.embed_dim) and model.embed(x).shape == emb.shape
    maps = model.attention_maps()
    if head == "linear":
        assert maps is None
    else:
        assert maps.shape == (2, NUM_AUS, feat, feat) and not maps.requires_grad
        images = attention_images(maps, image_size)
        assert images.dtype == torch.uint8 and images.shape == (2, NUM_AUS, image_size, image_size)
        assert int(images.max()) == 255


@pytest.mark.parametrize("head", AU_HEADS)
def test_each_au_head_learns_from_au_labels(head):
    torch.manual_seed(0)
    model = FaceSpace(task="au").network(
        au_genotype(head), in_channels=1, num_outputs=NUM_AUS, image_size=32, init_channels=4, head_dim=16
    )
    x = torch.rand(16, 1, 32, 32)
    y = (torch.rand(16, NUM_AUS) < 0.3).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    if head == "au_graph":
        adj = model.head.adjacency()
        torch.testing.assert_close(adj.sum(dim=1), torch.ones(NUM_AUS))
        assert model.head.adjacency_logits.grad is not None


def test_fer_network_is_a_softmax_classifier_on_the_same_backbone():
    space = FaceSpace(task="fer", layers=3)
    genotype = space.genotype_from_choice([0, 2, 4])
    assert genotype["task"] == "fer" and genotype["head"] == "linear"
    model = space.network(genotype, in_channels=3, num_outputs=7, image_size=48, init_channels=4)
    logits, emb = model.forward_with_embedding(torch.rand(3, 3, 48, 48))
    assert logits.shape == (3, 7) and emb.shape == (3, 32)


def test_supernet_runs_only_the_sampled_head_and_mixes_in_mixed_mode():
    space = FaceSpace(task="au", layers=3)
    net = space.supernet(in_channels=1, num_outputs=NUM_AUS, image_size=48, init_channels=4, head_dim=16)
    calls: list[int] = []
    for j, head in enumerate(net.head.ops):
        head.register_forward_hook(lambda *_, j=j: calls.append(j))
    for j in range(len(AU_HEADS)):
        net.set_sample([0, 0, 0, j])
        assert net(torch.rand(2, 1, 48, 48)).shape == (2, NUM_AUS)
    assert calls == [0, 1, 2, 3]
    mixed = space.supernet(
        in_channels=1, num_outputs=NUM_AUS, image_size=48, init_channels=4, head_dim=16, mode="mixed"
    )
    mixed(torch.rand(2, 1, 48, 48)).sum().backward()
    (alpha,) = mixed.arch_parameters()
    assert alpha.shape == (4, 6)  # three stage-opening layers: six MBConv ops each, no skip
    assert torch.all(alpha.grad[-1, :4] != 0) and torch.all(alpha.grad[-1, 4:] == 0)


def test_genotype_round_trip_names_the_head():
    space = FaceSpace(task="au", layers=4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        choice = [int(rng.integers(len(d.candidates))) for d in space.decisions()]
        genotype = json.loads(json.dumps(space.genotype_from_choice(choice)))
        assert genotype["head"] == AU_HEADS[choice[-1]] and genotype["task"] == "au"
        assert space.choice_from_genotype(genotype) == choice
    weights = np.where(space.candidate_mask(), 0.0, np.nan)
    weights[-1, 3] = 1.0
    assert space.derive_genotype(weights)["head"] == "au_graph"
    # A stored AU genotype builds from a space created without options (e.g. `automl train`).
    model = FaceSpace().network(
        au_genotype("au_transformer", layers=5),
        in_channels=1,
        num_outputs=NUM_AUS,
        image_size=48,
        init_channels=4,
        head_dim=16,
    )
    assert model(torch.rand(1, 1, 48, 48)).shape == (1, NUM_AUS)


def test_validate_genotype_rejects_unknown_heads_and_ops():
    space = FaceSpace(task="au", layers=3)
    good = au_genotype("au_attention")
    assert space.validate_genotype(good) is good
    with pytest.raises(ValueError, match=r"head 'capsule_head' is not a au head.*au_graph"):
        space.validate_genotype(dict(good, head="capsule_head"))
    with pytest.raises(ValueError, match=r"layer 0 has op 'mb_k9_e6'"):
        space.validate_genotype(dict(good, ops=["mb_k9_e6"] + good["ops"][1:]))
    with pytest.raises(ValueError, match="task 'age' is not one of the face tasks"):
        space.validate_genotype(dict(good, task="age"))
    with pytest.raises(ValueError, match="not a fer head"):
        space.validate_genotype(dict(good, task="fer"))
    # A space built for another task / depth still validates a stored genotype on its own terms.
    assert FaceSpace(task="fer").validate_genotype(good) is good
    with pytest.raises(ValueError, match="unknown face space option"):
        space.network(good, in_channels=1, num_outputs=NUM_AUS, image_size=48, token_dim=3)


@pytest.mark.parametrize("image_size,in_channels", [(48, 1), (112, 3)])
def test_cost_matches_the_network_for_every_head(image_size, in_channels):
    space = FaceSpace(task="au", layers=3)
    sizes = dict(in_channels=in_channels, num_outputs=NUM_AUS, image_size=image_size, init_channels=4)
    costs = {}
    for head in AU_HEADS:
        genotype = au_genotype(head)
        cost = space.cost(genotype, **sizes)
        model = space.network(genotype, **sizes)
        params, macs = count_cost(model, (1, in_channels, image_size, image_size))
        assert cost["params"] == params == sum(p.numel() for p in model.parameters())
        assert cost["mflops"] == pytest.approx(macs / 1e6)
        costs[head] = cost
    assert costs["au_transformer"]["params"] > costs["linear"]["params"]


def test_budget_covers_the_head_decision():
    space = FaceSpace(task="au", layers=3)
    sizes = dict(in_channels=1, num_outputs=NUM_AUS, image_size=48, init_channels=4)
    table = space.cost_table(**sizes)
    linear = table.total([0, 0, 0, 0])
    biggest = max(table.total([0, 0, 0, j])[0] for j in range(4))
    budget = space.budget(max_params=(linear[0] + biggest) / 2 / 1e6, **sizes)
    rng = np.random.default_rng(0)
    heads = set()
    for _ in range(30):
        choice = budget.sample(rng)
        assert budget.feasible(choice)
        heads.add(choice[-1])
    assert 0 in heads and len(heads) < 4
