"""``automl search``: dry run, errors, a full tiny search in the store, and kill -9 + --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from automl.config import load_config
from automl.nas.recorder import MemoryRecorder
from automl.nas.search import STATE_FILE, SearchLoop
from automl.store import open_store

TINY_TOML = """
[search]
space = "darts"
steps_per_epoch = "pass"
device = "cpu"
[data]
image_size = 8
n = 40
batch_size = 64
[supernet]
init_channels = 2
layers = 3
nodes = 1
[ddpnas]
pruning_step = 1
[train]
init_channels = 4
layers = 3
"""


@pytest.fixture
def tiny_toml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def test_dry_run_prints_config_and_plan(cli):
    res = cli("search", "--dry-run")
    assert res.code == 0, res.err
    payload = json.loads(res.out)
    assert payload["config"]["search"]["strategy"] == "ddpnas"
    assert payload["config"]["search"]["data"] == "synth:fer"
    # The default: the face space (4 layers: 6, 6, 6 and 7 ops -> 7+6+...+2 = 27 epochs at
    # pruning_step 1), epochs of 40 optimiser steps.
    assert payload["plan"]["space"] == "face"
    assert payload["plan"]["search_epochs"] == payload["plan"]["pruning_step"] * 27
    assert payload["plan"]["steps_per_epoch"] == 40
    assert payload["config"]["search"]["cpu_threads"] == 1
    threads = json.loads(cli("search", "--cpu-threads", "2", "--dry-run").out)
    assert threads["config"]["search"]["cpu_threads"] == 2
    paper = json.loads(cli("search", "--preset", "paper", "--dry-run").out)
    assert paper["plan"]["search_epochs"] == 105 and paper["plan"]["space"] == "darts"
    assert paper["plan"]["steps_per_epoch"] == "pass"  # the authors' epoch: one pass
    au = json.loads(cli("search", "--data", "synth:au", "--strategy", "darts", "--dry-run").out)
    assert au["config"]["search"]["task"] == "au" and au["plan"]["strategy"] == "darts"


def test_bad_inputs_are_one_line_errors(cli, tmp_path: Path, db_url: str):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ddpnas]\npruning_stpe = 2\n")
    res = cli("search", "--config", str(bad), "--dry-run")
    assert res.code == 2 and "unknown key 'ddpnas.pruning_stpe'" in res.err
    res = cli("--db", db_url, "search", "--resume", "999")
    assert res.code == 2 and "unknown run id 999" in res.err
    res = cli("search", "--data", "nope:x", "--dry-run", "--device", "cpu")
    assert res.code == 0  # the plan does not read data...
    res = cli("--db", db_url, "search", "--data", "nope:x", "--device", "cpu", "--json")
    assert res.code == 2 and "unknown data kind" in res.err and "(--data)" in res.err  # ...the search does


def test_search_writes_everything_to_the_store(cli, db_url: str, tiny_toml: Path):
    torch.set_num_threads(1)
    res = cli("--db", db_url, "search", "--config", str(tiny_toml), "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    store = open_store(db_url)
    run = store.get_run(out["run_id"])
    assert run["state"] == "completed" and run["strategy"] == "ddpnas"
    epochs = store.epochs(out["run_id"])
    assert len(epochs) == out["search_epochs"] == 35
    assert len(store.distributions(out["run_id"])) == 7
    final = store.final_architecture(out["run_id"])
    assert final["genotype"] == out["genotype"] and final["params"] > 0
    assert (store.run_dir(out["run_id"]) / STATE_FILE).is_file()
    res = cli("--db", db_url, "search", "--resume", str(out["run_id"]))
    assert res.code == 2 and "already completed" in res.err


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["COLUMNS"] = "200"
    return env


def _default_signals() -> None:
    """Run in the child before exec: SIGINT back to its default disposition.

    A process started in the background (``pytest &``, nohup, many CI runners) inherits SIGINT as
    *ignored*, and Python then never installs its KeyboardInterrupt handler, so the child would
    not notice the Ctrl-C this test sends. With SIG_DFL the child's Python installs it as usual.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until(cmd: list[str], cwd: Path, store, epochs: int, sig: int) -> subprocess.Popen:
    """Start ``cmd``, wait until run 1 has ``epochs`` epochs in the store, then send ``sig``."""
    proc = subprocess.Popen(
        cmd, env=_subprocess_env(), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, preexec_fn=_default_signals,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    sent = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                n = len(store.epochs(1))
            except Exception:  # the run may not exist yet
                n = 0
            if n >= epochs:
                proc.send_signal(sig)
                sent = True
                break
            time.sleep(0.05)
    finally:
        if not sent and proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert sent, f"the search ended before the signal: {proc.stderr.read()!r}"
    return proc


@pytest.mark.slow
def test_kill_9_and_ctrl_c_then_resume_give_the_same_genotype(tmp_path: Path, tiny_toml: Path):
    db_url = f"sqlite:///{tmp_path / 'automl.db'}"
    base = [sys.executable, "-m", "automl", "--db", db_url, "search"]
    store = open_store(db_url)

    _run_until([*base, "--config", str(tiny_toml), "--json"], tmp_path, store, 3, signal.SIGKILL)
    assert store.get_run(1)["state"] == "running"  # nobody marked it: it was killed
    killed_at = len(store.epochs(1))

    # Resume, then interrupt it like Ctrl-C: the run is marked interrupted, exit code 130.
    proc = _run_until([*base, "--resume", "1", "--json"], tmp_path, store, killed_at + 3, signal.SIGINT)
    assert proc.returncode == 130
    assert store.get_run(1)["state"] == "interrupted"

    res = subprocess.run(
        [*base, "--resume", "1", "--json"], env=_subprocess_env(), cwd=tmp_path,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    resumed = json.loads(res.stdout)
    run = store.get_run(1)
    assert run["state"] == "completed" and run["summary"]["resumed"] is True
    assert run["summary"]["epochs_this_process"] < 35
    assert [e["epoch"] for e in store.epochs(1)] == list(range(35))
    assert len(store.distributions(1)) == 7

    torch.set_num_threads(1)
    cfg = load_config("quick", tiny_toml)
    reference = SearchLoop(cfg, MemoryRecorder()).run()
    assert resumed["genotype"] == reference.genotype
