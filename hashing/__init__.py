"""Online hashing for face retrieval: BSODH and baselines, retrieval metrics, a FAISS binary index
that follows hash updates, and the image -> face -> embedding -> code pipeline.

This package never imports ``automl``: it runs wherever an exported model is shipped.
``HashIndex`` (which imports faiss) is loaded on first use.
"""

from typing import Any

from hashing.base import LinearEncoder, OnlineHasher
from hashing.baselines import ITQ, LSH, OKH, OSH, AdaptHash, SketchHash
from hashing.bsodh import BSODH
from hashing.errors import HashingError, IndexFormatError, ModelFormatError, NoFaceError

__all__ = [
    "BSODH",
    "ITQ",
    "LSH",
    "OKH",
    "OSH",
    "AdaptHash",
    "HashIndex",
    "HashingError",
    "IndexFormatError",
    "LinearEncoder",
    "ModelFormatError",
    "NoFaceError",
    "OnlineHasher",
    "SketchHash",
]


def __getattr__(name: str) -> Any:
    if name == "HashIndex":
        from hashing.index import HashIndex

        return HashIndex
    raise AttributeError(f"module 'hashing' has no attribute {name!r}")
