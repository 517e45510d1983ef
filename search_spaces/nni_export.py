"""Genotypes as NNI frozen architectures, and back into networks through NNI.

An export is a JSON object NNI users know how to consume: a model-space class, the keyword
arguments to build it, and the frozen architecture dict (``{label: value}``) to hand to its
``freeze``. Which model space depends on where the genotype came from:

* ``darts`` -> NNI's own ``nni.nas.hub.pytorch.DARTS`` (labels ``normal/op_2_0``,
  ``normal/input_2_0`` = ``[source]`` ...), so the cell can be dropped into NNI's DARTS network as
  is. That network is NNI's (CIFAR stem: 3 channels, 10 classes), the cells are ours; use the
  TorchScript/ONNX export for our exact trained network.
* ``mobilenet`` / ``face`` -> :class:`AutomlModelSpace`, an NNI ``ModelSpace`` over the same
  decisions (one ``nni.choice`` each) whose ``freeze`` builds exactly our network.
* ``nni:<target>`` -> the user's own space and its own arch dict, unchanged.

:func:`instantiate` performs the round trip a user would: import the class, build it, check the
architecture with ``check_contains``, ``freeze``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

from search_spaces import genotypes as gt
from search_spaces.nni_import import ModelSpace, nni_mutable
from search_spaces.registry import AllowUserCode, create_space

FORMAT = "nni-frozen-architecture"
HUB_DARTS = "nni.nas.hub.pytorch:DARTS"
BRIDGE = "search_spaces.nni_export:AutomlModelSpace"
_HUB_DARTS_OPS = frozenset(gt.PRIMITIVES) - {"none"}


class AutomlModelSpace(ModelSpace):
    """One of our registered spaces seen by NNI: a categorical per decision; ``freeze`` -> our network."""

    def __init__(
        self,
        space: str = "face",
        template: dict[str, Any] | None = None,
        in_channels: int = 1,
        num_outputs: int = 7,
        image_size: int = 48,
        network_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        # ``template``: the genotype's structural fields (depths, task): the space it was searched in.
        base = create_space(space)
        follow = getattr(base, "space_for_genotype", None)
        self._space = follow({"space": space, **(template or {})}) if follow is not None else base
        self._sizes = {"in_channels": in_channels, "num_outputs": num_outputs, "image_size": image_size}
        self._network_options = dict(network_options or {})
        self._decisions = self._space.decisions()
        for d in self._decisions:
            self.add_mutable(nni_mutable.Categorical(list(d.candidates), label=d.name))

    def freeze(self, sample: Mapping[str, Any]) -> nn.Module:
        self.validate(dict(sample))
        choice = [d.candidates.index(sample[d.name]) for d in self._decisions]
        genotype = self._space.genotype_from_choice(choice)
        return self._space.network(genotype, **self._sizes, **self._network_options)

    def forward(self, x: Any) -> Any:  # a space to freeze, not a supernet to run
        raise RuntimeError("AutomlModelSpace is not executable: freeze(arch) it into a network")


def darts_to_hub_arch(genotype: Mapping[str, Any]) -> dict[str, Any]:
    """Our DARTS genotype in the labels of NNI's hub DARTS space (4 nodes, 2 inputs each)."""
    g = gt.validate_genotype(dict(genotype))
    if int(g["nodes"]) != 4:
        raise ValueError(f"NNI's DARTS space has 4 nodes per cell; this genotype has {g['nodes']}")
    arch: dict[str, Any] = {}
    for cell in gt.CELL_TYPES:
        for k, (op, src) in enumerate(g[cell]):
            if op not in _HUB_DARTS_OPS:
                raise ValueError(f"op '{op}' has no counterpart in NNI's DARTS space")
            node, slot = 2 + k // 2, k % 2
            arch[f"{cell}/op_{node}_{slot}"] = str(op)
            arch[f"{cell}/input_{node}_{slot}"] = [int(src)]
    return arch


def to_nni_frozen(
    genotype: Mapping[str, Any],
    *,
    in_channels: int,
    num_outputs: int,
    image_size: int,
    network_options: Mapping[str, Any] | None = None,
    allow_user_code: AllowUserCode = False,
) -> dict[str, Any]:
    """The export payload (see the module docstring); raises ``ValueError`` naming what does not fit.

    An ``nni:`` genotype imports the user's module only as ``allow_user_code`` allows
    (:func:`search_spaces.registry.check_user_code`).
    """
    space_name = str(genotype.get("space", ""))
    options = dict(network_options or {})
    if space_name == "darts":
        init_kwargs = {
            "width": int(options.get("init_channels", 16)),
            "num_cells": int(options.get("layers", 8)),
            "dataset": "cifar",
        }
        return {"format": FORMAT, "model_space": HUB_DARTS, "init_kwargs": init_kwargs,
                "arch": darts_to_hub_arch(genotype)}
    space = create_space(space_name, allow_user_code=allow_user_code)
    g = space.validate_genotype(dict(genotype))
    if space_name.startswith("nni:"):
        init_kwargs = space.init_kwargs(  # type: ignore[attr-defined]
            {"in_channels": in_channels, "num_outputs": num_outputs, "image_size": image_size, **options}
        )
        return {"format": FORMAT, "model_space": space.target, "init_kwargs": init_kwargs,  # type: ignore[attr-defined]
                "arch": dict(g["arch"])}
    follow = getattr(space, "space_for_genotype", None)
    if follow is None:
        raise ValueError(f"space '{space_name}' cannot be written as an NNI frozen architecture")
    own = follow(g)
    choice = own.choice_from_genotype(g)
    arch = {d.name: d.candidates[c] for d, c in zip(own.decisions(), choice, strict=True)}
    init_kwargs = {
        "space": space_name,
        "template": {k: v for k, v in g.items() if k not in ("space", "ops", "head")},
        "in_channels": in_channels,
        "num_outputs": num_outputs,
        "image_size": image_size,
        "network_options": options,
    }
    return {"format": FORMAT, "model_space": BRIDGE, "init_kwargs": init_kwargs, "arch": arch}


def _model_space_class(target: str, allow_user_code: AllowUserCode) -> type:
    if target == BRIDGE:
        return AutomlModelSpace
    from search_spaces.nni_space import _import_target

    module_name, _, class_name = target.rpartition(":")
    if module_name.startswith("nni."):  # NNI's own hub classes
        cls = getattr(importlib.import_module(module_name), class_name, None)
        if cls is None:
            raise ValueError(f"NNI has no model space '{target}'")
        return cls
    return _import_target(target, allow_user_code=allow_user_code)


def instantiate(payload: Mapping[str, Any], *, allow_user_code: AllowUserCode = False) -> nn.Module:
    """Build the network an export describes, through NNI's ``check_contains`` + ``freeze``.

    A payload is data: a ``model_space`` that is a user's module (not NNI's own, not
    :class:`AutomlModelSpace`) is imported only as ``allow_user_code`` allows, the user's choice of
    ``nni:<model_space>``.
    """
    if payload.get("format") != FORMAT:
        raise ValueError(f"not an NNI frozen-architecture export (format {payload.get('format')!r})")
    for key in ("model_space", "init_kwargs", "arch"):
        if key not in payload:
            raise ValueError(f"NNI export lacks '{key}'")
    cls = _model_space_class(str(payload["model_space"]), allow_user_code)
    space = cls(**dict(payload["init_kwargs"]))
    problem = space.check_contains(dict(payload["arch"]))
    if problem is not None:
        raise ValueError(f"the architecture does not fit {payload['model_space']}: {problem}")
    return space.freeze(dict(payload["arch"]))
