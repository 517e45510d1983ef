"""Where a genotype to train or export comes from, and the guard in front of the code it may name.

A genotype is data: a JSON file (a bare genotype, or any JSON object holding one under
``"genotype"`` -- an ``automl export --format json`` file, a checkpoint sidecar), or a stored
run's final architecture. Its ``"space"`` may name a user's NNI space (``nni:...``), i.e. code to
import; :func:`guard_genotype_space` lets that through only when the caller chose that very space
explicitly (:func:`search_spaces.registry.check_user_code`). Every reader of a genotype from data
(train, hpo, export, bench face) calls it before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError

if TYPE_CHECKING:
    from automl.store import Store


class InputError(UserError):
    """A bad value of one named argument of a library job (``argument``: its parameter name).

    A :class:`~automl.errors.UserError` whose ``argument`` is always set; the CLI appends the
    option that set it (:mod:`automl.commands.flags`).
    """

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(message, argument=argument)


class SpaceMismatchError(UserError):
    """The space a caller asked for is not the genotype's own space."""

    def __init__(self, genotype_space: Any, requested: str) -> None:
        super().__init__(
            f"the genotype's space '{genotype_space}' does not match the requested space '{requested}'",
            argument="space",
        )
        self.genotype_space = genotype_space
        self.requested = requested


def read_genotype_file(path: str | Path) -> dict[str, Any]:
    """The genotype in a JSON file (bare, or under a ``"genotype"`` key)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"genotype file not found: {path} (pass a JSON genotype file or a run id)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"genotype file {path} is not valid JSON: {exc}") from None
    if isinstance(payload, dict) and isinstance(payload.get("genotype"), dict):
        payload = payload["genotype"]
    if not isinstance(payload, dict) or "space" not in payload:
        raise UserError(
            f"genotype file {path} must hold a JSON object with a 'space' key "
            "(e.g. a run's json export)"
        )
    return payload


def resolve_target(
    store: Store | None, target: str | int | Path | dict[str, Any]
) -> tuple[dict[str, Any], int | None, dict[str, Any] | None]:
    """``(genotype, parent run id, the parent's stored config)`` for a genotype dict, a JSON file
    path, or a run id (an ``int``, or a string of digits that is not an existing file)."""
    if isinstance(target, dict):
        return dict(target), None, None
    if isinstance(target, int) and not isinstance(target, bool):
        run_id = target
    else:
        text = str(target)
        path = Path(text)
        if path.exists() or not text.strip().isdigit():
            return read_genotype_file(path), None, None
        run_id = int(text)
    if store is None:
        raise UserError(f"run {run_id} names a stored run: training it needs the store that holds it")
    run = store.get_run(run_id)
    genotype = store.final_architecture(run_id)["genotype"]
    return genotype, run_id, run.get("config") or None


def allowed_space(space: str | None, stored_config: Any = None) -> str | None:
    """The space the user chose explicitly, whose code a genotype may name (``nni:...``).

    ``space`` itself when given, else -- for a stored run -- the ``search.space`` of the run's
    stored config (what the user passed to ``automl search --space``, which refuses an ``nni:``
    space coming from anywhere else). Anything else is data and allows nothing.
    """
    if space:
        return space
    search = stored_config.get("search") if isinstance(stored_config, dict) else None
    chosen = search.get("space") if isinstance(search, dict) else None
    return chosen if isinstance(chosen, str) else None


def check_space_matches(genotype: Any, space: str | None) -> None:
    """A requested ``space`` names the genotype's space: a different one is a mistake (before work)."""
    have = genotype.get("space") if isinstance(genotype, dict) else None
    if space and have != space:
        raise SpaceMismatchError(have, space)


def guard_genotype_space(genotype: Any, space: str | None, stored_config: Any = None) -> str | None:
    """Check a genotype read from data against the caller's explicit choice, before any work.

    Returns the space to pass on as ``allow_user_code`` (:func:`allowed_space`). A ``space`` that is
    not the genotype's is :class:`SpaceMismatchError`; a genotype naming a user's NNI space
    (``nni:...``) that was not chosen is a one-line :class:`UserError` (nothing is imported).
    """
    from search_spaces.registry import UserCodeRefusedError, check_user_code

    check_space_matches(genotype, space)
    allow = allowed_space(space, stored_config)
    name = genotype.get("space") if isinstance(genotype, dict) else None
    try:
        check_user_code(name, allow)
    except UserCodeRefusedError as exc:
        raise UserError(str(exc), argument="space") from None
    return allow
