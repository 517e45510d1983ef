"""The contract between search spaces and search strategies.

A search space is a list of *decisions* (one row of the DDPNAS distribution each: a DARTS edge,
a MobileNet layer, the AU head) over named candidate ops, plus three ways to build networks:

* ``supernet(...)`` -- the weight-sharing network searched over. In ``single_path`` mode it
  executes only the op chosen for each decision (``set_sample``), so a DDPNAS or random-search
  step costs one sub-network; in ``mixed`` mode (DARTS) every edge is a softmax-weighted sum and
  the architecture weights are exposed by ``arch_parameters()``.
* ``network(genotype, ...)`` -- the stand-alone discrete network trained from scratch.
* ``derive_genotype(weights, ...)`` -- a JSON-able genotype from a (decisions x candidates)
  weight matrix (DDPNAS theta, DARTS softmax(alpha)), or ``genotype_from_choice(choice)``
  from one index per decision.

This package never imports :mod:`automl`: spaces are usable on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from torch import nn

Genotype = dict[str, Any]
"""A JSON-serialisable architecture: always carries ``"space"``; the rest is space-specific."""

SupernetMode = Literal["single_path", "mixed"]


@dataclass(frozen=True)
class Decision:
    """One categorical choice of the space: a row of the distribution."""

    name: str
    candidates: tuple[str, ...]


@runtime_checkable
class Supernet(Protocol):
    """A weight-sharing network (an ``nn.Module``) over all decisions of a space."""

    def set_sample(self, choice: Sequence[int]) -> None:
        """Select one candidate per decision (single-path mode)."""

    def arch_parameters(self) -> list[nn.Parameter]:
        """Architecture weights (mixed mode); empty in single-path mode."""

    def weight_parameters(self) -> list[nn.Parameter]:
        """Network weights (everything but the architecture weights)."""


@runtime_checkable
class SearchSpace(Protocol):
    name: str

    def decisions(self) -> list[Decision]: ...

    def supernet(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        mode: SupernetMode = "single_path",
        **options: Any,
    ) -> nn.Module:
        """``options``: size knobs such as ``init_channels`` / ``layers`` (space-specific)."""
        ...

    def network(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> nn.Module: ...

    def derive_genotype(self, weights: np.ndarray, *, skip_cap: int | None = None) -> Genotype: ...

    def genotype_from_choice(self, choice: Sequence[int]) -> Genotype: ...

    def cost(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> dict[str, float]:
        """``{"params": count, "mflops": MFLOPs}`` of ``network(genotype, ...)`` (for budgets)."""
        ...

    def validate_genotype(self, genotype: Genotype) -> Genotype:
        """Return the genotype if well-formed; raise ``ValueError`` naming the bad part otherwise."""
        ...
