"""The DARTS cell search space: 14 normal + 14 reduction edges (4 nodes) x 8 candidate ops.

* :class:`DartsSupernet` -- ``single_path`` mode runs only the op chosen per edge (DDPNAS, random
  search: one sub-network's cost per step); ``mixed`` mode is the DARTS continuous relaxation with
  softmax-weighted edges and ``alpha`` architecture parameters.
* :class:`DartsNetwork` -- the discrete network of a genotype (DARTS CIFAR layout: stem, cells
  with reductions at 1/3 and 2/3 depth, auxiliary head at 2/3 depth, scheduled drop-path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces import genotypes as gt
from search_spaces.base import Decision, Genotype, SupernetMode
from search_spaces.darts_cell import EvalCell, SearchCell
from search_spaces.ops import PRIMITIVES, count_mflops, count_params


def _reduction_layers(layers: int) -> set[int]:
    return {layers // 3, 2 * layers // 3}


def _stem(in_channels: int, channels: int, affine: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels, affine=affine)
    )


class DartsSupernet(nn.Module):
    """Weight-sharing network over every edge and op of the DARTS space."""

    def __init__(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        init_channels: int = 16,
        layers: int = 8,
        nodes: int = 4,
        stem_multiplier: int = 3,
        mode: SupernetMode = "single_path",
    ):
        super().__init__()
        if mode not in ("single_path", "mixed"):
            raise ValueError(f"unknown supernet mode '{mode}' (use 'single_path' or 'mixed')")
        self.mode = mode
        self.nodes = nodes
        self.num_edges = gt.num_cell_edges(nodes)
        c_cur = stem_multiplier * init_channels
        self.stem = _stem(in_channels, c_cur, affine=True)
        c_pp, c_p, c_cur = c_cur, c_cur, init_channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in _reduction_layers(layers)
            if reduction:
                c_cur *= 2
            self.cells.append(SearchCell(nodes, c_pp, c_p, c_cur, reduction_prev, reduction))
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_outputs)
        self._sample: list[int] | None = None
        if mode == "mixed":
            shape = (self.num_edges, len(PRIMITIVES))
            self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape))
            self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape))

    # --- the Supernet protocol -------------------------------------------------------------
    def set_sample(self, choice: Sequence[int]) -> None:
        choice = [int(c) for c in choice]
        if len(choice) != 2 * self.num_edges:
            raise ValueError(
                f"sample has {len(choice)} entries, expected {2 * self.num_edges} (one per edge)"
            )
        if any(not 0 <= c < len(PRIMITIVES) for c in choice):
            raise ValueError(f"sample entries must be op indices in 0..{len(PRIMITIVES) - 1}")
        self._sample = choice

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce] if self.mode == "mixed" else []

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("alpha_")]

    def arch_weights(self) -> np.ndarray:
        """softmax(alpha) per edge, normal rows then reduction rows (mixed mode)."""
        with torch.no_grad():
            w = torch.cat([torch.softmax(a, dim=-1) for a in self.arch_parameters()])
        return w.detach().cpu().double().numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        e = self.num_edges
        if self.mode == "mixed":
            w_normal = torch.softmax(self.alpha_normal, dim=-1)
            w_reduce = torch.softmax(self.alpha_reduce, dim=-1)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1, weights=w_reduce if cell.reduction else w_normal)
        else:
            if self._sample is None:
                raise RuntimeError("single-path supernet: call set_sample(choice) before forward")
            for cell in self.cells:
                sample = self._sample[e:] if cell.reduction else self._sample[:e]
                s0, s1 = s1, cell(s0, s1, sample=sample)
        return self.classifier(self.pool(s1).flatten(1))


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier, made size-agnostic with an adaptive 2x2 pooling."""

    def __init__(self, channels: int, num_outputs: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """The discrete network of a DARTS genotype, trained from scratch.

    ``forward`` returns logits only (what export and inference need); training code calls
    :meth:`forward_with_aux` for the auxiliary logits and sets ``drop_path_prob`` per epoch.
    """

    def __init__(
        self,
        genotype: Genotype,
        *,
        in_channels: int,
        num_outputs: int,
        init_channels: int = 36,
        layers: int = 20,
        stem_multiplier: int = 3,
        auxiliary: bool = True,
        drop_path: float = 0.2,
    ):
        super().__init__()
        g = gt.validate_genotype(genotype)
        self.genotype = g
        self.drop_path_prob = float(drop_path)
        c_cur = stem_multiplier * init_channels
        self.stem = _stem(in_channels, c_cur, affine=True)
        c_pp, c_p, c_cur = c_cur, c_cur, init_channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        aux_index = 2 * layers // 3
        aux_channels = None
        for i in range(layers):
            reduction = i in _reduction_layers(layers)
            if reduction:
                c_cur *= 2
            key = "reduce" if reduction else "normal"
            cell = EvalCell(g[key], g[f"{key}_concat"], c_pp, c_p, c_cur, reduction_prev, reduction)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_cur
            if i == aux_index:
                aux_channels = c_p
        self.aux_index = aux_index
        self.auxiliary = AuxiliaryHead(aux_channels, num_outputs) if auxiliary and aux_channels else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_outputs)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits, and the auxiliary logits while training (``None`` in eval mode or without head)."""
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        return self.classifier(self.pool(s1).flatten(1)), aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


class DartsSpace:
    """The DARTS space (docs/algorithms.md, search spaces) behind the :class:`SearchSpace` protocol."""

    name = "darts"

    def __init__(self, nodes: int = 4, task: str | None = None, **unused: Any):
        if int(nodes) < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes}")
        self.nodes = int(nodes)
        self.task = task

    # --- decisions --------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return [
            Decision(f"{cell}.n{node}.in{src}", PRIMITIVES)
            for cell in gt.CELL_TYPES
            for node, src in gt.cell_edges(self.nodes)
        ]

    def random_choice(self, rng: np.random.Generator) -> list[int]:
        """A uniformly random *discrete* architecture as a path: per node two distinct inputs with
        random non-``none`` ops, ``none`` on every other edge (random search as Li & Talwalkar)."""
        choice: list[int] = []
        for _ in gt.CELL_TYPES:
            for i in range(self.nodes):
                fan_in = 2 + i
                keep = set(rng.choice(fan_in, size=2, replace=False).tolist())
                for j in range(fan_in):
                    choice.append(int(rng.integers(0, gt.NONE_INDEX)) if j in keep else gt.NONE_INDEX)
        return choice

    # --- networks ---------------------------------------------------------------------------
    def supernet(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        mode: SupernetMode = "single_path",
        init_channels: int = 16,
        layers: int = 8,
        stem_multiplier: int = 3,
        **options: Any,
    ) -> DartsSupernet:
        self._check_size(image_size, layers)
        return DartsSupernet(
            in_channels=in_channels,
            num_outputs=num_outputs,
            init_channels=init_channels,
            layers=layers,
            nodes=self.nodes,
            stem_multiplier=stem_multiplier,
            mode=mode,
        )

    def network(
        self,
        genotype: Genotype,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        init_channels: int = 36,
        layers: int = 20,
        stem_multiplier: int = 3,
        auxiliary: bool = True,
        drop_path: float = 0.2,
        **options: Any,
    ) -> DartsNetwork:
        self._check_size(image_size, layers)
        return DartsNetwork(
            self.validate_genotype(genotype),
            in_channels=in_channels,
            num_outputs=num_outputs,
            init_channels=init_channels,
            layers=layers,
            stem_multiplier=stem_multiplier,
            auxiliary=auxiliary,
            drop_path=drop_path,
        )

    @staticmethod
    def _check_size(image_size: int, layers: int) -> None:
        reductions = len(_reduction_layers(layers))
        if image_size < 2**reductions:
            raise ValueError(f"image size {image_size} is too small for {reductions} reduction cells")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")

    # --- genotypes --------------------------------------------------------------------------
    def derive_genotype(self, weights: np.ndarray, *, skip_cap: int | None = None) -> Genotype:
        if skip_cap is None:
            return gt.derive_genotype(weights, self.nodes)
        return gt.skip_capped_genotype(weights, self.nodes, skip_cap)

    def genotype_from_choice(self, choice: Sequence[int]) -> Genotype:
        return gt.genotype_from_choice(choice, self.nodes)

    def validate_genotype(self, genotype: Genotype) -> Genotype:
        """A genotype carries its own node count, so any DARTS cell size is accepted here: the
        space's ``nodes`` only shapes the decisions and the supernet."""
        return gt.validate_genotype(genotype)

    def cost(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> dict[str, float]:
        """Parameters (without the auxiliary head, as DARTS reports them) and MFLOPs (MACs)."""
        options = {**options, "auxiliary": False}
        net = self.network(
            genotype, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
        )
        return {
            "params": float(count_params(net)),
            "mflops": count_mflops(net, (in_channels, image_size, image_size)),
        }
