"""What the Run page shows for a run of each kind and strategy, and in which words.

A search, a training and an HPO study have different results: a search ends with a genotype
(and, for DDPNAS and DARTS, a distribution over ops); a training with a test metric; a study
with its best trial. The page asks this module which tabs a run has and what to say where a run
has nothing yet, so an HPO run is never shown "No epoch recorded yet" under search tabs and a
DDPNAS run that has not reached its first update is not told it "records no distribution".

Pure functions of the run row and its plan (no Streamlit), tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DISTRIBUTION_STRATEGIES = ("ddpnas", "darts")  # they record theta (DARTS: softmax(alpha))
NO_EPOCH_PATH = ("darts", "random")  # a mixed supernet / a new path every batch: no `sample` per epoch

STRATEGY_TEXT = {
    "ddpnas": (
        "DDPNAS: every epoch trains one path sampled from theta; after each round of sampled paths, "
        "theta is updated from their validation accuracy and the weakest op of every decision is "
        "pruned, until one op per decision is left."
    ),
    "darts": (
        "DARTS (first order): a mixed supernet of every op weighted by softmax(alpha), alpha learned by "
        "gradient on validation batches; the genotype keeps the strongest ops. Nothing is pruned, so "
        "the distribution shows how decided each choice is."
    ),
    "random": (
        "Random search with weight sharing: every batch trains a uniformly random path of the shared "
        "supernet; then fresh random candidates are ranked by their validation metric on it (the "
        "Candidate ranking tab) and the best one is the result."
    ),
}

LARGE_ARRAY = 16  # numbers in a nested list beyond which the Config tab shows its shape instead


def strategy_text(strategy: str | None) -> str:
    if not strategy:
        return ""
    if strategy in STRATEGY_TEXT:
        return STRATEGY_TEXT[strategy]
    if strategy.startswith("nni"):
        return f"NNI's {strategy.removeprefix('nni').strip('_-') or 'strategy'} search on the same supernet."
    return f"The {strategy} strategy."


def run_tabs(kind: str | None, strategy: str | None, *, has_ranking: bool = False) -> list[str]:
    """The Run page's tabs for this run, results first."""
    if kind == "hpo":
        return ["Trials", "Artifacts", "Config"]
    if kind == "train":
        return ["Architecture", "Artifacts", "Config"]
    tabs = ["Architecture"]
    if strategy in DISTRIBUTION_STRATEGIES:
        tabs.append("Distribution")
    if strategy not in NO_EPOCH_PATH:
        tabs.append("Sampled architectures")
    if strategy == "random" or has_ranking:
        tabs.append("Candidate ranking")
    return [*tabs, "Artifacts", "Config"]


def no_distribution_message(strategy: str | None, plan: Mapping[str, Any], state: str | None) -> str:
    """What to say when a run has no distribution snapshot (yet)."""
    finished = state not in ("created", "running")
    if strategy == "ddpnas":
        if finished:
            return "This DDPNAS run recorded no distribution update before it ended."
        warm = int(plan.get("warmup_passes") or 0)
        updates = plan.get("updates")
        return (
            "No distribution update yet: DDPNAS updates theta after each round of sampled paths"
            + (f" ({updates} updates planned)" if updates else "")
            + (f", after {warm} warm-up epochs" if warm else "")
            + ". The first snapshot appears here when the first round ends."
        )
    if strategy == "darts":
        return (
            "This DARTS run recorded no distribution." if finished
            else "No distribution yet: DARTS records softmax(alpha) after every epoch."
        )  # fmt: skip
    return f"The {strategy or 'this'} strategy keeps no distribution over ops."


def no_samples_message(strategy: str | None, state: str | None) -> str:
    if strategy == "darts":
        return "DARTS trains the mixed supernet (every op at once): there is no sampled path per epoch."
    if strategy == "random":
        return "Random WS samples a new path every batch, so no single path per epoch is recorded."
    if state in ("created", "running"):
        return "No sampled architecture recorded yet."
    return "This run recorded no sampled architecture per epoch."


def theta_note(strategy: str | None, plan: Mapping[str, Any]) -> str:
    """Why theta rows sum to what they sum to (the V1 rule does not renormalise)."""
    if strategy == "darts":
        return (
            "theta = softmax(alpha) per decision (rows sum to 1; 1/#ops everywhere means undecided). "
            "The colour scale is fixed over the whole run, so updates compare by colour."
        )
    rule = str(plan.get("update_rule") or "v1").lower()
    if strategy == "ddpnas" and rule == "v1":
        return (
            "Update rule V1 (the authors' code): theta <- E + 0.5 * theta, with E the softmax of the "
            "ops' accuracies, not renormalised, so rows sum to 1, 1.5, 1.75... towards 2; only the "
            "order within a row decides pruning. The colour scale is fixed over the whole run."
        )
    return "Rows are renormalised after each update. The colour scale is fixed over the whole run."


def color_range(thetas: Sequence[Sequence[Sequence[float]]]) -> tuple[float, float] | None:
    """(min, max) of theta over every snapshot of a run, ignoring pruned zeros of DDPNAS only when
    that leaves something: one fixed scale so the slider compares updates by colour, and a DARTS
    run's 0.1244..0.1256 spreads over the whole scale instead of one solid colour."""
    values = [np.asarray(t, dtype=float).ravel() for t in thetas if t is not None and len(t)]
    if not values:
        return None
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat)]
    if not flat.size:
        return None
    positive = flat[flat > 0]
    low = float(positive.min()) if positive.size else float(flat.min())
    high = float(flat.max())
    if not high > low:
        pad = abs(high) * 1e-3 or 1e-3
        return low - pad, high + pad
    return low, high


def relative_to_uniform(theta: Sequence[Sequence[float]], n_ops: Sequence[int]) -> list[list[float]]:
    """theta times its decision's op count: 1.0 is the uniform share, whatever the row's length.
    Rows of 6 and 7 ops (1/6 vs 1/7) otherwise paint the scale by their length, not by choice."""
    t = np.asarray(theta, dtype=float)
    counts = np.asarray(n_ops, dtype=float).reshape(-1, 1)
    if counts.shape[0] != t.shape[0]:
        return t.tolist()
    return (t * counts).tolist()


def decidedness(theta: Sequence[Sequence[float]], alive: Sequence[Sequence[bool]] | None) -> float | None:
    """Mean over decisions of the top op's share of its row (alive ops only): 1/#ops when the
    search is undecided, 1.0 when every decision has one clear op. It moves even when nothing is
    pruned (DARTS), where the count of surviving ops is a flat line."""
    t = np.asarray(theta, dtype=float)
    if t.ndim != 2 or not t.size:
        return None
    mask = np.ones_like(t, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    if mask.shape != t.shape:
        mask = np.ones_like(t, dtype=bool)
    kept = np.where(mask & np.isfinite(t), np.clip(t, 0, None), 0.0)
    sums = kept.sum(axis=1)
    rows = sums > 0
    if not rows.any():
        return None
    return float((kept.max(axis=1)[rows] / sums[rows]).mean())


def found_ops(genotype: Mapping[str, Any] | None, limit: int = 8) -> str | None:
    """The found architecture in a line: the chosen op of each layer (``face``/``mobilenet``
    spaces, plus the AU head), or the op counts of each DARTS cell; None when it has neither."""
    if not genotype:
        return None
    ops = genotype.get("ops")
    if isinstance(ops, list) and ops:
        shown = [str(o) for o in ops[:limit]] + ([f"+{len(ops) - limit} more"] if len(ops) > limit else [])
        head = genotype.get("head")
        return " · ".join(shown) + (f" (head: {head})" if head else "")
    cells = []
    for cell in ("normal", "reduce"):
        edges = genotype.get(cell)
        if isinstance(edges, list) and edges:
            counts: dict[str, int] = {}
            for edge in edges:
                name = str(edge[0]) if isinstance(edge, list | tuple) and edge else str(edge)
                counts[name] = counts.get(name, 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            cells.append(f"{cell}: " + ", ".join(f"{n} x{k}" for n, k in top))
    return "; ".join(cells) or None


def compact(value: Any, limit: int = LARGE_ARRAY) -> Any:
    """The value with every nested numeric list of more than ``limit`` numbers replaced by its
    shape (``"28 x 8 numbers (see the Distribution tab)"``): a 28x8 theta printed by st.json is
    one number per line, an 11,000-pixel page."""
    if isinstance(value, Mapping):
        return {k: compact(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        shape = _numeric_shape(value)
        if shape is not None and math.prod(shape) > limit:
            return f"{' x '.join(map(str, shape))} numbers"
        return [compact(v, limit) for v in value]
    return value


def _numeric_shape(value: Sequence[Any]) -> tuple[int, ...] | None:
    """The shape of a rectangular nested list of numbers, else None."""
    if not value:
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return (len(value),)
    if all(isinstance(v, list | tuple) for v in value):
        shapes = {_numeric_shape(v) for v in value}
        if len(shapes) == 1 and None not in shapes:
            (inner,) = shapes
            return (len(value), *inner)
    return None


def numeric_arrays(summary: Mapping[str, Any], limit: int = LARGE_ARRAY) -> dict[str, list]:
    """The summary's top-level 2-d numeric arrays (theta), shown as tables beside the JSON."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, list):
            shape = _numeric_shape(value)
            if shape is not None and len(shape) == 2 and math.prod(shape) > limit:
                out[key] = value
    return out
