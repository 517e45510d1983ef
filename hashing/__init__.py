"""Online hashing for face retrieval: BSODH and baselines, retrieval metrics, a FAISS binary index
that follows hash updates, and the image -> face -> embedding -> code pipeline.

Of ``automl`` this package imports only two standard-library helpers (``automl.errors`` and
``automl.atomic``), never torch or the store: it runs wherever an exported model is shipped.
``HashIndex`` (which imports faiss) is loaded on first use.

Hashers are created by name through one registry (:func:`create_hasher`, :mod:`hashing.registry`),
which the benchmarks and saved indexes use too.
"""

from typing import Any

from hashing.base import LinearEncoder, OnlineHasher
from hashing.baselines import ITQ, LSH, OKH, OSH, AdaptHash, SketchHash
from hashing.bsodh import BSODH
from hashing.errors import (
    HashingError,
    IndexConflictError,
    IndexFormatError,
    IndexLockedError,
    ModelFormatError,
    NoFaceError,
    UnknownHasherError,
)
from hashing.hmoh import HMOH
from hashing.registry import HasherSpec, create_hasher, hasher_names, register_hasher

__all__ = [
    "BSODH",
    "HMOH",
    "ITQ",
    "LSH",
    "OKH",
    "OSH",
    "AdaptHash",
    "HashIndex",
    "HasherSpec",
    "HashingError",
    "IndexConflictError",
    "IndexFormatError",
    "IndexLockedError",
    "LinearEncoder",
    "ModelFormatError",
    "NoFaceError",
    "OnlineHasher",
    "SketchHash",
    "UnknownHasherError",
    "create_hasher",
    "hasher_names",
    "register_hasher",
]


def __getattr__(name: str) -> Any:
    if name == "HashIndex":
        from hashing.index import HashIndex

        return HashIndex
    raise AttributeError(f"module 'hashing' has no attribute {name!r}")
