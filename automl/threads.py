"""One CPU thread policy for ``automl search``, ``train``, ``hpo`` and ``index build``.

Why a policy at all: torch starts one intra-op thread per core. The networks here are tiny (16-48
px faces, 8-16 channels), so one op's work is too little to split, and on a shared machine a
second thread waits for a core that is busy with someone else's work. Measured on this project's
2-core machine while other work ran (load average 3-5):

* a quick-preset search epoch: 3-4x faster on 1 thread than on 2;
* ``automl train`` (face genotype, 16 channels x 6 layers, 1,600 16x16 images, batch 96, 3
  epochs, two runs each): 1 thread 5.3-6.2 s per epoch, 17-18 s process CPU time; 2 threads
  14-43 s per epoch, 65-67 s CPU time. The second thread costs ~3.7x the CPU and 2.5-7x the wall
  time: the extra CPU goes to threads waiting on each other, not to work.

So the one key ``search.cpu_threads`` (the ``quick`` preset sets 1; None keeps torch's default,
one thread per core, which is right for a large idle machine) is applied by all four commands,
``--cpu-threads N`` overrides it on the command line (``index build`` has no config: there the
option alone), and HPO worker processes on one machine each get that count, or the cores split
between them when it is not set. Only on CPU: on a GPU the host threads mostly wait for kernels,
and torch's default is left alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from automl.errors import UserError


def device_type(device: str | torch.device | None) -> str:
    """``cpu`` or ``cuda`` for a device, its name, or ``auto`` / None (CUDA when present)."""
    if isinstance(device, torch.device):
        return device.type
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device).split(":", 1)[0]


def check_threads(n: int | None, argument: str = "cpu_threads") -> int | None:
    """``n`` as an int (None stays None); fewer than 1 thread is a user error about the parameter
    ``argument``."""
    if n is None:
        return None
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise UserError(
            f"the number of CPU threads must be a whole number >= 1, not {n!r}", argument=argument
        )
    return int(n)


def apply_cpu_threads(
    device: str | torch.device | None, n: int | None, *, faiss: bool = False
) -> int:
    """Set torch's intra-op threads to ``n`` when ``device`` is the CPU; returns the count in effect.

    ``n`` None keeps torch's default. ``faiss`` also sets FAISS's OpenMP threads (index build: its
    Hamming searches run on the same cores), when FAISS is installed.
    """
    n = check_threads(n)
    if n is not None and device_type(device) == "cpu":
        torch.set_num_threads(n)
        if faiss:
            with contextlib.suppress(ImportError):
                import faiss as faiss_module

                faiss_module.omp_set_num_threads(n)
    return int(torch.get_num_threads())


@contextlib.contextmanager
def cpu_threads(device: str | torch.device | None, n: int | None) -> Iterator[int]:
    """:func:`apply_cpu_threads` for a block, then torch's previous count again (for library
    calls inside a longer-lived process: tests, the dashboard). Yields the count in effect."""
    before = torch.get_num_threads()
    try:
        yield apply_cpu_threads(device, n)
    finally:
        torch.set_num_threads(before)


def worker_threads(n: int | None, workers: int, cpu_count: int | None = None) -> int:
    """Threads for each of ``workers`` processes on one machine: ``n`` when it is set, else the
    cores split between them (at least 1), so K workers do not start K x cores threads."""
    n = check_threads(n)
    if n is not None:
        return n
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(workers)))
