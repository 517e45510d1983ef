"""DARTS, first order (Liu et al. 2019): softmax-mixed edges, Adam on the architecture weights.

Per training batch the loop first lets :meth:`DartsStrategy.arch_step` take one Adam step on the
alphas using the next validation batch (first-order approximation: the weights are treated as
constants), then takes the SGD step on the weights. The distribution recorded after every epoch is
softmax(alpha) with every op alive, so the dashboard draws DARTS and DDPNAS the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from automl.nas.strategy import Evaluate, LrPlan, Strategy, StrategyResult
from search_spaces.base import SearchSpace


class DartsStrategy(Strategy):
    name = "darts"
    mode = "mixed"
    uses_arch_step = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        epochs: int = 50,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        skip_caps: Sequence[int] = (2, 3, 4, 5, 6),
    ):
        super().__init__(space)
        self.epochs = int(epochs)
        self.arch_lr = float(arch_lr)
        self.arch_weight_decay = float(arch_weight_decay)
        self.skip_caps = [int(c) for c in skip_caps]
        self.epochs_done = 0
        self.model: nn.Module | None = None
        self.arch_optimizer: torch.optim.Optimizer | None = None

    def total_epochs(self) -> int:
        return self.epochs

    def remaining_epochs(self) -> int:
        return self.epochs - self.epochs_done

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.epochs

    def lr_plan(self, lr: float, decay: float, every: int | None) -> LrPlan:
        # DARTS' own schedule: cosine annealing over the search epochs down to 1e-3.
        return LrPlan(kind="cosine", lr=lr, epochs=self.epochs, min_lr=1e-3)

    def setup(self, model: nn.Module, device: torch.device) -> None:
        params = model.arch_parameters()
        if not params:
            raise ValueError("DARTS needs a supernet built with mode='mixed'")
        self.model = model
        self.arch_optimizer = torch.optim.Adam(
            params, lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_weight_decay
        )

    def next_sample(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"round": self.epochs_done + 1, "surviving_ops": len(self.decisions[0].candidates)}

    def arch_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> None:
        assert self.arch_optimizer is not None
        self.arch_optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        self.arch_optimizer.step()
        # The loop's weight step zeroes the weights' gradients from this pass before its own.

    def _weights(self) -> np.ndarray:
        assert self.model is not None
        return self.model.arch_weights()

    def end_epoch(self, sample: list[int] | None, val_metric: float) -> list[dict[str, Any]]:
        self.epochs_done += 1
        w = self._weights()
        return [{"update": self.epochs_done, "theta": w, "alive": np.ones_like(w, dtype=bool)}]

    def finalize(self, evaluate: Evaluate) -> StrategyResult:
        w = self._weights()
        summary = {
            "strategy": self.name,
            "theta": w.tolist(),
            "variants": self.genotype_variants(w, self.skip_caps),
        }
        if self.budget is not None:
            genotype = self.space.genotype_from_choice(self.budget.best_within(w))
        else:
            genotype = self.space.derive_genotype(w)
        return StrategyResult(genotype=genotype, weights=w, summary=summary)

    def plan(self) -> dict[str, Any]:
        return {"strategy": self.name, "search_epochs": self.epochs, "arch_lr": self.arch_lr}

    def state_dict(self) -> dict[str, Any]:
        assert self.arch_optimizer is not None
        return {"epochs_done": self.epochs_done, "arch_optimizer": self.arch_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.arch_optimizer is not None, "setup() must run before load_state_dict()"
        self.epochs_done = int(state["epochs_done"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
