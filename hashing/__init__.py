"""Online hashing for face retrieval: BSODH and baselines, retrieval metrics, a FAISS binary index
that follows hash updates, and the image -> face -> embedding -> code pipeline.

This package never imports ``automl``: it runs wherever an exported model is shipped.
"""

from hashing.base import LinearEncoder, OnlineHasher
from hashing.bsodh import BSODH
from hashing.errors import HashingError, IndexFormatError, ModelFormatError, NoFaceError

__all__ = [
    "BSODH",
    "HashingError",
    "IndexFormatError",
    "LinearEncoder",
    "ModelFormatError",
    "NoFaceError",
    "OnlineHasher",
]
