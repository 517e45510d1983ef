"""The DDPNAS categorical distribution: sample, record, update, prune (pure numpy, no torch).

Faithful to the first author's ``Category_DDPNAS.py`` (docs/algorithms.md, DDPNAS):

* ``theta`` is a (decisions x candidates) matrix; each row starts uniform.
* A *round* lasts as many epochs as a decision has surviving candidates. Each epoch draws, for
  every decision, one candidate *without replacement* among the survivors not yet drawn in this
  round, so every surviving op of every edge is trained exactly once per round.
* The validation accuracy of the epoch is credited to every candidate in its sample, in a
  per-round matrix.
* After ``pruning_step`` rounds: ``E = mean_r softmax(temperature * acc_r, axis=candidates)``;
  V1: ``theta = E + 0.5 * theta``; V3: ``v = g*v + (1-g)*E; theta += v``, rows renormalised.
  V1 then drops every decision's arg-min-theta survivor and ends at one survivor per decision.

V3 (the authors' ``search_algorithm/Category_DDPNAS_V3.py``) also changes *what* is pruned. Its
DARTS edges split the eight ops into a parameter-free group (max_pool_3x3, avg_pool_3x3,
skip_connect and none: indices 0, 1, 2, 7) and a conv group (the four sep/dil convs: 3..6; lines
24-25). Each update still takes the arg-min-theta survivor, but once an edge has lost 3 ops of a
group that group's last op is skipped and the arg-min of the other group goes instead (lines
86-101); the search stops when edge 0 has lost 3 of each (lines 104-105), i.e. after 6 updates
with one parameter-free and one conv survivor per edge. Pruned ops keep their theta there (the
zeroing on line 102 is commented out); only the rows are renormalised (line 103). Here the rule
takes a per-candidate ``groups`` array: a decision never loses the last survivor of a group, and
it is done when one survivor per group is left -- with the DARTS groups exactly the authors'
"at most 3 + 3 pruned, 2 survivors" rule.

Accuracy, not error, drives the update: higher accuracy -> larger softmax weight -> kept.

The sampling generator is owned here and seeded, so every process of a distributed search that
builds the distribution with the same seed draws the same architectures; its state is part of
:meth:`state_dict` (JSON-able) so that a resumed search draws what the killed one would have.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

UpdateRule = Literal["v1", "v3"]


def _softmax_rows(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    z = np.where(valid, x, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(valid, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)


def schedule_length(
    candidates: Sequence[int], pruning_step: int, keep: Sequence[int] | None = None
) -> int:
    """Search epochs until every decision is down to ``keep`` survivors (default one each).

    8 ops, step 3: ``3 * (8 + 7 + ... + 2) = 105``; V3 on DARTS (keep 2): ``3 * (8 + ... + 3) = 99``.
    """
    alive = np.asarray(candidates, dtype=int)
    floor = np.ones_like(alive) if keep is None else np.asarray(keep, dtype=int)
    total = 0
    while (alive > floor).any():
        total += pruning_step * int(alive.max())
        alive = np.maximum(alive - 1, floor)
    return total


def schedule_updates(candidates: Sequence[int], keep: Sequence[int] | None = None) -> int:
    """Distribution updates (one prune per unfinished decision each) until the search ends."""
    alive = np.asarray(candidates, dtype=int)
    floor = np.ones_like(alive) if keep is None else np.asarray(keep, dtype=int)
    return int(np.max(alive - floor, initial=0))


def balanced_prune_choice(theta: np.ndarray, alive: np.ndarray, groups: np.ndarray) -> int | None:
    """V3's pick for one decision: the arg-min-theta survivor among those whose group keeps
    another survivor (ties: the lowest index, as ``np.nanargmin``); None when none qualifies.

    With two groups this is the authors' "arg-min, unless its group already lost all but one op,
    then the other group's arg-min".
    """
    alive = np.asarray(alive, dtype=bool)
    groups = np.asarray(groups)
    same_group_alive = np.array([np.sum(alive & (groups == g)) for g in groups])
    prunable = alive & (same_group_alive > 1)
    if not prunable.any():
        return None
    return int(np.argmin(np.where(prunable, np.asarray(theta, dtype=float), np.inf)))


class DDPNASDistribution:
    """Sampling schedule and pruned categorical distribution of DDPNAS.

    ``candidates`` is the number of candidates per decision (an int for all, or one per
    decision; shorter rows are padded and never sampled). ``groups`` (V3 only, required there)
    gives, per decision, a group id for each of its candidates: pruning never removes the last
    survivor of a group and a decision is done at one survivor per group. Usage per search epoch::

        sample = dist.sample()           # one candidate index per decision
        ...train the path, validate...
        update = dist.tell(sample, acc)  # None, or a dict when theta was updated and pruned
        if dist.finished: ...
    """

    def __init__(
        self,
        num_decisions: int,
        candidates: int | Sequence[int],
        *,
        pruning_step: int = 3,
        update_rule: UpdateRule = "v1",
        temperature: float = 100.0,
        decay: float = 0.5,
        momentum_gamma: float = 0.8,
        groups: Sequence[Sequence[int]] | None = None,
        seed: int = 0,
    ):
        if num_decisions < 1:
            raise ValueError("the distribution needs at least one decision")
        counts = (
            [int(candidates)] * num_decisions if isinstance(candidates, int) else [int(c) for c in candidates]
        )
        if len(counts) != num_decisions or min(counts) < 1:
            raise ValueError("candidates must give a positive count for every decision")
        if pruning_step < 1:
            raise ValueError("pruning_step must be >= 1")
        if update_rule not in ("v1", "v3"):
            raise ValueError(f"unknown update rule '{update_rule}' (use 'v1' or 'v3')")
        if update_rule == "v3" and groups is None:
            raise ValueError("update rule 'v3' prunes balanced across op groups: pass groups")
        if update_rule == "v1" and groups is not None:
            raise ValueError("op groups belong to update rule 'v3'; v1 prunes to one op per decision")
        if groups is not None and (
            len(groups) != num_decisions or any(len(g) != c for g, c in zip(groups, counts, strict=True))
        ):
            raise ValueError("groups must give one group id per candidate of every decision")
        self.counts = counts
        self.pruning_step = int(pruning_step)
        self.update_rule = update_rule
        self.temperature = float(temperature)
        self.decay = float(decay)
        self.gamma = float(momentum_gamma)
        d, k = num_decisions, max(counts)
        self.valid = np.zeros((d, k), dtype=bool)
        for i, c in enumerate(counts):
            self.valid[i, :c] = True
        self.theta = np.where(self.valid, 1.0 / np.array(counts, dtype=float)[:, None], 0.0)
        self.alive = self.valid.copy()
        # Group id per candidate (-1 on padding); None: one implicit group (V1).
        self.groups: np.ndarray | None = None
        if groups is not None:
            self.groups = np.full((d, k), -1, dtype=int)
            for i, g in enumerate(groups):
                self.groups[i, : len(g)] = [int(x) for x in g]
        # Survivors each decision ends with: one per group present (V1: one).
        self.keep = (
            np.ones(d, dtype=int)
            if self.groups is None
            else np.array([len(set(self.groups[i, : counts[i]].tolist())) for i in range(d)])
        )
        self.velocity = np.zeros((d, k))
        self.rng = np.random.default_rng(seed)
        self.update_index = 0  # completed updates
        self.round_in_update = 0  # completed rounds since the last update
        self.epoch_in_round = 0  # completed epochs in the current round
        self.epochs_done = 0
        self.pruned: list[list[int]] = [[] for _ in range(d)]
        self.prunes = 0  # prune decisions taken, and how many of them an exact theta tie decided
        self.tied_prunes = 0
        # Optional (theta, alive, decision) -> op to prune; None: arg-min theta among survivors.
        self.prune_rule: Callable[[np.ndarray, np.ndarray, int], int | None] | None = None
        self._perf_sum = np.zeros((d, k))  # accuracy credited in the current round
        self._perf_count = np.zeros((d, k))
        self._round_perf: list[np.ndarray] = []  # frozen per-round matrices since the last update
        self._pools: list[list[int]] = []
        self._refill_all()

    # --- shape of the schedule -------------------------------------------------------------
    @property
    def num_decisions(self) -> int:
        return self.theta.shape[0]

    @property
    def round_length(self) -> int:
        """Epochs in the current round: the largest number of survivors of any decision."""
        return int(self.alive.sum(axis=1).max())

    @property
    def finished(self) -> bool:
        return bool((self.alive.sum(axis=1) <= self.keep).all())

    def total_epochs(self) -> int:
        return schedule_length(self.counts, self.pruning_step, self.keep.tolist())

    def total_updates(self) -> int:
        return schedule_updates(self.counts, self.keep.tolist())

    def remaining_epochs(self) -> int:
        if self.finished:
            return 0
        alive = self.alive.sum(axis=1)
        now = int(alive.max())
        left = now * (self.pruning_step - self.round_in_update) - self.epoch_in_round
        after = np.maximum(alive - 1, self.keep)
        later = schedule_length(after.tolist(), self.pruning_step, self.keep.tolist())
        return left + later

    # --- sampling ---------------------------------------------------------------------------
    def _refill(self, i: int) -> None:
        self._pools[i] = [int(j) for j in np.flatnonzero(self.alive[i])]

    def _refill_all(self) -> None:
        self._pools = [[] for _ in range(self.num_decisions)]
        for i in range(self.num_decisions):
            self._refill(i)

    def sample(self) -> np.ndarray:
        """Next architecture: per decision a not-yet-drawn survivor of this round.

        A decision with fewer survivors than the round is long starts over (still without
        replacement) once it has drawn all of them.
        """
        if self.finished:
            raise RuntimeError("the search is finished: every decision is down to its survivors")
        choice = np.empty(self.num_decisions, dtype=np.int64)
        for i, pool in enumerate(self._pools):
            if not pool:
                self._refill(i)
                pool = self._pools[i]
            choice[i] = pool.pop(int(self.rng.integers(len(pool))))
        return choice

    def warmup_samples(self) -> list[np.ndarray]:
        """One warm-up epoch as the authors run it: a random permutation of every decision's
        candidates, so each op of each edge is trained once over ``max(candidates)`` passes."""
        k = int(self.valid.sum(axis=1).max())
        columns = np.empty((self.num_decisions, k), dtype=np.int64)
        for i, c in enumerate(self.counts):
            perm = self.rng.permutation(c)
            columns[i] = np.resize(perm, k)  # shorter rows repeat their permutation
        return [columns[:, j].copy() for j in range(k)]

    # --- recording and updating -------------------------------------------------------------
    def tell(self, sample: Sequence[int], accuracy: float) -> dict[str, Any] | None:
        """Credit ``accuracy`` (in [0, 1], higher is better) to the sampled candidates.

        Returns the update (``theta``, ``alive``, ``pruned``...) when this epoch closed the
        ``pruning_step``-th round, else ``None``.
        """
        if not np.isfinite(accuracy):
            raise ValueError(f"validation accuracy is not finite ({accuracy}); the search diverged")
        rows = np.arange(self.num_decisions)
        cols = np.asarray(sample, dtype=np.int64)
        if (
            cols.shape != (self.num_decisions,)
            or (cols < 0).any()
            or (cols >= self.alive.shape[1]).any()
            or not self.alive[rows, cols].all()
        ):
            raise ValueError("sample does not pick one surviving candidate per decision")
        self._perf_sum[rows, cols] += float(accuracy)
        self._perf_count[rows, cols] += 1
        self.epochs_done += 1
        self.epoch_in_round += 1
        if self.epoch_in_round < self.round_length:
            return None
        # Round complete: freeze its accuracy matrix (the mean where an op was drawn twice).
        perf = np.divide(
            self._perf_sum, self._perf_count, out=np.zeros_like(self._perf_sum), where=self._perf_count > 0
        )
        self._round_perf.append(perf)
        self.round_in_update += 1
        self.epoch_in_round = 0
        self._perf_sum = np.zeros_like(perf)
        self._perf_count = np.zeros_like(perf)
        update = None
        if self.round_in_update >= self.pruning_step:
            update = self._update_and_prune()
            self.round_in_update = 0
            self._round_perf = []
        self._refill_all()
        return update

    def _update_and_prune(self) -> dict[str, Any]:
        expectation = np.mean(
            [_softmax_rows(self.temperature * p, self.valid) for p in self._round_perf], axis=0
        )
        if self.update_rule == "v1":
            self.theta = expectation + self.decay * self.theta
        else:
            self.velocity = self.gamma * self.velocity + (1.0 - self.gamma) * expectation
            self.theta = self.theta + self.velocity
        pruned_now: list[int | None] = []
        tied_now: list[bool | None] = []
        for i in range(self.num_decisions):
            if self.alive[i].sum() <= self.keep[i]:
                pruned_now.append(None)
                tied_now.append(None)
                continue
            if self.groups is not None:
                pick = balanced_prune_choice(self.theta[i], self.alive[i], self.groups[i])
                assert pick is not None  # more survivors than groups: some group has two
                j = pick
            elif self.prune_rule is not None:
                j = int(self.prune_rule(self.theta, self.alive, i))
            else:
                masked = np.where(self.alive[i], self.theta[i], np.inf)
                j = int(np.argmin(masked))  # ties: the lowest index, as np.nanargmin in the authors' code
            tied_now.append(self._tied(i, j))
            self.prunes += 1
            self.tied_prunes += int(tied_now[-1])
            self.alive[i, j] = False
            self.pruned[i].append(j)
            pruned_now.append(j)
        if self.update_rule == "v3":
            self.theta = self.theta / self.theta.sum(axis=1, keepdims=True)
        self.update_index += 1
        return {
            "update": self.update_index,
            "theta": self.theta.copy(),
            "alive": self.alive.copy(),
            "pruned": pruned_now,
            "tied": tied_now,
            "expectation": expectation,
        }

    def _tied(self, decision: int, pruned: int) -> bool:
        """Whether the op about to be pruned shares its theta exactly with another survivor the
        rule could have pruned instead, i.e. the tie-break (lowest index), not the validation
        metric, chose it. A high share of tied prunes means the metric had no resolution (a tiny
        validation split scoring many paths alike); ``automl bench nas`` reports the share."""
        others = self.alive[decision].copy()
        others[pruned] = False
        if self.groups is not None:  # V3: only ops whose group keeps another survivor compete
            g = self.groups[decision]
            others &= np.array([np.sum(self.alive[decision] & (g == x)) > 1 for x in g])
        return bool(np.any(self.theta[decision, others] == self.theta[decision, pruned]))

    @property
    def tie_fraction(self) -> float | None:
        """Share of all prunes so far that were decided by an exact tie (None before the first)."""
        return self.tied_prunes / self.prunes if self.prunes else None

    def final_choice(self) -> np.ndarray:
        """Per decision the survivor with the highest theta (V1: the only survivor)."""
        return np.where(self.alive, self.theta, -np.inf).argmax(axis=1)

    # --- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON-able lists and numbers."""
        return {
            "counts": list(self.counts),
            "pruning_step": self.pruning_step,
            "update_rule": self.update_rule,
            "temperature": self.temperature,
            "decay": self.decay,
            "gamma": self.gamma,
            "groups": None if self.groups is None else self.groups.tolist(),
            "theta": self.theta.tolist(),
            "alive": self.alive.astype(int).tolist(),
            "velocity": self.velocity.tolist(),
            "update_index": self.update_index,
            "round_in_update": self.round_in_update,
            "epoch_in_round": self.epoch_in_round,
            "epochs_done": self.epochs_done,
            "pruned": [list(map(int, p)) for p in self.pruned],
            "prunes": self.prunes,
            "tied_prunes": self.tied_prunes,
            "pools": [list(map(int, p)) for p in self._pools],
            "perf_sum": self._perf_sum.tolist(),
            "perf_count": self._perf_count.tolist(),
            "round_perf": [p.tolist() for p in self._round_perf],
            # The bit generator's state holds 128-bit integers: keep them as decimal strings.
            "rng": json.dumps(self.rng.bit_generator.state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["counts"]) != list(self.counts):
            raise ValueError("saved distribution has a different number of decisions or candidates")
        mine = None if self.groups is None else self.groups.tolist()
        if state.get("groups") != mine or state["update_rule"] != self.update_rule:
            raise ValueError("saved distribution has a different update rule or op groups")
        self.pruning_step = int(state["pruning_step"])
        self.update_rule = state["update_rule"]
        self.temperature = float(state["temperature"])
        self.decay = float(state["decay"])
        self.gamma = float(state["gamma"])
        self.theta = np.array(state["theta"], dtype=float)
        self.alive = np.array(state["alive"], dtype=bool)
        self.velocity = np.array(state["velocity"], dtype=float)
        self.update_index = int(state["update_index"])
        self.round_in_update = int(state["round_in_update"])
        self.epoch_in_round = int(state["epoch_in_round"])
        self.epochs_done = int(state["epochs_done"])
        self.pruned = [list(map(int, p)) for p in state["pruned"]]
        self.prunes = int(state.get("prunes", 0))
        self.tied_prunes = int(state.get("tied_prunes", 0))
        self._pools = [list(map(int, p)) for p in state["pools"]]
        self._perf_sum = np.array(state["perf_sum"], dtype=float)
        self._perf_count = np.array(state["perf_count"], dtype=float)
        self._round_perf = [np.array(p, dtype=float) for p in state["round_perf"]]
        self.rng.bit_generator.state = json.loads(state["rng"])
