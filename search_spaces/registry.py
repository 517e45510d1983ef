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

AllowUserCode = bool | str | None
"""Who may name user code: ``True`` (the name itself is the user's explicit choice), the one
``nni:...`` space the user chose explicitly (a ``--space`` option, or the stored config of a run the
user launched with ``--space``), or ``False``/``None`` (the name comes from data: refuse)."""


class UserCodeRefusedError(UnknownSpaceError):
    """A space name read from data (a genotype file, a checkpoint, a stored run) that names user
    code to import (``nni:...``) without the user having chosen that space explicitly."""

    argument = "space"
    """The parameter that would allow it (see :class:`automl.errors.UserError`)."""


class SpaceUnavailableError(UnknownSpaceError, ModuleNotFoundError):
    """A known kind of space whose optional dependency is not installed (``nni:...`` without NNI).

    A ``ValueError`` like every bad space name, and still the ``ModuleNotFoundError`` it was."""


def is_user_code(name: object) -> bool:
    """Whether space ``name`` is a user's module (``nni:...``), i.e. code that would be imported."""
    return isinstance(name, str) and name.startswith(NNI_PREFIX)


def check_user_code(name: str, allow_user_code: AllowUserCode = False) -> None:
    """Refuse space ``name`` when it names user code that ``allow_user_code`` does not allow.

    The one guard in front of every import of a user's module (:func:`create_space` and
    :mod:`search_spaces.nni_space` call it): a data file must never name code to import.
    """
    if not is_user_code(name):
        return
    if allow_user_code is True or (isinstance(allow_user_code, str) and allow_user_code == name):
        return
    raise UserCodeRefusedError(
        f"the genotype's space '{name}' names user code to import, which automl runs only when you "
        f"choose that space yourself: give '{name}' as the space to allow it"
    )


def create_space(name: str, *, allow_user_code: AllowUserCode = False, **options: Any) -> SearchSpace:
    """Instantiate space ``name`` with ``options`` (e.g. ``task="au"``, ``nodes=4``).

    A user's NNI space (``nni:...``) imports and runs the user's module, so it is built only when
    ``allow_user_code`` allows it (see :data:`AllowUserCode`); otherwise
    :class:`UserCodeRefusedError`. Names read from data (genotype files, checkpoints, stored runs)
    must pass the user's explicit choice, never ``True``.
    """
    if is_user_code(name):
        check_user_code(name, allow_user_code)
        try:
            from search_spaces.nni_space import NNISpace  # needs the optional 'nni' extra
        except ModuleNotFoundError as exc:
            raise SpaceUnavailableError(f"search space '{name}' needs NNI, which is missing: {exc}") from None

        return NNISpace(name, task=options.get("task"), allow_user_code=True)
    try:
        target = SPACES[name]
    except KeyError:
        raise UnknownSpaceError(
            f"unknown search space '{name}' (choose one of: {', '.join(SPACES)}, or nni:module:ClassName)"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)
