"""Run an ``automl`` command line as N data-parallel ranks on this machine, under torchrun.

``automl search --nproc N`` hands its own arguments to :func:`run_ranks`: torchrun starts N
processes of the same command (without ``--nproc``, on the same store), each of which joins the
process group from torchrun's environment (:func:`automl.nas.distributed.init_from_env`).
"""

from __future__ import annotations

import subprocess
import sys


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without option ``name`` and its value (``--name VALUE`` or ``--name=VALUE``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def torchrun_command(nproc: int, argv: list[str], db_url: str) -> list[str]:
    """``python -m torch.distributed.run`` (standalone, ``nproc`` ranks) of ``automl --db URL ARGV``,
    ``--nproc`` taken out of ``argv``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "automl", "--db", db_url, *without_option(argv, "--nproc")]  # fmt: skip


def run_ranks(nproc: int, argv: list[str], db_url: str) -> int:
    """Run :func:`torchrun_command` to the end; its exit code."""
    return subprocess.call(torchrun_command(nproc, argv, db_url))
