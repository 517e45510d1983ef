"""Retrieval quality while an index is being built: "mAP over the stream".

A held-out set of labelled samples (never indexed) is scored against the items indexed so far
after every hash update; the curve is kept in the index's ``extra[STREAM_MAP_KEY]`` as
``[{"update", "items", "mAP", "ties"}, ...]``, which is where the dashboard's Retrieval page reads
it (``dashboard.retrieval_data.HISTORY_KEYS[0]``; it plots ``update`` against ``mAP`` and ignores
the other keys). The mAP is tie-aware (:mod:`hashing.metrics`: the expected AP over random orders
of the items at equal Hamming distance), so a stream sorted by class scores as a shuffled one
would; ``"ties"`` names the rule of each point and ``extra[STREAM_MAP_TIES_KEY]`` that of the
curve. Curves saved before the rule was recorded have no ``"ties"``: they broke ties by
position (``"index"``). Nothing here needs torch or the store::

    (emb, labels, sources), (q_emb, q_labels) = hold_out_queries(emb, labels, sources, 200, seed=0)
    recorder = StreamMapRecorder(q_emb, q_labels)
    index.add_batches(emb, labels=labels, sources=sources, batch_size=2000, after_batch=recorder)
    recorder.save_to(index)  # extra["stream_map"], ["stream_map_queries"], ["stream_map_ties"]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashing.errors import HashingError
from hashing.metrics import TIES, hamming_distances, mean_average_precision, relevance

STREAM_MAP_KEY = "stream_map"
STREAM_MAP_QUERIES_KEY = "stream_map_queries"
STREAM_MAP_TIES_KEY = "stream_map_ties"  # the tie rule of the curve's mAP (hashing.metrics.TIES)


def hold_out_queries(
    embeddings: np.ndarray, labels: np.ndarray | None, sources: list[str], n_queries: int, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray, list[str]], tuple[np.ndarray, np.ndarray]]:
    """Split ``n_queries`` labelled samples off a stream: ``((embeddings, labels, sources) to
    index, (query embeddings, query labels))``.

    The queries are drawn at random (``seed``) rather than taken from the end, because data sets
    are often ordered by class; the remaining items keep their stream order and their sources, so
    a source such as ``data#split:i`` still names the original sample.
    """
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or n_queries < 1:
        raise HashingError(
            f"eval_queries must be a whole number >= 1, not {n_queries!r}", param="eval_queries"
        )
    if labels is None:
        raise HashingError(
            "held-out evaluation queries: the stream needs labelled data (a data spec, or images with a "
            "labels CSV)",
            param="eval_queries",
        )
    emb = np.asarray(embeddings)
    labels = np.asarray(labels)
    if len(labels) != len(emb) or len(sources) != len(emb):
        raise HashingError(f"{len(emb)} embeddings but {len(labels)} labels and {len(sources)} sources")
    labelled = np.flatnonzero((labels.reshape(len(labels), -1) >= 0).all(axis=1))
    if n_queries >= len(labelled) or n_queries >= len(emb):
        raise HashingError(
            f"eval_queries={n_queries} leaves nothing to index: only {len(labelled)} labelled "
            f"sample(s) of {len(emb)}; use fewer queries or more data",
            param="eval_queries",
        )
    picked = np.sort(np.random.default_rng(seed).choice(labelled, n_queries, replace=False))
    keep = np.ones(len(emb), bool)
    keep[picked] = False
    kept = (emb[keep], labels[keep], [s for s, k in zip(sources, keep, strict=True) if k])
    return kept, (emb[picked], labels[picked])


class StreamMapRecorder:
    """An ``after_batch`` hook for :meth:`hashing.index.HashIndex.add_batches`: after every hash
    update, the mAP of the held-out queries against the items indexed so far, appended to
    :attr:`history` as ``{"update", "items", "mAP", "ties"}``.

    It ranks with the index's own codes and query-encoding snapshot (what a user querying the
    index at that moment would get, stale codes included when ``refresh_every`` > 1) and scores
    with :mod:`hashing.metrics`, tie-aware by default (``ties="index"``: the MIHash framework's
    position order, which depends on the order items were streamed in). An undefined mAP (no
    query has a relevant item yet) is stored as ``None``: JSON has no NaN and the dashboard skips
    non-numbers.
    """

    def __init__(self, queries: np.ndarray, query_labels: np.ndarray, *, ties: str = "aware") -> None:
        if ties not in TIES:
            raise HashingError(f"ties must be one of {', '.join(TIES)}, not {ties!r}", param="ties")
        self.queries = np.asarray(queries)
        self.query_labels = np.asarray(query_labels)
        self.ties = ties
        self.history: list[dict[str, Any]] = []

    def __call__(self, index: Any) -> None:
        if index.n_updates == (self.history[-1]["update"] if self.history else 0):
            return  # an unlabelled batch: the hash did not change
        dist = hamming_distances(index.encode_queries(self.queries), index.codes)
        value = mean_average_precision(dist, relevance(self.query_labels, index.labels), ties=self.ties)
        self.history.append(
            {
                "update": int(index.n_updates),
                "items": len(index),
                "mAP": None if np.isnan(value) else round(float(value), 6),
                "ties": self.ties,
            }
        )

    @property
    def final_map(self) -> float | None:
        """The last defined mAP of the curve, or None."""
        return final_map(self.history)

    def save_to(self, index: Any) -> None:
        """Keep the curve (how many queries made it, and its tie rule) in ``index.extra``."""
        index.extra[STREAM_MAP_KEY] = self.history
        index.extra[STREAM_MAP_QUERIES_KEY] = len(self.queries)
        index.extra[STREAM_MAP_TIES_KEY] = self.ties


def final_map(history: list[dict[str, Any]]) -> float | None:
    """The last defined mAP of a stream-mAP curve, or None."""
    return next((h["mAP"] for h in reversed(history) if h["mAP"] is not None), None)
