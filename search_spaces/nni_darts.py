"""Our DARTS space written as an NNI ``ModelSpace`` (needs the optional ``nni`` extra).

Why it exists: to run NNI's own strategies (DARTS, RandomOneShot, ...) on *exactly* the space and
ops our engine searches, so ``automl bench nas --with-nni`` compares search algorithms and not two
different spaces. The network is the :class:`~search_spaces.darts.DartsSupernet` layout (same stem,
cells, reduction positions, pre-processing and ``affine=False`` search ops from
:mod:`search_spaces.ops`); every edge is an NNI ``LayerChoice`` over the eight candidates in our
column order, labelled with our decision name (``normal.n2.in0`` ...). Edges of all cells of one
type share the label, hence one decision, as in DARTS.

A node sums its incoming edges; ``none`` adds zeros, so a path that picks ``none`` everywhere on a
node still has a well-defined output. Architectures come back as ``{label: op name}`` and map to
our genotype through :func:`arch_to_weights` + the usual DARTS derivation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces import genotypes as gt
from search_spaces.darts_cell import _preprocess
from search_spaces.nni_import import LayerChoice, ModelSpace
from search_spaces.ops import PRIMITIVES, make_op


def edge_labels(nodes: int) -> list[str]:
    """Labels of the decisions, in the row order of our (edges x ops) matrices."""
    return [f"{cell}.n{node}.in{src}" for cell in gt.CELL_TYPES for node, src in gt.cell_edges(nodes)]


class _NNICell(nn.Module):
    def __init__(self, cell_type: str, nodes: int, c_pp: int, c_p: int, c: int,
                 reduction_prev: bool, reduction: bool):
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=False)
        self.edges = nn.ModuleList()
        for node, src in gt.cell_edges(nodes):
            stride = 2 if reduction and src < 2 else 1
            ops = {name: make_op(name, c, stride, affine=False) for name in PRIMITIVES}
            self.edges.append(LayerChoice(ops, label=f"{cell_type}.n{node}.in{src}"))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for i in range(self.nodes):
            total = 0
            for j in range(2 + i):
                total = total + self.edges[e](states[j])
                e += 1
            states.append(total)
        return torch.cat(states[2:], dim=1)


class NNIDartsSpace(ModelSpace):
    """The DARTS search network as an NNI model space (see the module docstring)."""

    def __init__(self, in_channels: int = 3, num_outputs: int = 10, init_channels: int = 16,
                 layers: int = 8, nodes: int = 4, stem_multiplier: int = 3):
        super().__init__()
        c_cur = stem_multiplier * init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_cur, 3, padding=1, bias=False), nn.BatchNorm2d(c_cur)
        )
        c_pp, c_p, c_cur = c_cur, c_cur, init_channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = {layers // 3, 2 * layers // 3}
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_cur *= 2
            cell_type = "reduce" if reduction else "normal"
            self.cells.append(_NNICell(cell_type, nodes, c_pp, c_p, c_cur, reduction_prev, reduction))
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


def arch_to_weights(arch: Mapping[str, Any], nodes: int = 4) -> np.ndarray:
    """One-hot (edges x ops) matrix of an NNI ``{label: op}`` architecture, in our row order."""
    labels = edge_labels(nodes)
    missing = [lab for lab in labels if lab not in arch]
    if missing:
        raise ValueError(
            f"architecture lacks edge(s) {', '.join(missing[:3])} (expected {len(labels)} edges)"
        )
    w = np.zeros((len(labels), len(PRIMITIVES)))
    for row, lab in enumerate(labels):
        op = str(arch[lab])
        if op not in PRIMITIVES:
            raise ValueError(f"edge {lab} has unknown op '{op}' (valid: {', '.join(PRIMITIVES)})")
        w[row, PRIMITIVES.index(op)] = 1.0
    return w


def probs_to_weights(probs: Mapping[str, Mapping[str, float]], nodes: int = 4) -> np.ndarray:
    """(edges x ops) matrix from NNI's ``export_probs`` output (``{label: {op: prob}}``)."""
    labels = edge_labels(nodes)
    w = np.zeros((len(labels), len(PRIMITIVES)))
    for row, lab in enumerate(labels):
        if lab not in probs:
            raise ValueError(f"NNI reported no probabilities for edge {lab}")
        for op, p in probs[lab].items():
            w[row, PRIMITIVES.index(str(op))] = float(p)
    return w
