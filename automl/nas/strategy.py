"""The interface every search strategy implements so that one loop (:mod:`automl.nas.search`) runs all.

The loop owns data, supernet weights, the weight optimiser, checkpoints and reporting; a strategy
owns *which architecture* is trained (per epoch and optionally per batch), any architecture
parameters and their optimiser, when the distribution changes, and the final genotype. Its state
must round-trip through :meth:`Strategy.state_dict` (plain Python values and tensors only, so that
checkpoints load with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.base import SearchSpace, SupernetMode

Evaluate = Callable[[Sequence[int]], float]
"""Validation metric of one single-path architecture on the trained supernet."""


@dataclass
class StrategyResult:
    """What a finished search hands back: the genotype, the weight matrix it came from, extras."""

    genotype: dict[str, Any]
    weights: np.ndarray | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LrPlan:
    """How the weight learning rate evolves: the authors' step decay at round boundaries, or cosine."""

    kind: str  # "step" | "cosine" | "constant"
    lr: float
    decay: float = 0.1
    every: float | None = None  # step: decay once the epoch index reaches k * every (k = 1, 2, ...)
    min_lr: float = 1e-4
    epochs: int = 0  # cosine: length of the schedule


class Strategy(ABC):
    """A search strategy plugged into the one search loop."""

    name: str = ""
    mode: SupernetMode = "single_path"

    def __init__(self, space: SearchSpace):
        self.space = space
        self.decisions = space.decisions()
        self.budget: Any = None  # search_spaces.budget.Budget when --max-mflops/--max-params are set

    def set_budget(self, budget: Any) -> None:
        """Keep every sampled and the final architecture within ``budget`` (chain spaces)."""
        self.budget = budget

    # --- schedule ---------------------------------------------------------------------------
    @abstractmethod
    def total_epochs(self) -> int:
        """Supernet training epochs of the whole search (the plan's ``search_epochs``)."""

    @abstractmethod
    def remaining_epochs(self) -> int: ...

    @property
    @abstractmethod
    def finished(self) -> bool:
        """No more training epochs to run (finalisation may still follow)."""

    @abstractmethod
    def lr_plan(self, lr: float, decay: float, every: int | None) -> LrPlan: ...

    # --- per epoch / per batch --------------------------------------------------------------
    def setup(self, model: nn.Module, device: torch.device) -> None:  # noqa: B027 - optional hook
        """Called once the supernet exists on its device (create architecture optimisers here)."""

    @abstractmethod
    def next_sample(self) -> list[int] | None:
        """Architecture to train this epoch (``None``: mixed ops, or chosen per batch)."""

    def batch_sample(self) -> list[int] | None:
        """Architecture for the next batch, for strategies that resample per batch."""
        return None

    def phase(self) -> str:
        return "search"

    def status(self) -> dict[str, Any]:
        """Round, surviving ops etc. for progress bars and epoch records."""
        return {}

    uses_arch_step: bool = False

    def arch_step(  # noqa: B027 - optional hook, only DARTS-like strategies override it
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable
    ) -> None:
        """One architecture-parameter step on a validation batch (DARTS)."""

    @abstractmethod
    def end_epoch(self, sample: list[int] | None, val_metric: float) -> list[dict[str, Any]]:
        """Digest the epoch's validation metric; return distribution updates to record
        (each ``{"update", "theta", "alive", **extra}``)."""

    def round_boundary(self) -> bool:
        """Whether the epoch just ended closed a round (the step lr schedule acts only there)."""
        return True

    def schedule_epoch(self, loop_epoch: int) -> int:
        """Index of the epoch just ended as the lr schedule counts it (called after
        :meth:`end_epoch`); by default the loop's own epoch index. DDPNAS counts search epochs
        only, so warm-up passes never shift its step decay."""
        return loop_epoch

    # --- end --------------------------------------------------------------------------------
    @abstractmethod
    def finalize(self, evaluate: Evaluate) -> StrategyResult: ...

    @abstractmethod
    def plan(self) -> dict[str, Any]: ...

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    # --- helpers ----------------------------------------------------------------------------
    def genotype_variants(self, weights: np.ndarray, caps: Sequence[int]) -> dict[str, Any]:
        """Skip-connect-capped genotypes (DARTS space only), keyed ``"skip_cap_<n>"``."""
        if getattr(self.space, "name", "") != "darts":
            return {}
        return {f"skip_cap_{c}": self.space.derive_genotype(weights, skip_cap=int(c)) for c in caps}


def rng_state(rng: np.random.Generator) -> str:
    """A numpy generator's state as a JSON string (its 128-bit integers survive any loader)."""
    return json.dumps(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)
