"""The NNI adapter: a user's NNI ModelSpace behind our SearchSpace protocol (needs the 'nni' extra)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.registry import create_space

SPACE = "nni:user_nni_space:TinyFaceSpace"
# These tests choose the user's module themselves, hence ``allow_user_code=True`` (a space name read
# from data is refused: tests/commands/test_genotype_user_code.py).


def test_decisions_map_every_nni_choice_to_a_row(nni_space_module):
    space = create_space(SPACE, task="fer", allow_user_code=True)
    assert space.name == SPACE
    got = [(d.name, d.candidates) for d in space.decisions()]
    assert got == [
        ("block1", ("conv3", "conv5", "pool")),
        ("block2", ("0", "1")),
        ("skip", ("0+1", "0+2", "1+2")),  # every 2-subset of the 3 inputs is one candidate
    ]


def test_file_path_target_loads_the_same_space(nni_space_module):
    space = create_space(f"nni:{nni_space_module}:TinyFaceSpace", allow_user_code=True)
    assert [d.name for d in space.decisions()] == ["block1", "block2", "skip"]


def test_single_path_runs_and_trains_only_the_sampled_candidates(nni_space_module):
    space = create_space(SPACE, allow_user_code=True)
    torch.manual_seed(0)
    net = space.supernet(in_channels=1, num_outputs=7, image_size=16)
    assert net.arch_parameters() == []
    with pytest.raises(RuntimeError, match="set_sample"):
        net(torch.randn(2, 1, 16, 16))
    net.set_sample([1, 0, 2])  # conv5, the 1x1 conv, inputs b + c
    out = net(torch.randn(2, 1, 16, 16))
    assert out.shape == (2, 7)
    out.sum().backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    conv3 = [g for n, g in grads.items() if "block1" in n and "conv3" in n]
    conv5 = [g for n, g in grads.items() if "block1" in n and "conv5" in n]
    assert conv3 and all(g is None for g in conv3)
    assert conv5 and all(g is not None and g.abs().sum() > 0 for g in conv5)
    with pytest.raises(ValueError, match="one per decision"):
        net.set_sample([0, 0])
    with pytest.raises(ValueError, match="candidate 3 of 'block2'"):
        net.set_sample([0, 3, 0])


def test_mixed_mode_exposes_alphas_and_derives_a_frozen_network(nni_space_module):
    space = create_space(SPACE, allow_user_code=True)
    torch.manual_seed(0)
    net = space.supernet(in_channels=1, num_outputs=7, image_size=16, mode="mixed")
    alphas = net.arch_parameters()
    assert len(alphas) == 3
    weight_ids = {id(p) for p in net.weight_parameters()}
    assert not weight_ids & {id(a) for a in alphas}
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 7)
    with torch.no_grad():  # make the arg-max of every row unambiguous
        alphas[0][:] = torch.tensor([0.0, 0.0, 3.0])
        alphas[1][:] = torch.tensor([3.0, 0.0])
        alphas[2][:] = torch.tensor([0.0, 3.0, 2.0])  # inputs 1 and 2 -> subset "1+2"
    w = net.arch_weights()
    assert w.shape == (3, 3) and np.allclose(w.sum(axis=1), 1.0) and w[1, 2] == 0.0
    genotype = space.derive_genotype(w)
    assert genotype == {"space": SPACE, "arch": {"block1": "pool", "block2": 0, "skip": [1, 2]}}
    frozen = space.network(genotype, in_channels=1, num_outputs=7, image_size=16)
    assert isinstance(frozen.block1, torch.nn.MaxPool2d) and isinstance(frozen.block2, torch.nn.Conv2d)
    assert frozen(torch.randn(3, 1, 16, 16)).shape == (3, 7)
    cost = space.cost(genotype, in_channels=1, num_outputs=7, image_size=16)
    assert cost["params"] == sum(p.numel() for p in frozen.parameters()) and cost["mflops"] > 0


def test_bad_genotypes_name_the_problem(nni_space_module):
    space = create_space(SPACE, allow_user_code=True)
    good = {"space": SPACE, "arch": {"block1": "conv3", "block2": 1, "skip": [0, 2]}}
    assert space.validate_genotype(good) == good
    cases = [
        ({**good, "space": "darts"}, "not 'nni:user_nni_space:TinyFaceSpace'"),
        ({"space": SPACE}, "'arch' object"),
        ({"space": SPACE, "arch": {**good["arch"], "extra": 1}}, "unknown decision"),
        ({"space": SPACE, "arch": {"block1": "conv3", "block2": 1}}, "lacks decision"),
        ({"space": SPACE, "arch": {**good["arch"], "block1": "conv7"}}, "conv3, conv5, pool"),
        ({"space": SPACE, "arch": {**good["arch"], "skip": [0, 1, 2]}}, "0+1, 0+2, 1+2"),
    ]
    for genotype, message in cases:
        with pytest.raises(ValueError, match=message.replace("+", r"\+")):
            space.validate_genotype(genotype)


def test_unusable_targets_are_value_errors(nni_space_module, tmp_path):
    cases = [
        ("nni:no_such_module_xyz:Space", "cannot import NNI space module 'no_such_module_xyz'"),
        ("nni:user_nni_space:Missing", "has no class 'Missing'"),
        ("nni:user_nni_space:NotASpace", "not an NNI ModelSpace"),
        (f"nni:{tmp_path / 'absent.py'}:X", "does not exist"),
        ("nni:justamodule", "module:ClassName"),
    ]
    for target, message in cases:
        with pytest.raises(ValueError, match=message):
            create_space(target, allow_user_code=True)
    with pytest.raises(ValueError, match="'dropout' is a Numerical"):
        create_space("nni:user_nni_space:WithDropout", allow_user_code=True)


def test_nni_darts_space_matches_our_darts_decisions(nni_installed):
    from search_spaces.nni_darts import NNIDartsSpace, arch_to_weights, edge_labels
    from search_spaces.nni_space import _rows_of

    ours = create_space("darts")
    assert edge_labels(4) == [d.name for d in ours.decisions()]
    space = NNIDartsSpace(in_channels=1, num_outputs=3, init_channels=2, layers=3)
    rows = _rows_of(space)
    assert [r.label for r in rows] == sorted(edge_labels(4), key=edge_labels(4).index)
    assert all(tuple(r.values) == tuple(ours.decisions()[0].candidates) for r in rows)
    arch = {lab: "sep_conv_3x3" for lab in edge_labels(4)}
    w = arch_to_weights(arch)
    assert w.shape == (28, 8) and (w.sum(axis=1) == 1).all()
    with pytest.raises(ValueError, match="unknown op 'conv9'"):
        arch_to_weights({**arch, "normal.n2.in0": "conv9"})
