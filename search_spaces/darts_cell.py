"""DARTS cells: the weight-sharing search cell (single-path or mixed) and the discrete eval cell.

A cell takes the outputs of the two previous cells, pre-processes both to ``C`` channels, builds
``nodes`` intermediate nodes (each the sum of its incoming edges) and concatenates them. In a
reduction cell the edges leaving the two inputs have stride 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.genotypes import NONE_INDEX
from search_spaces.ops import PRIMITIVES, FactorizedReduce, Identity, ReLUConvBN, drop_path, make_op


def _preprocess(
    c_pp: int, c_p: int, c: int, reduction_prev: bool, affine: bool
) -> tuple[nn.Module, nn.Module]:
    # After a reduction cell, the output two cells back has twice the resolution: halve it.
    pre0 = (
        FactorizedReduce(c_pp, c, affine=affine) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine)
    )
    return pre0, ReLUConvBN(c_p, c, 1, 1, 0, affine)


class SearchEdge(nn.Module):
    """All eight candidates of one edge; runs one (single path) or a weighted sum (mixed)."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.candidates = nn.ModuleList(make_op(name, channels, stride, affine=False) for name in PRIMITIVES)

    def forward_one(self, x: torch.Tensor, op: int) -> torch.Tensor:
        return self.candidates[op](x)

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # 'none' contributes exactly zero: skip computing it.
        out = None
        for k, op in enumerate(self.candidates):
            if k == NONE_INDEX:
                continue
            term = weights[k] * op(x)
            out = term if out is None else out + term
        assert out is not None
        return out


class SearchCell(nn.Module):
    """One cell of the supernet; ``forward`` gets either op indices or a weight matrix per edge."""

    def __init__(self, nodes: int, c_pp: int, c_p: int, c: int, reduction_prev: bool, reduction: bool):
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=False)
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(2 + i):
                self.edges.append(SearchEdge(c, 2 if reduction and j < 2 else 1))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        sample: Sequence[int] | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for i in range(self.nodes):
            total = None
            for j in range(2 + i):
                edge = self.edges[e]
                if weights is not None:
                    term = edge.forward_mixed(states[j], weights[e])
                else:
                    assert sample is not None
                    op = int(sample[e])
                    # A sampled 'none' adds zeros: skip it (unless the node has no other input).
                    term = None if op == NONE_INDEX else edge.forward_one(states[j], op)
                e += 1
                if term is not None:
                    total = term if total is None else total + term
            if total is None:  # every incoming edge is 'none': the node outputs zeros
                total = self.edges[e - 1].forward_one(states[0], NONE_INDEX)
            states.append(total)
        return torch.cat(states[2:], dim=1)


class EvalCell(nn.Module):
    """A discrete cell built from a genotype's (op, input) pairs, with drop-path on non-identity ops."""

    def __init__(
        self,
        pairs: Sequence[Sequence],
        concat: Sequence[int],
        c_pp: int,
        c_p: int,
        c: int,
        reduction_prev: bool,
        reduction: bool,
    ):
        super().__init__()
        self.reduction = reduction
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=True)
        self.nodes = len(pairs) // 2
        self.inputs = [int(src) for _, src in pairs]
        self.concat = [int(i) for i in concat]
        self.ops = nn.ModuleList(
            make_op(str(op), c, 2 if reduction and int(src) < 2 else 1, affine=True) for op, src in pairs
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(self.nodes):
            total = None
            for k in (2 * i, 2 * i + 1):
                op = self.ops[k]
                h = op(states[self.inputs[k]])
                if not isinstance(op, Identity):
                    h = drop_path(h, drop_prob, self.training)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)
