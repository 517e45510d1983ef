"""Errors raised by the hashing package.

``hashing`` imports nothing of ``automl`` but its two standard-library helpers
(:mod:`automl.errors`, :mod:`automl.atomic`); everything a caller can get wrong is a
:class:`HashingError` (a ``ValueError``) with a one-line message, so the CLI layer can turn it into
``UserError`` without knowing the details. An error about one argument names it in ``param`` (the
library's keyword, e.g. ``"batch_size"``) so that a command line can say which flag to change.
"""

from __future__ import annotations


class HashingError(ValueError):
    """Bad input to a hasher, the index or the streaming pipeline (one-line message)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.param = param


class IndexFormatError(HashingError):
    """A saved index directory is missing, truncated, corrupt or of an unknown format."""


class ModelFormatError(HashingError):
    """An exported embedding model (TorchScript + JSON sidecar) cannot be used."""


class NoFaceError(HashingError):
    """The face detector found no face in an image (the image is reported, not embedded)."""


class IndexLockedError(HashingError):
    """Another writer holds an index directory's lock and did not let go within the timeout."""


class IndexConflictError(HashingError):
    """The index on disk is no longer the generation this writer loaded: saving would lose the
    other writer's items, so nothing was written."""


class UnknownHasherError(HashingError):
    """A hasher name that is not in the registry (:func:`hashing.registry.create_hasher`)."""


class CollapseWarning(UserWarning):
    """A hash update was refused because it would have mapped many items onto a few codes (the
    index keeps its previous hash function; ``stats()`` counts the refusals)."""
