"""Search spaces: candidate ops, supernets, genotype <-> network.

``create_space(name, **options)`` is the one entry point; spaces are imported lazily so that using
one space never pays for (or breaks on) another. This package never imports :mod:`automl`.
"""

from __future__ import annotations

import importlib
from typing import Any

from search_spaces.base import Decision, Genotype, SearchSpace, Supernet

SPACES: dict[str, str] = {
    "darts": "search_spaces.darts:DartsSpace",
    "mobilenet": "search_spaces.mobilenet:MobileNetSpace",
    "face": "search_spaces.face:FaceSpace",
}
"""Space name -> ``module:class``."""


class UnknownSpaceError(ValueError):
    """A space name that is not registered."""


def create_space(name: str, **options: Any) -> SearchSpace:
    """Instantiate space ``name`` with ``options`` (e.g. ``task="au"``, ``nodes=4``)."""
    try:
        target = SPACES[name]
    except KeyError:
        raise UnknownSpaceError(f"unknown search space '{name}' (choose one of: {', '.join(SPACES)})") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)


__all__ = ["SPACES", "Decision", "Genotype", "SearchSpace", "Supernet", "UnknownSpaceError", "create_space"]
