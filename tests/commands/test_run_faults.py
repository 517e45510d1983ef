"""Fault tests through the real CLI: a scheduler's SIGTERM stops a search like Ctrl-C does
(state interrupted, exit 128 + signal, the run id and store in the message), the run resumes to
the end, and its wall time counts both segments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl.store import open_store
from tests.commands.test_search_cli import TINY_TOML


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def test_a_sigtermed_search_is_interrupted_then_resumes(tmp_path: Path) -> None:
    sig = signal.SIGTERM  # SIGHUP takes the same path (tests/store/test_lifecycle.py covers it)
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    db_url = f"sqlite:///{tmp_path / 'automl.db'}"
    base = [sys.executable, "-m", "automl", "--db", db_url, "search"]
    proc = subprocess.Popen([*base, "--config", "tiny.toml", "--json"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = open_store(db_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(store.epochs(1)) >= 2:
                break
        except Exception:  # the run row may not exist yet
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before the signal"
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + sig
    name = signal.Signals(sig).name
    run = store.get_run(1)
    assert run["state"] == "interrupted" and run["error"] == f"interrupted by {name}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == (f"search run 1 interrupted ({name}); it is marked interrupted; continue it "
                         f"with: automl --db {db_url} search --resume 1")
    assert "Traceback" not in err

    res = subprocess.run([*base, "--resume", "1", "--json"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = store.get_run(1)
    assert run["state"] == "completed" and run["summary"]["resumed"] is True
    segments = run["summary"]["segments"]
    assert [s["ended"] for s in segments] == ["interrupted", "completed"]
    assert json.loads(res.stdout)["wall_time"] == pytest.approx(sum(s["seconds"] for s in segments), abs=1e-3)
    assert [e["epoch"] for e in store.epochs(1)] == list(range(35))
