"""Name -> search space class, imported lazily.

Kept out of ``search_spaces/__init__.py`` so that code importing ``search_spaces.registry`` works
even where a same-named test folder shadows the package's ``__init__`` (pytest's
``pythonpath = ["tests"]`` makes ``tests/search_spaces`` a namespace package of that name).
"""

from __future__ import annotations

import importlib
from typing import Any

from search_spaces.base import SearchSpace

SPACES: dict[str, str] = {
    "darts": "search_spaces.darts:DartsSpace",
    "mobilenet": "search_spaces.mobilenet:MobileNetSpace",
    "face": "search_spaces.face:FaceSpace",
}
"""Space name -> ``module:class``."""


class UnknownSpaceError(ValueError):
    """A space name that is not registered."""


NNI_PREFIX = "nni:"
"""``nni:module:ClassName`` (or ``nni:path/file.py:ClassName``): a user's NNI ``ModelSpace``."""


def create_space(name: str, **options: Any) -> SearchSpace:
    """Instantiate space ``name`` with ``options`` (e.g. ``task="au"``, ``nodes=4``)."""
    if name.startswith(NNI_PREFIX):
        from search_spaces.nni_space import NNISpace  # needs the optional 'nni' extra

        return NNISpace(name, task=options.get("task"))
    try:
        target = SPACES[name]
    except KeyError:
        raise UnknownSpaceError(
            f"unknown search space '{name}' (choose one of: {', '.join(SPACES)}, or nni:module:ClassName)"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)
