"""Retrieval metrics over Hamming rankings: tie-aware by default, or the MIHash framework's rule.

Relevance: same class, or at least one shared label for 0/1 label matrices (``affinity.m``).
A Hamming ranking has *ties*: every item at the same distance from the query (a *shell*) is as
near as the others, so any order inside a shell is as good as another. Two rules order them,
chosen with ``ties=``:

* ``ties="aware"`` (the default): the expected value of the metric when the items of each shell
  are put in a uniformly random order (He, Cakir, Bargal and Sclaroff, "Hashing as Tie-Aware
  Learning to Rank", CVPR 2018; McSherry and Najork, ECIR 2008), computed in closed form -- no
  sampling. It depends on the codes alone, never on where an item sits in the database, so a
  database sorted by class is scored like a shuffled one.
* ``ties="index"``: ties broken by database index, as the MIHash framework's ``evaluate.m``
  (MATLAB's ``sort`` is stable, and its mAP@K rule walks Hamming shells collecting items in index
  order, which is the same order). The tests check this rule against the framework's numbers.

Metrics (AP as ``vl_pr`` computes it, the mean precision at each relevant position):

* ``mean_average_precision``: mAP over the whole ranking; a query with no relevant item has an
  undefined AP and is left out of the mean.
* ``top_k`` (mAP@K): AP over the first K ranked items, normalised by the relevant items among
  those K; queries with none are left out (``evaluate.m`` drops NaN APs).
* ``precision_at_radius``: precision of the Hamming ball ``distance <= radius``; a query whose
  ball is empty counts 0. A ball never cuts a shell, so both rules agree.
* ``precision_at_k``: fraction of relevant items among the first K.

Tie-aware formulas, for one query. Shells ``g = 1, 2, ...`` in increasing distance; shell ``g``
holds ``n_g`` items of which ``r_g`` are relevant; ``N_g`` items and ``R_g`` relevant items lie
in the shells before it; ``R`` relevant items in all; ``H(m) = 1 + 1/2 + ... + 1/m``.

* **AP.** The item at place ``j`` (``1..n_g``) of shell ``g`` sits at rank ``N_g + j``; it is
  relevant with probability ``r_g / n_g`` and then, of the ``j - 1`` places before it in its
  shell, ``(j - 1)(r_g - 1)/(n_g - 1)`` are relevant on average (hypergeometric). So::

      E[AP] = 1/R * sum_g sum_{j=1..n_g} r_g/n_g * (R_g + 1 + (j-1) b_g) / (N_g + j),
              b_g = (r_g - 1)/(n_g - 1)  (0 when n_g = 1)
            = 1/R * sum_g [ r_g b_g + r_g/n_g * (R_g + 1 - b_g (N_g + 1)) * (H(N_g + n_g) - H(N_g)) ]

  using ``(a + b(j - 1))/(N + j) = b + (a - b(N + 1))/(N + j)``.
* **mAP@K.** Shells wholly inside the first K contribute as above; the shell ``c`` holding rank
  K is *cut*: only ``m = K - N_c`` of its ``n_c`` items are in the top K, and the number ``h`` of
  relevant items among them is hypergeometric, ``P(h) = C(r_c, h) C(n_c - r_c, m - h) / C(n_c, m)``.
  Given ``h``, those ``m`` places hold ``h`` relevant items in random order, contributing
  ``h a + h (h - 1) b`` with ``a = (R_c + 1)(H(N_c + m) - H(N_c))/m`` and
  ``b = (m - (N_c + 1)(H(N_c + m) - H(N_c)))/(m (m - 1))`` (0 when m = 1). AP@K is normalised by
  the relevant items in the top K, ``R_c + h``, so::

      E[AP@K] = sum_h P(h) (S + h a + h (h - 1) b) / (R_c + h)  /  sum_h P(h),

  both sums over the ``h`` with ``R_c + h > 0``, ``S`` the expected contributions of the shells
  before ``c``: the expected AP@K over the orders in which it is defined. A query is left out
  when no order puts a relevant item in its top K (``R_c = 0`` and ``r_c = 0``). mAP is the case
  ``K = all items``, where no shell is cut.
* **P@K.** ``E[P@K] = (R_c + m r_c / n_c) / K``: the cut shell gives its relevant share.

With no ties (every shell of one item) both rules give the same numbers (up to float rounding).
Shells are counted with one ``bincount`` per block of queries, without sorting the database, so
the tie-aware metrics cost less than the index rule's sort. Distances that are not small
non-negative integers (e.g. floats) are sorted into shells instead.
"""

from __future__ import annotations

import numpy as np

from hashing.errors import HashingError

_CHUNK = 256
_AWARE_BLOCK = 1 << 23  # queries x items per block of the tie-aware rule (bounds its temporaries)
TIES = ("aware", "index")  # the tie rules, the default first
_MAX_SHELLS = 4096  # integer distances below this are counted into shells without sorting


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


def _check_ties(ties: object) -> str:
    if ties not in TIES:
        raise HashingError(
            f"ties must be 'aware' (expected value over random orders within a Hamming shell) or "
            f"'index' (ties broken by database index, as the MIHash framework), not {ties!r}",
            param="ties",
        )
    return str(ties)


def _ranked_relevance(dist: np.ndarray, rel: np.ndarray, k: int | None) -> np.ndarray:
    order = np.argsort(dist, axis=1, kind="stable")
    if k is not None:
        order = order[:, :k]
    return np.take_along_axis(rel, order, axis=1)


# -- the tie-aware rule -------------------------------------------------------------------------
def _shells(dist: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the item count ``n`` and relevant count ``r`` of each distance shell, nearest
    first: two (nq, S) float64 arrays (empty shells hold zeros)."""
    nq, nd = dist.shape
    rel = np.asarray(rel, dtype=bool)
    lo = dist.min() if dist.size else 0
    hi = dist.max() if dist.size else 0
    if dist.dtype.kind in "iub" and lo >= 0 and hi < _MAX_SHELLS:
        shell, n_shells = dist.astype(np.int64), int(hi) + 1
    else:  # any other distances: sort, then number the distinct values of each row
        order = np.argsort(dist, axis=1, kind="stable")
        ranked = np.take_along_axis(dist, order, axis=1)
        rel = np.take_along_axis(rel, order, axis=1)
        new = np.ones(ranked.shape, bool)
        new[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
        shell = np.cumsum(new, axis=1) - 1
        n_shells = int(shell[:, -1].max()) + 1 if nd else 1
    key = (np.arange(nq, dtype=np.int64)[:, None] * n_shells + shell) * 2 + rel
    counts = np.bincount(key.ravel(), minlength=nq * n_shells * 2).reshape(nq, n_shells, 2)
    r = counts[..., 1].astype(np.float64)
    return counts[..., 0] + r, r


def _aware_rows(n_items: int) -> int:
    return max(1, min(_CHUNK, _AWARE_BLOCK // max(1, n_items)))


def _harmonic(n: int) -> np.ndarray:
    """``H[m] = 1 + 1/2 + ... + 1/m`` for ``m = 0..n``."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _harmonic_span(H: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``sum_{j=1..count} 1/(start + j)``; exact for one item (no difference of large sums)."""
    s, c = start.astype(np.int64), count.astype(np.int64)
    return np.where(c == 1, 1.0 / (s + 1), H[s + c] - H[s])


def _aware_cut(n: np.ndarray, r: np.ndarray, k: int, H: np.ndarray) -> tuple[np.ndarray, ...]:
    """The shell holding rank ``k`` of every query: items ``N`` and relevant items ``R`` before it,
    its size ``nc`` and relevant count ``rc``, the places ``m`` it fills in the top k, and the
    expected AP numerator ``S`` of the shells before it."""
    cum_n = np.cumsum(n, axis=1)
    before_n, before_r = cum_n - n, np.cumsum(r, axis=1) - r
    rows = np.arange(n.shape[0])
    c = np.argmax(cum_n >= k, axis=1)
    N, R, nc, rc = before_n[rows, c], before_r[rows, c], n[rows, c], r[rows, c]
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
        share = np.where(n > 0, r / np.maximum(n, 1), 0.0)
        span = _harmonic_span(H, before_n, n)  # 0 for an empty shell
    contrib = r * b + share * (before_r + 1 - b * (before_n + 1)) * span
    S = np.cumsum(contrib, axis=1)[rows, c] - contrib[rows, c]
    return N, R, nc, rc, k - N, S


def _aware_average_precisions(n: np.ndarray, r: np.ndarray, k: int, H: np.ndarray) -> np.ndarray:
    N, R, nc, rc, m, S = _aware_cut(n, r, k, H)
    span = _harmonic_span(H, N, m)
    a = (R + 1) * span / m
    b = np.where(m > 1, (m - (N + 1) * span) / np.maximum(m * (m - 1), 1), 0.0)
    h_lo = np.maximum(0.0, m - (nc - rc))
    h_hi = np.minimum(rc, m)
    width = int((h_hi - h_lo).max()) + 1
    h = h_lo[:, None] + np.arange(width)[None, :]
    valid = h <= h_hi[:, None]
    # Hypergeometric weights from the ratio P(h+1)/P(h), in logs; scaled so the largest is 1.
    hs, rc2, m2, nc2 = h[:, :-1], rc[:, None], m[:, None], nc[:, None]
    up = (rc2 - hs) * (m2 - hs)
    down = (hs + 1) * (nc2 - rc2 - m2 + hs + 1)
    step_ok = valid[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(
            step_ok, np.log(np.where(step_ok, up, 1.0)) - np.log(np.where(step_ok, down, 1.0)), 0.0
        )
    logw = np.concatenate([np.zeros((len(h), 1)), np.cumsum(step, axis=1)], axis=1)
    logw = np.where(valid, logw, -np.inf)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    hits = R[:, None] + h
    defined = valid & (hits > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(defined, (S[:, None] + a[:, None] * h + b[:, None] * h * (h - 1)) / hits, 0.0)
        wd = np.where(defined, w, 0.0)
        return (wd * value).sum(axis=1) / wd.sum(axis=1)  # 0/0 = NaN: no order is defined


def _aware_precision_at_k(n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    cum_n = np.cumsum(n, axis=1)
    rows = np.arange(n.shape[0])
    c = np.argmax(cum_n >= k, axis=1)
    N = (cum_n - n)[rows, c]
    R = (np.cumsum(r, axis=1) - r)[rows, c]
    return (R + (k - N) * r[rows, c] / n[rows, c]) / k


# -- the metrics ---------------------------------------------------------------------------------
def average_precisions(
    dist: np.ndarray, rel: np.ndarray, top_k: int | None = None, *, ties: str = "aware"
) -> np.ndarray:
    """Per-query AP (NaN where no relevant item is ranked) over the full ranking or its top K;
    ``ties``: ``"aware"`` (expected AP over random orders within each shell) or ``"index"``
    (the framework's database-index order); see the module docstring."""
    _check(dist, rel)
    ties = _check_ties(ties)
    out = np.empty(dist.shape[0])
    nd = dist.shape[1]
    k = None if top_k is None else min(int(top_k), nd)
    if ties == "aware":
        if nd == 0 or k == 0:
            out[:] = np.nan
            return out
        H = _harmonic(nd)
        step = _aware_rows(nd)
        for s in range(0, dist.shape[0], step):
            n, r = _shells(dist[s : s + step], rel[s : s + step])
            out[s : s + step] = _aware_average_precisions(n, r, nd if k is None else k, H)
        return out
    for s in range(0, dist.shape[0], _CHUNK):
        ranked = _ranked_relevance(dist[s : s + _CHUNK], rel[s : s + _CHUNK], k)
        hits = np.cumsum(ranked, axis=1)
        pos = np.arange(1, ranked.shape[1] + 1)
        n_rel = hits[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + _CHUNK] = np.where(ranked, hits / pos, 0.0).sum(axis=1) / n_rel
    return out


def mean_average_precision(
    dist: np.ndarray, rel: np.ndarray, top_k: int | None = None, *, ties: str = "aware"
) -> float:
    """mAP (``top_k=None``) or mAP@K; queries with undefined AP are left out of the mean;
    ``ties`` as in :func:`average_precisions`."""
    ap = average_precisions(dist, rel, top_k, ties=ties)
    ok = ~np.isnan(ap)
    return float(ap[ok].mean()) if ok.any() else float("nan")


def precision_at_radius(dist: np.ndarray, rel: np.ndarray, radius: int = 2) -> float:
    """Mean precision within Hamming distance ``<= radius``; an empty ball counts 0 (no tie
    rule: a ball holds whole shells)."""
    _check(dist, rel)
    inside = dist <= radius
    n_in = inside.sum(axis=1)
    n_good = (inside & rel).sum(axis=1)
    prec = np.divide(n_good, n_in, out=np.zeros(dist.shape[0]), where=n_in > 0)
    return float(prec.mean())


def precision_at_k(dist: np.ndarray, rel: np.ndarray, k: int, *, ties: str = "aware") -> float:
    """Mean fraction of relevant items among the first K of the ranking: expected over random
    orders within the shell that rank K cuts (``ties="aware"``), or with ties by database index
    (``"index"``)."""
    _check(dist, rel)
    ties = _check_ties(ties)
    k = min(int(k), dist.shape[1])
    if k < 1:
        raise HashingError("precision@K needs K >= 1")
    total = 0.0
    step = _aware_rows(dist.shape[1]) if ties == "aware" else _CHUNK
    for s in range(0, dist.shape[0], step):
        d, y = dist[s : s + step], rel[s : s + step]
        if ties == "aware":
            total += _aware_precision_at_k(*_shells(d, y), k).sum()
        else:
            total += _ranked_relevance(d, y, k).mean(axis=1).sum()
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
    ties: str = "aware",
) -> dict[str, float]:
    """The standard report: mAP, mAP@top_k, P@H<=radius and P@K for each K in ``ks``, with the
    tie rule ``ties`` (``"aware"``, the default, or ``"index"``: the MIHash framework's numbers)."""
    ties = _check_ties(ties)
    dist = hamming_distances(query_codes, db_codes)
    rel = relevance(query_labels, db_labels)
    res = {
        "mAP": mean_average_precision(dist, rel, ties=ties),
        f"mAP@{top_k}": mean_average_precision(dist, rel, top_k, ties=ties),
        f"P@H<={radius}": precision_at_radius(dist, rel, radius),
    }
    for k in ks:
        res[f"P@{k}"] = precision_at_k(dist, rel, k, ties=ties)
    return res
