"""Random search with weight sharing (Li & Talwalkar 2019).

Training: every batch trains a uniformly random architecture of the space on the shared
supernet. Then ``candidates`` fresh random architectures are ranked by their validation metric
on the trained supernet, and the best one is the result. In the DARTS space an architecture is a
discrete cell (two inputs per node, non-``none`` ops), drawn by the space's ``random_choice``;
other spaces draw one candidate per decision uniformly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.nas.strategy import Evaluate, LrPlan, Strategy, StrategyResult, rng_state, set_rng_state
from search_spaces.base import SearchSpace


class RandomWSStrategy(Strategy):
    name = "random"
    mode = "single_path"

    def __init__(self, space: SearchSpace, *, epochs: int = 50, candidates: int = 10, seed: int = 0):
        super().__init__(space)
        self.epochs = int(epochs)
        self.candidates = int(candidates)
        self.epochs_done = 0
        self.rng = np.random.default_rng(seed)

    def random_choice(self) -> list[int]:
        if self.budget is not None:
            return [int(c) for c in self.budget.sample(self.rng)]
        draw = getattr(self.space, "random_choice", None)
        if draw is not None:
            return [int(c) for c in draw(self.rng)]
        return [int(self.rng.integers(len(d.candidates))) for d in self.decisions]

    def total_epochs(self) -> int:
        return self.epochs

    def remaining_epochs(self) -> int:
        return self.epochs - self.epochs_done

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.epochs

    def lr_plan(self, lr: float, decay: float, every: int | None) -> LrPlan:
        return LrPlan(kind="cosine", lr=lr, epochs=self.epochs, min_lr=1e-3)

    def next_sample(self) -> None:
        return None

    def batch_sample(self) -> list[int]:
        return self.random_choice()

    def status(self) -> dict[str, Any]:
        return {"round": self.epochs_done + 1}

    def end_epoch(self, sample: list[int] | None, val_metric: float) -> list[dict[str, Any]]:
        self.epochs_done += 1
        return []

    def finalize(self, evaluate: Evaluate) -> StrategyResult:
        ranking = []
        for _ in range(self.candidates):
            choice = self.random_choice()
            ranking.append({"choice": choice, "val_metric": float(evaluate(choice))})
        best = max(ranking, key=lambda r: r["val_metric"])
        genotype = self.space.genotype_from_choice(best["choice"])
        summary = {"strategy": self.name, "ranking": ranking, "best_val_metric": best["val_metric"]}
        return StrategyResult(genotype=genotype, weights=None, summary=summary)

    def plan(self) -> dict[str, Any]:
        return {"strategy": self.name, "search_epochs": self.epochs, "candidates": self.candidates}

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_done = int(state["epochs_done"])
        set_rng_state(self.rng, state["rng"])
