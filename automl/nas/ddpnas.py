"""DDPNAS: train one sampled path per epoch, update the distribution every ``pruning_step`` rounds,
prune each decision's worst op, stop at one op per decision (docs/algorithms.md, DDPNAS).

The authors' lr rule (``one_shot_search.py``): warm-up runs in its own loop (lines 164-172, every
op of every edge once per warm-up epoch, lr never touched) and the search loop then counts its
own ``epoch`` from 0 (line 178). After training and validating search epoch ``epoch`` the lr is
multiplied by 0.1 when it is still above ``w_lr_min``, ``epoch >= lr_flag * w_lr_step`` and the
epoch closed a round (edge 0 has drawn all its survivors); ``lr_flag`` then grows by one (lines
192-196), with ``w_lr_step`` scaled by ``(ops / 8) * (pruning_step / 3)`` (line 160). So the
decay counts search epochs only; :meth:`DDPNASStrategy.schedule_epoch` hands the loop that index.

``update_rule = "v3"`` is the authors' ``Category_DDPNAS_V3.py``: momentum update plus balanced
pruning over the DARTS op groups (parameter-free: max_pool_3x3, avg_pool_3x3, skip_connect, none;
conv: the sep/dil convs), at most 3 of each pruned per edge, ending after 6 updates with one
survivor of each group (:mod:`automl.nas.distribution`). It needs every candidate to be one of
those ops, so chain spaces (MBConv/skip layers, heads) refuse it with a :class:`UserError`.
The authors read V3's genotype from the raw theta (pruned ops keep theta there); ours derives it
from the survivors only, so a pruned op can never come back into the cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from automl.errors import UserError
from automl.nas.distribution import DDPNASDistribution, UpdateRule
from automl.nas.strategy import Evaluate, LrPlan, Strategy, StrategyResult
from search_spaces.base import Decision, SearchSpace
from search_spaces.ops import PARAMETRIC_OPS, PRIMITIVES

# V3's two op groups (the authors' ``non_param_index = [0, 1, 2, 7]`` and ``param_index = [3..6]``).
PARAMETER_FREE, CONV = 0, 1
V3_GROUPS: dict[str, int] = {op: CONV if op in PARAMETRIC_OPS else PARAMETER_FREE for op in PRIMITIVES}


def v3_groups(decisions: Sequence[Decision], space_name: str = "") -> list[list[int]]:
    """Per decision, each candidate's V3 group; a :class:`UserError` when a candidate is not a
    DARTS op (the balanced rule is only defined over the DARTS parameter-free/conv groups)."""
    groups = []
    for d in decisions:
        unknown = [c for c in d.candidates if c not in V3_GROUPS]
        if unknown:
            raise UserError(
                f"ddpnas update_rule 'v3' prunes each edge balanced across the DARTS op groups "
                f"(at most 3 parameter-free and 3 conv ops), but decision '{d.name}' of space "
                f"'{space_name}' has candidates {', '.join(unknown)} outside them; use update_rule 'v1'"
            )
        groups.append([V3_GROUPS[c] for c in d.candidates])
    return groups


class DDPNASStrategy(Strategy):
    name = "ddpnas"
    mode = "single_path"

    def __init__(
        self,
        space: SearchSpace,
        *,
        pruning_step: int = 3,
        warmup_epochs: int = 0,
        update_rule: UpdateRule = "v1",
        temperature: float = 100.0,
        momentum_gamma: float = 0.8,
        skip_caps: Sequence[int] = (2, 3, 4, 5, 6),
        seed: int = 0,
    ):
        super().__init__(space)
        groups = v3_groups(self.decisions, getattr(space, "name", "")) if update_rule == "v3" else None
        self.dist = DDPNASDistribution(
            len(self.decisions),
            [len(d.candidates) for d in self.decisions],
            pruning_step=pruning_step,
            update_rule=update_rule,
            temperature=temperature,
            momentum_gamma=momentum_gamma,
            groups=groups,
            seed=seed,
        )
        self.warmup_epochs = int(warmup_epochs)
        self.skip_caps = [int(c) for c in skip_caps]
        self.max_candidates = max(len(d.candidates) for d in self.decisions)
        self.warmup_done = 0  # warm-up passes completed
        self._warmup_queue: list[list[int]] = []
        self._current_phase = "search"

    # --- schedule ---------------------------------------------------------------------------
    def warmup_passes(self) -> int:
        """A warm-up epoch trains every op of every edge once: ``max(candidates)`` passes."""
        return self.warmup_epochs * self.max_candidates

    def total_epochs(self) -> int:
        return self.warmup_passes() + self.dist.total_epochs()

    def remaining_epochs(self) -> int:
        return self.warmup_passes() - self.warmup_done + self.dist.remaining_epochs()

    def schedule_epoch(self, loop_epoch: int) -> int:
        """The search epoch just finished (0-based, warm-up passes excluded; -1 during warm-up),
        the authors' ``epoch`` in their lr test."""
        return self.dist.epochs_done - 1

    @property
    def finished(self) -> bool:
        return self.warmup_done >= self.warmup_passes() and self.dist.finished

    def lr_plan(self, lr: float, decay: float, every: int | None) -> LrPlan:
        # The authors decay every 50 epochs for 8 ops and 3 rounds per step, scaled with both.
        if every is None:
            every_f = 50.0 * (self.max_candidates / 8.0) * (self.dist.pruning_step / 3.0)
        else:
            every_f = float(every)
        return LrPlan(kind="step", lr=lr, decay=decay, every=every_f)

    # --- per epoch ----------------------------------------------------------------------------
    def next_sample(self) -> list[int]:
        if self.warmup_done < self.warmup_passes():
            if not self._warmup_queue:
                self._warmup_queue = [s.tolist() for s in self.dist.warmup_samples()]
            self._current_phase = "warmup"
            return self._warmup_queue.pop(0)
        self._current_phase = "search"
        choice = self.dist.sample().tolist()
        if self.budget is not None and not self.budget.feasible(choice):
            # Swap over-budget ops for cheaper surviving ones (credited in this round's records).
            choice = [int(c) for c in self.budget.repair(choice, self.dist.rng, allowed=self.dist.alive)]
        return choice

    def set_budget(self, budget: Any) -> None:
        if self.dist.groups is not None:
            raise UserError("a FLOPs/params budget cannot be combined with ddpnas update_rule 'v3'")
        super().set_budget(budget)
        # Prune the lowest-theta op whose removal still leaves an architecture within budget.
        self.dist.prune_rule = budget.op_to_prune

    def phase(self) -> str:
        return self._current_phase

    def status(self) -> dict[str, Any]:
        alive = self.dist.alive.sum(axis=1)
        return {
            "round": self.dist.update_index * self.dist.pruning_step + self.dist.round_in_update + 1,
            "update": self.dist.update_index,
            "surviving_ops": int(alive.max()),
        }

    def end_epoch(self, sample: list[int] | None, val_metric: float) -> list[dict[str, Any]]:
        if self._current_phase == "warmup":
            self.warmup_done += 1
            return []
        assert sample is not None
        update = self.dist.tell(sample, val_metric)
        if update is None:
            return []
        return [
            {
                "update": update["update"],
                "theta": update["theta"],
                "alive": update["alive"],
                "pruned": [None if p is None else int(p) for p in update["pruned"]],
                "tied": update["tied"],
                "pruned_ops": [
                    None if p is None else self.decisions[i].candidates[p]
                    for i, p in enumerate(update["pruned"])
                ],
            }
        ]

    def round_boundary(self) -> bool:
        # Warm-up passes never move the lr; a search epoch closes a round when the next starts fresh.
        return self._current_phase == "search" and self.dist.epoch_in_round == 0

    # --- end ----------------------------------------------------------------------------------
    def finalize(self, evaluate: Evaluate) -> StrategyResult:
        theta = self.dist.theta.copy()
        survivors = self.dist.final_choice().tolist()
        # V3 ends with two survivors per edge and keeps the pruned ops' theta: rank survivors only.
        ranked = theta if self.dist.groups is None else np.where(self.dist.alive, theta, 0.0)
        if getattr(self.space, "name", "") == "darts":
            # DARTS cells keep only the top-2 incoming edges per node, ranked by theta.
            genotype = self.space.derive_genotype(ranked)
        else:
            # Chain spaces (mobilenet, face): the architecture is exactly what survived pruning; a
            # pruned op must never come back through a stale theta (e.g. when accuracies tie).
            genotype = self.space.genotype_from_choice(survivors)
        summary = {
            "strategy": self.name,
            "theta": theta.tolist(),
            "surviving_choice": survivors,
            "surviving_ops": [self.decisions[i].candidates[c] for i, c in enumerate(survivors)],
            "survivors": [
                [d.candidates[int(j)] for j in np.flatnonzero(self.dist.alive[i])]
                for i, d in enumerate(self.decisions)
            ],
            "variants": self.genotype_variants(ranked, self.skip_caps),
            # Prunes decided by an exact theta tie (lowest index wins) rather than by the metric.
            "prunes": self.dist.prunes,
            "tied_prunes": self.dist.tied_prunes,
            "tie_fraction": self.dist.tie_fraction,
        }
        return StrategyResult(genotype=genotype, weights=theta, summary=summary)

    def plan(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "search_epochs": self.total_epochs(),
            "warmup_passes": self.warmup_passes(),
            "pruning_step": self.dist.pruning_step,
            "updates": self.dist.total_updates(),
            "update_rule": self.dist.update_rule,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "dist": self.dist.state_dict(),
            "warmup_done": self.warmup_done,
            "warmup_queue": [list(map(int, s)) for s in self._warmup_queue],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dist.load_state_dict(state["dist"])
        self.warmup_done = int(state["warmup_done"])
        self._warmup_queue = [list(map(int, s)) for s in state["warmup_queue"]]
        self._current_phase = "warmup" if self.warmup_done < self.warmup_passes() else "search"
