"""The one progress callback type of the library; only the CLI renders it.

Long jobs (a search, a training run, a study, an index build) report
:class:`ProgressEvent` events to an optional ``progress`` callable. The library never draws: the
command line turns events into a rich progress bar (``automl.commands.common.progress_bar``), a
notebook may print them, a service may forward them. Events are cheap, plain data, emitted at
most once per epoch / trial / batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units (epochs, trials, items) of ``job``; ``message`` is one short line."""

    job: str
    done: int
    total: int | None
    message: str = ""
    eta_s: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def eta_text(self) -> str:
        """``eta_s`` as ``H:MM:SS``; ``?`` when unknown."""
        if self.eta_s is None:
            return "?"
        seconds = int(self.eta_s)
        return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


ProgressCallback = Callable[[ProgressEvent], None]


def emit(progress: ProgressCallback | None, event: ProgressEvent) -> None:
    """Call ``progress`` when there is one (so callers need no ``if``)."""
    if progress is not None:
        progress(event)
