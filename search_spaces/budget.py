"""Resource budgets (MFLOPs, parameters) for chain spaces whose cost is additive.

In the ``mobilenet`` and ``face`` spaces every decision picks one module whose input and output
shapes do not depend on the other decisions, so the cost of an architecture is a fixed part (stem,
classifier) plus one table entry per decision. That makes feasibility a sum, and lets a strategy
keep every *sampled* path and the *final* genotype within budget without building networks:

* :meth:`Budget.repair` turns an over-budget sample into a feasible one by swapping ops for
  cheaper ones, preferring a caller-given subset (DDPNAS: the ops not yet sampled this round);
* :meth:`Budget.op_to_prune` (via :meth:`Budget.prunable` / :meth:`Budget.satisfiable`) picks
  DDPNAS' next op to prune so that some alive architecture always fits, hence the last survivor
  per decision is within budget;
* :meth:`Budget.best_within` turns a weight matrix (theta, softmax(alpha)) into the best
  feasible choice, giving up as little weight as possible per unit of cost saved.

MFLOPs are millions of multiply-accumulates (the MobileNet / ProxylessNAS / DARTS convention);
``max_params`` is in millions, like the ``--max-params`` option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces.blocks import SpaceError


class BudgetError(SpaceError):
    """No architecture (within the allowed ops) satisfies the budget."""


@dataclass(frozen=True)
class CostTable:
    """``params`` / ``macs``: (decisions x max candidates) arrays, NaN where a decision has fewer."""

    fixed_params: int
    fixed_macs: int
    params: np.ndarray
    macs: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.params)

    def check_choice(self, choice: Sequence[int]) -> list[int]:
        choice = [int(c) for c in choice]
        if len(choice) != self.params.shape[0]:
            raise SpaceError(
                f"choice has {len(choice)} entries, the space has {self.params.shape[0]} decisions"
            )
        for d, c in enumerate(choice):
            if not (0 <= c < self.params.shape[1]) or not self.valid[d, c]:
                raise SpaceError(f"choice index {c} is out of range for decision {d}")
        return choice

    def total(self, choice: Sequence[int]) -> tuple[int, int]:
        """``(params, MACs)`` of the architecture ``choice``."""
        choice = self.check_choice(choice)
        rows = np.arange(len(choice))
        params = self.fixed_params + int(self.params[rows, choice].sum())
        macs = self.fixed_macs + int(self.macs[rows, choice].sum())
        return params, macs


class Budget:
    """Limits on MFLOPs and/or parameters (millions) over a :class:`CostTable`.

    A ``None`` limit is unconstrained; with both ``None`` every choice is feasible.
    """

    def __init__(
        self, table: CostTable, *, max_mflops: float | None = None, max_params: float | None = None
    ) -> None:
        for name, value in (("max_mflops", max_mflops), ("max_params", max_params)):
            if value is not None and not value > 0:
                raise SpaceError(f"{name} must be positive, got {value}")
        self.table = table
        self.max_mflops = max_mflops
        self.max_params = max_params
        # Cost per constraint in units of its limit: (constraints, decisions, candidates).
        layers, fixed = [], []
        if max_mflops is not None:
            layers.append(table.macs / (max_mflops * 1e6))
            fixed.append(table.fixed_macs / (max_mflops * 1e6))
        if max_params is not None:
            layers.append(table.params / (max_params * 1e6))
            fixed.append(table.fixed_params / (max_params * 1e6))
        self._rel = np.stack(layers) if layers else np.zeros((0,) + table.params.shape)
        self._fixed = np.asarray(fixed, dtype=float)

    @property
    def active(self) -> bool:
        return self._rel.shape[0] > 0

    def describe(self) -> str:
        parts = []
        if self.max_mflops is not None:
            parts.append(f"{self.max_mflops:g} MFLOPs")
        if self.max_params is not None:
            parts.append(f"{self.max_params:g} M params")
        return " and ".join(parts) or "no limit"

    def cost(self, choice: Sequence[int]) -> dict[str, float]:
        params, macs = self.table.total(choice)
        return {"params": params, "mflops": macs / 1e6}

    def _usage(self, choice: Sequence[int]) -> np.ndarray:
        """Fraction of each limit used (1.0 = exactly at the limit)."""
        rows = np.arange(len(choice))
        return self._fixed + self._rel[:, rows, list(choice)].sum(axis=1)

    def feasible(self, choice: Sequence[int]) -> bool:
        choice = self.table.check_choice(choice)
        return bool(np.all(self._usage(choice) <= 1.0 + 1e-12))

    def _mask(self, allowed: np.ndarray | None) -> np.ndarray:
        valid = self.table.valid
        if allowed is None:
            return valid
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != valid.shape:
            raise SpaceError(f"allowed mask has shape {allowed.shape}, expected {valid.shape}")
        return allowed & valid

    def _cheapest(self, mask: np.ndarray) -> list[int]:
        """Per decision, the allowed op with the smallest total relative cost (all constraints)."""
        combined = np.where(mask, np.nan_to_num(self._rel.sum(axis=0), nan=np.inf), np.inf)
        if np.any(~mask.any(axis=1)):
            raise SpaceError("every decision needs at least one allowed op")
        return [int(i) for i in combined.argmin(axis=1)]

    def satisfiable(self, allowed: np.ndarray | None = None) -> bool:
        """Whether some architecture made of ``allowed`` ops fits (exact for one limit; with two,
        it tests the architecture cheapest in the sum of both, so it may answer False when a
        cleverer mix would still fit: conservative, which is the safe side for pruning)."""
        if not self.active:
            return True
        mask = self._mask(allowed)
        if np.any(~mask.any(axis=1)):
            return False
        return self.feasible(self._cheapest(mask))

    def prunable(self, alive: np.ndarray, decision: int, op: int) -> bool:
        """Whether removing ``op`` from ``decision`` keeps the alive space satisfiable."""
        after = np.array(alive, dtype=bool, copy=True)
        after[decision, op] = False
        return self.satisfiable(after)

    def op_to_prune(self, theta: np.ndarray, alive: np.ndarray, decision: int) -> int | None:
        """DDPNAS' pruning under the budget: the alive op of ``decision`` with the lowest theta
        whose removal keeps the alive space satisfiable (None when one op is left).

        Without a budget this is plain arg-min (ties: lowest index, as ``np.argmin``).
        """
        alive = np.asarray(alive, dtype=bool)
        ops = np.flatnonzero(alive[decision])
        if len(ops) <= 1:
            return None
        order = ops[np.argsort(np.asarray(theta, dtype=float)[decision, ops], kind="stable")]
        for op in order:
            if self.prunable(alive, decision, int(op)):
                return int(op)
        return int(order[0])  # unreachable while the space is satisfiable; keep DDPNAS going

    def check(self, allowed: np.ndarray | None = None) -> None:
        """Raise :class:`BudgetError` with the cheapest cost when nothing fits."""
        if self.satisfiable(allowed):
            return
        cheapest = self.cost(self._cheapest(self._mask(allowed)))
        raise BudgetError(
            f"no architecture fits the budget of {self.describe()}: the cheapest needs "
            f"{cheapest['mflops']:.2f} MFLOPs and {cheapest['params'] / 1e6:.3f} M params; "
            "raise the limit or shrink the space (fewer layers, smaller init_channels)"
        )

    def repair(
        self,
        choice: Sequence[int],
        rng: np.random.Generator,
        *,
        allowed: np.ndarray | None = None,
        preferred: np.ndarray | None = None,
    ) -> list[int]:
        """A feasible choice close to ``choice``: swap ops for cheaper ones until it fits.

        Each step picks a decision at random, weighted by how much it could still save on the
        violated limits, and moves it to a uniformly drawn cheaper op. Moves stay inside
        ``preferred`` (e.g. DDPNAS' not-yet-sampled ops) while that can still help, then inside
        ``allowed`` (e.g. the unpruned ops). Returns ``choice`` unchanged when it already fits;
        raises :class:`BudgetError` when no allowed architecture fits.
        """
        choice = self.table.check_choice(choice)
        allowed_mask = self._mask(allowed)
        masks = [allowed_mask]
        if preferred is not None:
            masks.insert(0, self._mask(preferred) & allowed_mask)
        for mask in masks:
            while True:
                usage = self._usage(choice)
                violated = usage > 1.0 + 1e-12
                if not violated.any():
                    return choice
                rel = np.nan_to_num(self._rel[violated].sum(axis=0), nan=np.inf)
                current = rel[np.arange(len(choice)), choice]
                options = mask & (rel < current[:, None] - 1e-15)
                savings = np.where(options, current[:, None] - rel, 0.0).max(axis=1)
                if not savings.any():
                    break
                d = int(rng.choice(len(choice), p=savings / savings.sum()))
                choice[d] = int(rng.choice(np.flatnonzero(options[d])))
        self.check(allowed)  # raises when nothing allowed fits
        # Something fits but random descent got stuck (two limits pulling apart): start from the
        # cheapest allowed architecture, which fits.
        return self._cheapest(allowed_mask)

    def sample(self, rng: np.random.Generator, *, allowed: np.ndarray | None = None) -> list[int]:
        """A uniform draw over ``allowed`` ops per decision, repaired into the budget."""
        mask = self._mask(allowed)
        choice = [int(rng.choice(np.flatnonzero(row))) for row in mask]
        return self.repair(choice, rng, allowed=mask)

    def best_within(self, weights: np.ndarray, *, allowed: np.ndarray | None = None) -> list[int]:
        """Arg-max of ``weights`` per decision, then the cheapest-in-weight swaps until it fits.

        Each swap minimises (weight given up) / (relative cost saved on the violated limits).
        """
        weights = np.asarray(weights, dtype=float)
        mask = self._mask(allowed)
        if weights.shape != mask.shape:
            raise SpaceError(f"weights have shape {weights.shape}, expected {mask.shape}")
        w = np.where(mask & np.isfinite(weights), weights, -np.inf)
        if np.any(np.all(w == -np.inf, axis=1)):
            raise SpaceError("every decision needs at least one allowed op with a finite weight")
        choice = [int(i) for i in w.argmax(axis=1)]
        self.check(allowed)
        while not self.feasible(choice):
            violated = self._usage(choice) > 1.0 + 1e-12
            rel = np.nan_to_num(self._rel[violated].sum(axis=0), nan=np.inf)
            rows = np.arange(len(choice))
            saving = rel[rows, choice][:, None] - rel
            loss = w[rows, choice][:, None] - w
            ok = (saving > 1e-15) & np.isfinite(w)
            if not ok.any():
                return self._cheapest(mask)
            ratio = np.where(ok, np.maximum(loss, 0.0) / np.where(ok, saving, 1.0), np.inf)
            d, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
            choice[int(d)] = int(j)
        return choice
