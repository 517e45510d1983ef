"""``--data KIND:PATH`` specs: parsing and the registry of loaders.

One entry per kind; each loader gets the path part and a :class:`LoadOptions` and returns a
:class:`FaceData`. Unknown kinds and missing paths are :class:`UserError` one-liners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from automl.data.facedata import FaceData
from automl.errors import UserError


@dataclass(frozen=True)
class LoadOptions:
    """Keyword arguments of :func:`load_data`, passed to every loader."""

    image_size: int | None = None
    channels: int | None = None
    fold: int | None = None
    n: int | None = None
    seed: int = 0


Loader = Callable[[str, LoadOptions], FaceData]
KINDS = ("synth", "fer2013", "ferplus", "rafdb", "affectnet", "bp4d", "disfa", "cifar10", "folder")


def parse_spec(spec: str) -> tuple[str, str]:
    """``"fer2013:/p/x.csv"`` -> ``("fer2013", "/p/x.csv")``; kinds are case-insensitive."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(
            "empty data spec: use KIND:PATH, e.g. synth:fer or fer2013:/data/fer2013.csv", argument="data"
        )
    kind, sep, path = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise UserError(
            f"unknown data kind {kind!r} in {spec!r}: use one of {', '.join(KINDS)} (as KIND:PATH)",
            argument="data",
        )
    if not sep or not path:
        raise UserError(
            f"data spec {spec!r} has no path: use {kind}:PATH (for synthetic faces: synth:fer or synth:au)",
            argument="data",
        )
    return kind, path


def _loaders() -> dict[str, Loader]:
    # imported here: the readers import this package's helpers, not the other way round
    from automl.data.readers import LOADERS

    return LOADERS


def load_data(
    spec: str,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    fold: int | None = None,
    n: int | None = None,
    seed: int = 0,
) -> FaceData:
    """Load (or render) a data set from a ``KIND:PATH`` spec.

    ``image_size``/``channels`` resize and convert (default: the format's native size, 48x48 grey
    for synthetic faces); ``fold`` picks the subject-exclusive CV fold (1..3) for AU sets; ``n``
    caps the number of samples (synthetic: how many faces to render); ``seed`` fixes synthetic
    data and any subsampling.
    """
    kind, path = parse_spec(spec)
    if image_size is not None and not 8 <= int(image_size) <= 512:
        raise UserError(f"image size {image_size} is out of range: use 8..512 pixels", argument="image_size")
    if channels is not None and int(channels) not in (1, 3):
        raise UserError(f"channels must be 1 (grey) or 3 (RGB), not {channels}", argument="channels")
    if fold is not None and not 1 <= int(fold) <= 3:
        raise UserError(f"the fold must be 1, 2 or 3, not {fold}", argument="fold")
    if n is not None and int(n) < 1:
        raise UserError(f"n must be a positive number of samples, not {n}", argument="n")
    from automl.config import check_seed

    check_seed(seed)  # numpy's RNGs take 0..2**32-1
    opts = LoadOptions(image_size, channels, fold, n, seed)
    return _loaders()[kind](path, opts)
