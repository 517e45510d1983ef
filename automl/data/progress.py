"""Progress bars for long data work (decoding a data set, rendering a big synthetic set)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

PROGRESS_MIN = 2000  # fewer items than this are quick enough to need no progress bar


@contextmanager
def progress_bar(
    what: str, total: int, minimum: int = PROGRESS_MIN
) -> Iterator[Callable[[int], None] | None]:
    """A transient rich bar with ETA on stderr; yields ``advance(n_done)`` (``None`` when small)."""
    if total < minimum:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)
