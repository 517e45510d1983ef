"""Process-wide torch / numpy / random state, changed only inside a context that restores it.

A search or a training run sets the default dtype (``search.precision = "float64"``), the torch
thread count (:mod:`automl.threads`), deterministic-algorithm flags and every global RNG seed. A
library caller (a notebook, a test, a service running several jobs) must get its own settings
back afterwards, whether the job finished, failed or was interrupted -- so every entry point runs
its job inside :func:`preserved_process_state`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_process_state() -> Iterator[None]:
    """Snapshot torch's default dtype, threads, determinism flags and the global RNGs; restore on exit."""
    dtype = torch.get_default_dtype()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    py_rng = random.getstate()
    np_rng = np.random.get_state()
    torch_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = cudnn_benchmark
        random.setstate(py_rng)
        np.random.set_state(np_rng)
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
