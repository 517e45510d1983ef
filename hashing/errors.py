"""Errors raised by the hashing package.

``hashing`` never imports ``automl``; everything a caller can get wrong is a :class:`HashingError`
(a ``ValueError``) with a one-line message, so the CLI layer can turn it into ``UserError``
without knowing the details.
"""

from __future__ import annotations


class HashingError(ValueError):
    """Bad input to a hasher, the index or the streaming pipeline (one-line message)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class IndexFormatError(HashingError):
    """A saved index directory is missing, truncated, corrupt or of an unknown format."""


class ModelFormatError(HashingError):
    """An exported embedding model (TorchScript + JSON sidecar) cannot be used."""


class NoFaceError(HashingError):
    """The face detector found no face in an image (the image is reported, not embedded)."""
