"""Facts about this machine that every benchmark report records beside its figures."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def cpu_facts() -> dict[str, Any]:
    """Usable cores, the CPU model (from /proc/cpuinfo where there is one), platform, Python."""
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
