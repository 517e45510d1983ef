"""Did anything get learned? Statistical checks that a result carries signal, not noise.

A supernet at chance, a trained network that predicts one class for every face, or an index whose
3,846 faces share 4 codes all *look* like results: a number, a checkpoint, an index. These checks
say when they are not, so that the CLI can warn loudly and the store can flag the run. Every
threshold comes from a null model of "nothing learned" on a split of the size actually evaluated,
so that the same accuracy can be noise on 47 faces and signal on 2,000:

* **metric vs chance (classes).** Chance is the accuracy of always predicting the majority class
  of the evaluated labels (at least ``1/K``). A predictor that ignores its input gets each of the
  ``n`` items right with probability at most ``p`` = that share, so its number correct is at most
  ``Binomial(n, p)``; the result is "within noise of chance" when the number correct is not above
  ``binom.ppf(1 - alpha, n, p)`` (one-sided, ``alpha`` = :data:`ALPHA`). ``p`` is measured on
  the same labels (conditional on them, a predictor independent of the items scores at most
  ``Binomial(n, p)``), which errs towards warning on tiny splits, where nothing may pass.
* **metric vs chance (AUs, mean F1).** Per AU, the best trivial predictor says "present" for every
  face and scores ``F1 = 2p / (1 + p)`` (``p`` = the AU's positive share; a random predictor of
  any rate scores less in expectation, all-negative scores 0). Chance is the mean of those over
  the AUs. Its noise on a split of ``n`` faces comes from the normal (delta-method) approximation
  of the label sampling, the same source of noise the binomial bound models for accuracy:
  ``sd_j = 2 / (1 + p_j)^2 * sqrt(p_j (1 - p_j) / n)``, AUs taken as independent, so the mean's
  ``sd = sqrt(sum sd_j^2) / A``; the bound is ``chance + z_{1 - alpha} * sd``. (Correlated AUs
  would widen it a little; the normal approximation is rough below a few dozen faces.)
* **prediction collapse.** One class takes (nearly) every prediction: at least
  :data:`COLLAPSE_SHARE` of them *and* more than ``binom.ppf(1 - alpha, n, p_max)`` (what labels
  whose largest class has share ``p_max`` allow), so that a split that is itself that skewed does
  not fire. Predicting at most half of the classes the labels hold is reported as weak when the
  never-predicted classes are common enough that a label-following predictor would have hit one
  of them with probability ``1 - alpha`` (a rare class never predicted by a varied model is
  not). Multi-label: every AU whose labels vary predicted constant (some of them: weak).
* **embedding collapse.** Total variance below :data:`VARIANCE_RATIO_MIN` of the mean squared
  norm (spread below float16 resolution, the precision the index stores embeddings at), more
  than :data:`DUPLICATE_SHARE_MAX` of the rows exact duplicates of another row (continuous
  features of distinct faces never coincide; data sets with duplicate images hold a few per
  cent), or, weak, an effective rank (participation ratio of the covariance eigenvalues) below
  :data:`RANK_ONE_PR`: closer to one dimension than to two (a rank-1 covariance has ratio 1,
  two equal directions 2; isotropic noise in D dimensions about D).
* **code collapse** (packed ``uint8`` rows, :func:`hashing.base.pack_codes`). A supervised hash
  may legitimately give all faces of a class one code, so with labels the nulls are about
  classes: fewer distinct codes than classes, one code holding more items than the largest class
  can explain (binomial bound, and more than half of them), more constant bits than random class
  codes would share (``Binomial(bits, 2^(1-K))``; weak unless half the bits are dead). Without
  labels, items should not tie more than random codes of that length do (binomial bound on the
  duplicated items, and half of them), and no bit should be constant (``2^(1-n)`` per bit for
  random codes).

Every check returns a list of :class:`Finding` (empty: nothing fired); :func:`summarize` turns
them into the JSON stored in run summaries and index records under :data:`SIGNAL_KEY`::

    {"learned": bool, "warnings": [{"code", "severity", "message", ...numbers}], "checks": [...]}

``severity`` is :data:`NO_SIGNAL` (the result must not be presented as one: ``learned`` is
False) or :data:`WEAK` (degenerate in part; ``learned`` stays True and :func:`signal_flag`
says ``weak``). Pure numpy + scipy and no torch, so the read-only dashboard can use it too;
``hashing`` never imports it (the ``automl index`` commands call it on what they built).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALPHA = 0.01
"""One-sided level of every bound: a model that learned nothing passes a check 1% of the time."""
COLLAPSE_SHARE = 0.95
"""Share of predictions on one class from which predictions no longer vary with the input."""
VARIANCE_RATIO_MIN = 1e-6
"""Total variance / mean squared norm below this is spread under float16 resolution (2^-11)^2."""
RANK_ONE_PR = 1.5
"""Participation ratio below which embeddings are closer to one dimension than to two."""
DUPLICATE_SHARE_MAX = 0.5
"""Share of rows duplicated elsewhere above which distinct faces map to the same point."""

COVARIANCE_ROWS = 50_000
"""Rows the covariance (effective rank) is estimated from; more only cost time."""

NO_SIGNAL = "no_signal"
WEAK = "weak"
SIGNAL_KEY = "signal"
"""The key of :func:`summarize`'s dict in run summaries and index records."""


@dataclass(frozen=True)
class Finding:
    """One check that fired: a stable ``code``, a one-line ``message`` with the numbers, and the
    numbers themselves (``values``, plain JSON types) for the stored summary."""

    code: str
    message: str
    severity: str = NO_SIGNAL
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, **_plain(self.values)}


def _plain(value: Any) -> Any:
    """numpy scalars / arrays -> JSON types (floats rounded to 6 significant digits)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return float(f"{v:.6g}") if math.isfinite(v) else None
    return value


def summarize(findings: Iterable[Finding], checks: Sequence[str] = (), **context: Any) -> dict[str, Any]:
    """The JSON-able verdict: ``learned`` unless a :data:`NO_SIGNAL` finding fired, the findings,
    the names of the checks that ran (so a silent verdict says what it covered) and ``context``
    (e.g. the split and its size)."""
    found = list(findings)
    return {
        "learned": not any(f.severity == NO_SIGNAL for f in found),
        "warnings": [f.to_dict() for f in found],
        "checks": list(checks),
        "alpha": ALPHA,
        **_plain(context),
    }


def merge(*signals: dict[str, Any] | None) -> dict[str, Any]:
    """One verdict from several (e.g. the embeddings and the codes of an index)."""
    present = [s for s in signals if s]
    out: dict[str, Any] = {"learned": all(s.get("learned", True) for s in present), "warnings": [],
                           "checks": [], "alpha": ALPHA}  # fmt: skip
    for s in present:
        out["warnings"].extend(s.get("warnings") or [])
        out["checks"].extend(c for c in s.get("checks") or [] if c not in out["checks"])
        out.update({k: v for k, v in s.items() if k not in out})
    return out


def signal_flag(signal: dict[str, Any] | None) -> str:
    """``NO SIGNAL`` / ``weak`` / ``ok`` for a stored verdict, ``-`` where none was stored."""
    if not isinstance(signal, dict) or "learned" not in signal:
        return "-"
    if not signal["learned"]:
        return "NO SIGNAL"
    return "weak" if signal.get("warnings") else "ok"


def warning_entries(signal: dict[str, Any] | None, what: str) -> list[tuple[str, str]]:
    """``(severity, line)`` for every line the CLI prints about a verdict (each line begins
    ``WARNING:``): a headline when nothing was learned, then one line per finding; none when the
    checks passed."""
    if not isinstance(signal, dict):
        return []
    out = []
    if not signal.get("learned", True):
        out.append((NO_SIGNAL, f"WARNING: {what} shows no sign of learning; do not present it as a result."))
    for w in signal.get("warnings") or []:
        out.append((str(w.get("severity", NO_SIGNAL)), f"WARNING: [{w.get('code')}] {w.get('message')}"))
    return out


def warning_lines(signal: dict[str, Any] | None, what: str) -> list[str]:
    """The lines of :func:`warning_entries` alone."""
    return [line for _, line in warning_entries(signal, what)]


# ------------------------------------------------------------------------------- labels


def hard_labels(labels: Any) -> np.ndarray:
    """Class indices from indices (N,) or probability rows (N, K) (argmax, as the metrics do)."""
    y = np.asarray(labels)
    if y.ndim == 2:
        return y.argmax(axis=1).astype(np.int64)
    return y.reshape(-1).astype(np.int64)


def chance_accuracy(labels: Any) -> float:
    """Accuracy of always predicting the majority class of ``labels`` (>= 1/K)."""
    y = hard_labels(labels)
    y = y[y >= 0]
    if y.size == 0:
        return 0.0
    return float(np.bincount(y).max() / y.size)


def accuracy_bound(n: int, p_chance: float, alpha: float = ALPHA) -> int:
    """The most items out of ``n`` a predictor at chance ``p_chance`` gets right, bar a chance
    ``alpha``: ``binom.ppf(1 - alpha, n, p_chance)``."""
    if n <= 0:
        return 0
    from scipy import stats  # on first use: 0.7 s and 40 MiB that `automl predict` never needs

    return int(stats.binom.ppf(1.0 - alpha, int(n), min(max(float(p_chance), 0.0), 1.0)))


def check_accuracy(
    accuracy: float, labels: Any, *, alpha: float = ALPHA, split: str = "test", metric: str = "accuracy"
) -> list[Finding]:
    """``metric_at_chance`` when the number correct is not above the binomial bound of chance."""
    y = hard_labels(labels)
    y = y[y >= 0]
    n = int(y.size)
    if n == 0:
        return []
    p0 = chance_accuracy(y)
    correct = int(round(float(accuracy) * n))
    bound = accuracy_bound(n, p0, alpha)
    if correct > bound:
        return []
    if p0 >= 1.0:
        why = " (the split holds a single class: no accuracy can beat it)"
    elif bound >= n:
        why = f" (a split of {n} items is too small to tell learning from luck)"
    else:
        why = ""
    return [
        Finding(
            "metric_at_chance",
            f"{split} {metric} {accuracy:.4f} ({correct}/{n}) is within noise of chance: always "
            f"predicting the majority class scores {p0:.4f}, and up to {bound}/{n} ({bound / n:.4f}) "
            f"correct happens by luck at alpha={alpha:g}{why}",
            values={
                "metric": metric,
                "value": accuracy,
                "n": n,
                "correct": correct,
                "chance": p0,
                "bound": bound / n,
                "bound_correct": bound,
                "split": split,
            },
        )  # fmt: skip
    ]


def chance_mean_f1(labels: Any) -> tuple[float, float]:
    """(mean over AUs of the all-positive F1 ``2p/(1+p)``, its delta-method standard deviation
    over splits of this size); see the module docstring."""
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        return 0.0, 0.0
    n, a = y.shape
    p = (y > 0.5).mean(axis=0)
    chance = 2 * p / (1 + p)
    sd = 2 / (1 + p) ** 2 * np.sqrt(p * (1 - p) / n)
    return float(chance.mean()), float(np.sqrt((sd**2).sum()) / a)


def check_mean_f1(
    mean_f1: float, labels: Any, *, alpha: float = ALPHA, split: str = "test", metric: str = "mean_f1"
) -> list[Finding]:
    """``metric_at_chance`` when the mean F1 is not above chance + z * sd (module docstring)."""
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[0] == 0:
        return []
    chance, sd = chance_mean_f1(y)
    from scipy import stats

    bound = chance + float(stats.norm.ppf(1.0 - alpha)) * sd
    if float(mean_f1) > bound:
        return []
    return [
        Finding(
            "metric_at_chance",
            f"{split} {metric} {mean_f1:.4f} on {y.shape[0]} items is within noise of chance: "
            f"predicting every AU present scores {chance:.4f}, and up to {bound:.4f} happens by luck "
            f"at alpha={alpha:g}",
            values={
                "metric": metric,
                "value": mean_f1,
                "n": int(y.shape[0]),
                "chance": chance,
                "bound": bound,
                "split": split,
            },
        )  # fmt: skip
    ]


def check_metric(
    task: str, value: float, labels: Any, *, alpha: float = ALPHA, split: str = "test"
) -> list[Finding]:
    """Metric vs chance for a task kind: ``fer`` (accuracy) or ``au`` (mean F1)."""
    if value is None or not math.isfinite(float(value)):
        return []
    if task == "au":
        return check_mean_f1(float(value), labels, alpha=alpha, split=split)
    return check_accuracy(float(value), labels, alpha=alpha, split=split)


# ------------------------------------------------------------------------------- predictions


def _names(names: Sequence[str] | None, idx: Iterable[int]) -> list[str]:
    names = list(names or [])
    return [names[i] if 0 <= i < len(names) else str(i) for i in idx]


def check_class_predictions(
    pred: Any,
    labels: Any,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> list[Finding]:
    """``predictions_collapsed`` (one class takes nearly every prediction) and
    ``few_classes_predicted`` (at most half of the labels' classes ever predicted)."""
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    y = hard_labels(labels)
    if p.size == 0 or p.size != y.size:
        return []
    n = int(p.size)
    k = int(max(num_classes or 0, p.max() + 1, y.max() + 1))
    pred_counts = np.bincount(p, minlength=k)
    label_counts = np.bincount(y[y >= 0], minlength=k)
    top = int(pred_counts.argmax())
    share = pred_counts[top] / n
    p_max = label_counts.max() / max(1, label_counts.sum())
    bound = accuracy_bound(n, p_max, alpha)
    out: list[Finding] = []
    collapsed = share >= COLLAPSE_SHARE and pred_counts[top] > bound
    if collapsed:
        (name,) = _names(class_names, [top])
        out.append(
            Finding(
                "predictions_collapsed",
                f"one class ('{name}') takes {share:.0%} of the {n} predictions; the labels' largest "
                f"class holds {p_max:.0%} (up to {bound / n:.0%} by luck at alpha={alpha:g})",
                values={"class": name, "share": share, "n": n, "label_max_share": p_max},
            )
        )
    present = np.flatnonzero(label_counts > 0)
    used = set(np.flatnonzero(pred_counts > 0).tolist())
    missing = [int(c) for c in present if c not in used]
    k_used = len(used & set(present.tolist()))
    missing_share = label_counts[missing].sum() / max(1, label_counts.sum()) if missing else 0.0
    # A label-following predictor misses all of them with probability (1 - share)^n.
    significant = missing and n * math.log1p(-min(missing_share, 1 - 1e-12)) <= math.log(alpha)
    if not collapsed and len(present) >= 3 and k_used <= len(present) // 2 and significant:
        out.append(
            Finding(
                "few_classes_predicted",
                f"only {k_used} of the {len(present)} classes in the labels are ever predicted "
                f"(never: {', '.join(_names(class_names, missing))}; {missing_share:.0%} of the items)",
                severity=WEAK,
                values={
                    "predicted_classes": k_used,
                    "label_classes": int(len(present)),
                    "never_predicted": _names(class_names, missing),
                    "n": n,
                },
            )  # fmt: skip
        )
    return out


def check_label_predictions(pred: Any, labels: Any, *, names: Sequence[str] | None = None) -> list[Finding]:
    """Multi-label: ``predictions_constant`` when every AU whose labels vary is predicted the
    same for every item; ``labels_predicted_constant`` (weak) when some are."""
    p = np.asarray(pred).astype(bool)
    y = np.asarray(labels, dtype=np.float64) > 0.5
    if p.ndim != 2 or p.shape != y.shape or p.shape[0] < 2:
        return []
    n = p.shape[0]
    varies = y.any(axis=0) & ~y.all(axis=0)
    constant = p.all(axis=0) | ~p.any(axis=0)
    stuck = np.flatnonzero(varies & constant)
    if not varies.any() or stuck.size == 0:
        return []
    label_names = _names(names, stuck.tolist())
    if stuck.size == varies.sum():
        return [
            Finding(
                "predictions_constant",
                f"every AU is predicted constant (the same for all {n} items) although its labels vary",
                values={"constant": label_names, "n": n},
            )
        ]
    return [
        Finding(
            "labels_predicted_constant",
            f"{stuck.size} of {int(varies.sum())} AUs are predicted constant over the {n} items: "
            f"{', '.join(label_names)}",
            severity=WEAK,
            values={"constant": label_names, "n": n},
        )
    ]


# ------------------------------------------------------------------------------- embeddings


def _row_counts(rows: np.ndarray) -> np.ndarray:
    """How many times each distinct row occurs (exact byte equality)."""
    rows = np.ascontiguousarray(rows)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
    return np.unique(view.reshape(-1), return_counts=True)[1]


def _duplicated(rows: np.ndarray) -> tuple[int, int]:
    """(distinct rows, rows that have an exact duplicate elsewhere)."""
    counts = _row_counts(rows)
    return int(counts.size), int(counts[counts > 1].sum())


def participation_ratio(eigenvalues: Any) -> float:
    """``(sum l)^2 / sum l^2``: 1 for one direction, D for D equal ones (the effective rank)."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    sq = float((lam**2).sum())
    return float(lam.sum() ** 2 / sq) if sq > 0 else 0.0


def check_embeddings(embeddings: Any, *, what: str = "embeddings") -> list[Finding]:
    """``embeddings_constant``, ``embeddings_rank_one`` (weak), ``embeddings_duplicated``."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0 or not np.isfinite(x).all():
        return []
    n, d = x.shape
    centred = x - x.mean(axis=0)
    total_var = float((centred**2).sum() / n)
    mean_sq = float((x**2).sum() / n)
    ratio = total_var / mean_sq if mean_sq > 0 else 0.0
    if ratio < VARIANCE_RATIO_MIN:
        return [
            Finding(
                "embeddings_constant",
                f"{what} are (nearly) constant: their total variance is {ratio:.2g} of their mean "
                f"squared norm over {n} items (below float16 resolution)",
                values={"variance_ratio": ratio, "n": n, "dim": d},
            )
        ]
    out: list[Finding] = []
    sample = (
        centred
        if n <= COVARIANCE_ROWS
        else centred[np.random.default_rng(0).choice(n, COVARIANCE_ROWS, False)]
    )
    if d <= sample.shape[0]:
        eig = np.linalg.eigvalsh(sample.T @ sample / sample.shape[0])
    else:  # fewer items than dimensions: the non-zero eigenvalues via the thin SVD
        eig = np.linalg.svd(sample, compute_uv=False) ** 2 / sample.shape[0]
    pr = participation_ratio(eig)
    if pr < RANK_ONE_PR:
        out.append(
            Finding(
                "embeddings_rank_one",
                f"{what} are effectively one-dimensional: participation ratio {pr:.3f} of {d} "
                f"dimensions over {n} items",
                severity=WEAK,
                values={"participation_ratio": pr, "n": n, "dim": d},
            )
        )
    distinct, dup = _duplicated(np.ascontiguousarray(x.astype(np.float32)))
    if dup / n > DUPLICATE_SHARE_MAX:
        out.append(
            Finding(
                "embeddings_duplicated",
                f"{dup / n:.0%} of the {n} {what} exactly duplicate another row ({distinct} distinct)",
                values={"duplicated_share": dup / n, "distinct": distinct, "n": n},
            )
        )
    return out


# ------------------------------------------------------------------------------- hash codes


def expected_distinct_random(n: int, n_bits: int) -> float:
    """Expected distinct codes among ``n`` uniformly random ``n_bits``-bit codes."""
    m = 2.0**n_bits
    return float(-m * math.expm1(n * math.log1p(-1.0 / m))) if n_bits < 1000 else float(n)


def check_codes(
    codes: Any, *, n_bits: int | None = None, labels: Any = None, alpha: float = ALPHA
) -> list[Finding]:
    """Code collapse of packed binary codes (module docstring): ``codes_few_distinct``,
    ``codes_mostly_shared``, ``codes_duplicated`` (unlabelled), ``codes_constant_bits``.

    ``labels``: (N,) classes or (N, A) 0/1 rows, ``-1`` marking unlabelled items (as the index
    stores them); the class-based nulls use the labelled items.
    """
    c = np.asarray(codes, dtype=np.uint8)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] == 0:
        return []
    n = int(c.shape[0])
    bits = int(n_bits or c.shape[1] * 8)
    counts = _row_counts(c)
    distinct, dup, biggest = int(counts.size), int(counts[counts > 1].sum()), int(counts.max())
    random_distinct = expected_distinct_random(n, bits)
    classes, class_max = _label_classes(labels, n)
    out: list[Finding] = []
    numbers = {"n": n, "bits": bits, "distinct": distinct, "random_distinct": random_distinct,
               "duplicated_share": dup / n, "largest_code_share": biggest / n}  # fmt: skip
    if classes:
        if distinct < max(2, classes):
            out.append(
                Finding(
                    "codes_few_distinct",
                    f"{distinct} distinct code{'s' if distinct != 1 else ''} for {n} items of {classes} "
                    "classes: the index cannot "
                    f"give each class a code (random {bits}-bit codes would give ~{random_distinct:.0f})",
                    values={**numbers, "classes": classes},
                )
            )
        bound = max(accuracy_bound(n, class_max, alpha), n // 2)
        if biggest > bound:
            out.append(
                Finding(
                    "codes_mostly_shared",
                    f"one code holds {biggest / n:.0%} of the {n} items, more than the largest class "
                    f"({class_max:.0%}) allows (up to {bound / n:.0%} at alpha={alpha:g})",
                    values={**numbers, "classes": classes, "largest_class_share": class_max},
                )
            )
    else:
        if distinct < 2:
            out.append(Finding("codes_few_distinct", f"all {n} items share one code", values=numbers))
        else:
            p_dup = -math.expm1((n - 1) * math.log1p(-(2.0**-bits))) if bits < 1000 else 0.0
            bound = max(accuracy_bound(n, p_dup, alpha), n // 2)
            if dup > bound:
                out.append(
                    Finding(
                        "codes_duplicated",
                        f"{dup / n:.0%} of the {n} items share their exact code with another item "
                        f"({distinct} distinct; random {bits}-bit codes would give ~{random_distinct:.0f})",
                        values=numbers,
                    )
                )
    unpacked = np.unpackbits(c, axis=1, count=bits)
    constant = int((unpacked.min(axis=0) == unpacked.max(axis=0)).sum())
    groups = classes if classes else n  # random codes for K classes (or n items) share a bit
    p_const = 2.0 ** (1 - groups) if groups < 1000 else 0.0
    const_bound = accuracy_bound(bits, min(1.0, p_const), alpha)
    if constant > const_bound and distinct >= 2:
        out.append(
            Finding(
                "codes_constant_bits",
                f"{constant} of the {bits} bits are the same for every item (random codes"
                + (f" for {classes} classes" if classes else "")
                + f" would share at most {const_bound} at alpha={alpha:g})",
                severity=NO_SIGNAL if constant >= bits // 2 else WEAK,
                values={**numbers, "constant_bits": constant, "bound": const_bound},
            )
        )
    return out


def _label_classes(labels: Any, n: int) -> tuple[int, float]:
    """(classes among the labelled items, share of the largest); (0, 0) without labels."""
    if labels is None:
        return 0, 0.0
    y = np.asarray(labels)
    if y.shape[:1] != (n,):
        return 0, 0.0
    if y.ndim == 1:
        y = y[y >= 0].astype(np.int64)
        if y.size == 0:
            return 0, 0.0
        counts = np.bincount(y)
    else:
        y = y.reshape(n, -1)
        y = y[(y >= 0).all(axis=1)]
        if y.shape[0] == 0:
            return 0, 0.0
        _, counts = np.unique(y, axis=0, return_counts=True)
    counts = counts[counts > 0]
    return int(counts.size), float(counts.max() / counts.sum())


# ------------------------------------------------------------------------------- whole results


TIED_PRUNE_SHARE_MAX = 0.05
"""Share of DDPNAS prunes decided by an exact theta tie above which the pruning order is partly the
tie-break's (lowest index), not the validation metric's (issue 13's target: at most 5%)."""


def check_prune_ties(tied_prunes: int, prunes: int) -> list[Finding]:
    """Weak when more than :data:`TIED_PRUNE_SHARE_MAX` of the prunes were exact ties: the
    validation split scored many paths alike, so the distribution followed the tie-break. Larger
    validation splits (``data.val_fraction``, ``data.n``) give the metric finer resolution."""
    if prunes <= 0 or tied_prunes / prunes <= TIED_PRUNE_SHARE_MAX:
        return []
    share = tied_prunes / prunes
    return [
        Finding(
            "prunes_tied",
            f"{tied_prunes} of {prunes} prunes ({share:.0%}) were decided by exact ties of theta (the "
            "lowest index went), not by the validation metric; enlarge the validation split",
            WEAK,
            {"tied_prunes": tied_prunes, "prunes": prunes, "share": share},
        )
    ]


def check_classifier(
    task: str,
    logits: Any,
    labels: Any,
    *,
    metric: float | None = None,
    embeddings: Any = None,
    class_names: Sequence[str] | None = None,
    alpha: float = ALPHA,
    split: str = "test",
) -> dict[str, Any]:
    """The verdict on a classifier's outputs over one split: metric vs chance (computed from the
    logits unless ``metric`` is given), prediction collapse, and embedding collapse when the
    penultimate ``embeddings`` are given. ``task``: ``fer`` (classes) or ``au`` (multi-label,
    logit > 0 = present)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    checks = ["metric", "predictions"]
    if task == "au":
        pred = z > 0
        if metric is None:
            metric = _mean_f1(pred, np.asarray(y, dtype=np.float64) > 0.5)
        findings = check_mean_f1(metric, y, alpha=alpha, split=split)
        findings += check_label_predictions(pred, y, names=class_names)
    else:
        pred = z.argmax(axis=1)
        if metric is None:
            metric = float((pred == hard_labels(y)).mean()) if len(pred) else 0.0
        findings = check_accuracy(metric, y, alpha=alpha, split=split)
        findings += check_class_predictions(
            pred, y, num_classes=z.shape[1], class_names=class_names, alpha=alpha
        )
    if embeddings is not None:
        checks.append("embeddings")
        findings += check_embeddings(embeddings, what=f"{split} embeddings")
    return summarize(findings, checks, split=split, n=int(z.shape[0]))


def check_index(
    codes: Any, *, n_bits: int | None = None, labels: Any = None, embeddings: Any = None
) -> dict[str, Any]:
    """The verdict on an index: code collapse, and embedding collapse of what was fed in."""
    checks = ["codes"]
    findings = check_codes(codes, n_bits=n_bits, labels=labels)
    if embeddings is not None:
        checks.append("embeddings")
        findings = check_embeddings(embeddings, what="embeddings fed in") + findings
    return summarize(findings, checks, n=int(np.asarray(codes).shape[0]))


def _mean_f1(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over columns of F1 (0 where a column has no positives at all), as the AU task scores."""
    tp = (pred & target).sum(axis=0).astype(np.float64)
    fp = (pred & ~target).sum(axis=0)
    fn = (~pred & target).sum(axis=0)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1.mean()) if f1.size else 0.0
