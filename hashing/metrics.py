"""Retrieval metrics over Hamming rankings, as the MIHash framework's ``evaluate.m`` computes them.

Ranking: database items sorted by Hamming distance to the query, ties broken by database index
(MATLAB's ``sort`` is stable, and the mAP@K rule walks Hamming shells collecting items in index
order, which is the same order). Relevance: same class, or at least one shared label for 0/1
label matrices (``affinity.m``).

* ``mean_average_precision``: AP as ``vl_pr`` computes it (mean precision at each relevant
  position); a query with no relevant item has an undefined AP and is left out of the mean.
* ``top_k`` (mAP@K): AP over the first K ranked items, normalised by the relevant items among
  those K; queries with none are left out (``evaluate.m`` drops NaN APs).
* ``precision_at_radius``: precision of the Hamming ball ``distance <= radius``; a query whose
  ball is empty counts 0.
* ``precision_at_k``: fraction of relevant items among the first K.
"""

from __future__ import annotations

import numpy as np

from hashing.errors import HashingError

_CHUNK = 256


def hamming_distances(query_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """(nq, nd) int32 Hamming distances between packed uint8 codes."""
    q = np.ascontiguousarray(query_codes, dtype=np.uint8)
    db = np.ascontiguousarray(db_codes, dtype=np.uint8)
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise HashingError(f"code shapes do not match: queries {q.shape}, database {db.shape}")
    # View 8-byte groups as uint64 where possible: 8x fewer popcounts.
    if q.shape[1] % 8 == 0:
        q, db = q.view(np.uint64), db.view(np.uint64)
    out = np.empty((q.shape[0], db.shape[0]), np.int32)
    step = max(1, (1 << 22) // max(1, db.shape[0] * q.shape[1]))
    for s in range(0, q.shape[0], step):
        x = np.bitwise_xor(q[s : s + step, None, :], db[None, :, :])
        out[s : s + step] = np.bitwise_count(x).sum(axis=2, dtype=np.int32)
    return out


def relevance(query_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """(nq, nd) bool: same class (1-D labels) or at least one shared label (0/1 matrices)."""
    yq, yd = np.asarray(query_labels), np.asarray(db_labels)
    if yq.ndim != yd.ndim or (yq.ndim == 2 and yq.shape[1] != yd.shape[1]):
        raise HashingError(f"label shapes do not match: queries {yq.shape}, database {yd.shape}")
    if yq.ndim == 1:
        return yq[:, None] == yd[None, :]
    return (yq.astype(np.int32) @ yd.astype(np.int32).T) > 0


def _check(dist: np.ndarray, rel: np.ndarray) -> None:
    if dist.shape != rel.shape or dist.ndim != 2:
        raise HashingError(f"distance {dist.shape} and relevance {rel.shape} matrices must match")


def _ranked_relevance(dist: np.ndarray, rel: np.ndarray, k: int | None) -> np.ndarray:
    order = np.argsort(dist, axis=1, kind="stable")
    if k is not None:
        order = order[:, :k]
    return np.take_along_axis(rel, order, axis=1)


def average_precisions(dist: np.ndarray, rel: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """Per-query AP (NaN where no relevant item is ranked) over the full ranking or its top K."""
    _check(dist, rel)
    out = np.empty(dist.shape[0])
    k = None if top_k is None else min(int(top_k), dist.shape[1])
    for s in range(0, dist.shape[0], _CHUNK):
        ranked = _ranked_relevance(dist[s : s + _CHUNK], rel[s : s + _CHUNK], k)
        hits = np.cumsum(ranked, axis=1)
        pos = np.arange(1, ranked.shape[1] + 1)
        n_rel = hits[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + _CHUNK] = np.where(ranked, hits / pos, 0.0).sum(axis=1) / n_rel
    return out


def mean_average_precision(dist: np.ndarray, rel: np.ndarray, top_k: int | None = None) -> float:
    """mAP (``top_k=None``) or mAP@K; queries with undefined AP are left out of the mean."""
    ap = average_precisions(dist, rel, top_k)
    ok = ~np.isnan(ap)
    return float(ap[ok].mean()) if ok.any() else float("nan")


def precision_at_radius(dist: np.ndarray, rel: np.ndarray, radius: int = 2) -> float:
    """Mean precision within Hamming distance ``<= radius``; an empty ball counts 0."""
    _check(dist, rel)
    inside = dist <= radius
    n_in = inside.sum(axis=1)
    n_good = (inside & rel).sum(axis=1)
    prec = np.divide(n_good, n_in, out=np.zeros(dist.shape[0]), where=n_in > 0)
    return float(prec.mean())


def precision_at_k(dist: np.ndarray, rel: np.ndarray, k: int) -> float:
    """Mean fraction of relevant items among the first K of the ranking (ties by index)."""
    _check(dist, rel)
    k = min(int(k), dist.shape[1])
    if k < 1:
        raise HashingError("precision@K needs K >= 1")
    total = 0.0
    for s in range(0, dist.shape[0], _CHUNK):
        total += _ranked_relevance(dist[s : s + _CHUNK], rel[s : s + _CHUNK], k).mean(axis=1).sum()
    return float(total / dist.shape[0])


def evaluate(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    *,
    top_k: int = 1000,
    radius: int = 2,
    ks: tuple[int, ...] = (),
) -> dict[str, float]:
    """The standard report: mAP, mAP@top_k, P@H<=radius and P@K for each K in ``ks``."""
    dist = hamming_distances(query_codes, db_codes)
    rel = relevance(query_labels, db_labels)
    res = {
        "mAP": mean_average_precision(dist, rel),
        f"mAP@{top_k}": mean_average_precision(dist, rel, top_k),
        f"P@H<={radius}": precision_at_radius(dist, rel, radius),
    }
    for k in ks:
        res[f"P@{k}"] = precision_at_k(dist, rel, k)
    return res
