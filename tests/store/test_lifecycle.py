"""The one run lifecycle (automl.store.lifecycle) and liveness (automl.store.liveness).

In-process cases cover every way out of ``with store.run(...)``; the fault cases use real child
processes and real signals (SIGTERM, SIGHUP, SIGINT while inherited as ignored, SIGKILL), and two
processes racing to resume one run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import optuna
import pytest

from automl.errors import UserError
from automl.store import open_store
from automl.store.lifecycle import LiveRunError, RunInterrupted, RunPruned
from automl.store.liveness import DEAD, LIVE, STALE, run_liveness, shown_state
from automl.store.models import utcnow


def test_every_way_out_of_a_run_is_recorded(db_url: str) -> None:
    store = open_store(db_url)
    with store.run(kind="train", config={"a": 1}, seed=3) as run:
        run.set_summary({"metric": 0.5})
    row = store.get_run(run.id)
    assert row["state"] == "completed" and row["error"] is None and row["seed"] == 3
    assert row["summary"]["metric"] == 0.5 and len(row["summary"]["segments"]) == 1
    assert run.state == "completed" and row["finished_at"] is not None

    cases = [
        (UserError("the data has  no faces"), "failed", "the data has no faces"),
        (ValueError("bad\nshape"), "failed", "ValueError: bad shape"),
        (KeyboardInterrupt(), "interrupted", "interrupted by the user (Ctrl-C)"),
        (RunInterrupted(signal.SIGTERM), "interrupted", "interrupted by SIGTERM"),
        (RunPruned("trial 3 pruned at epoch 2"), "pruned", "RunPruned: trial 3 pruned at epoch 2"),
        (optuna.TrialPruned("pruned"), "pruned", "TrialPruned: pruned"),
    ]
    for exc, state, error in cases:
        with pytest.raises(type(exc)), store.run(kind="train") as run:
            raise exc
        row = store.get_run(run.id)
        assert (row["state"], row["error"]) == (state, error), type(exc).__name__


def test_a_password_in_an_error_is_never_stored(db_url: str) -> None:
    store = open_store(db_url)
    with pytest.raises(RuntimeError), store.run(kind="hpo") as run:
        raise RuntimeError("cannot reach postgresql://alice:s3cret@db.example/automl")
    assert "s3cret" not in store.get_run(run.id)["error"]


def test_resume_counts_every_segment_and_refuses_finished_or_foreign_runs(db_url: str) -> None:
    store = open_store(db_url)
    with pytest.raises(KeyboardInterrupt), store.run(kind="search") as run:
        time.sleep(0.05)
        raise KeyboardInterrupt
    with store.run(kind="search", resume=run.id) as again:
        time.sleep(0.05)
    assert again.id == run.id and again.resumed
    summary = store.get_run(run.id)["summary"]
    assert [s["ended"] for s in summary["segments"]] == ["interrupted", "completed"]
    assert summary["wall_time"] == pytest.approx(sum(s["seconds"] for s in summary["segments"]))
    assert summary["wall_time"] >= 0.1
    with pytest.raises(UserError, match="already completed"), store.run(kind="search", resume=run.id):
        pass
    other = store.create_run(kind="train")
    with pytest.raises(UserError, match="not a search run"), store.run(kind="search", resume=other):
        pass


def test_heartbeat_is_written_while_the_run_lives(db_url: str) -> None:
    store = open_store(db_url)
    with store.run(kind="search", heartbeat_interval_s=0.05) as run:
        first = store.get_run(run.id)["heartbeat_at"]
        time.sleep(0.4)
        later = store.get_run(run.id)["heartbeat_at"]
        assert later > first
        assert run_liveness(store.get_run(run.id)) == LIVE


def test_liveness_of_rows() -> None:
    now = utcnow()
    me = {"state": "running", "host": "here", "pid": os.getpid(), "heartbeat_at": now}
    assert run_liveness(me, now=now, this_host="here") == LIVE
    old = {**me, "heartbeat_at": now - timedelta(minutes=5)}
    assert run_liveness(old, now=now, this_host="here") == STALE
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = {**me, "pid": gone.pid}
    assert run_liveness(dead, now=now, this_host="here") == DEAD
    elsewhere = {**dead, "host": "another-machine"}  # its pid means nothing here: judge the heartbeat
    assert run_liveness(elsewhere, now=now, this_host="here") == LIVE
    assert run_liveness({**me, "state": "completed"}, now=now) is None
    assert shown_state({**old, "host": "x"}, now=now) == "running (stale)"


CHILD = textwrap.dedent(
    """
    import sys, time
    from automl.store import open_store
    store = open_store(sys.argv[1])
    resume = int(sys.argv[2]) if len(sys.argv) > 2 else None
    try:
        with store.run(kind="search", resume=resume, heartbeat_interval_s=0.2) as run:
            print(run.id, flush=True)
            time.sleep(60)
    except KeyboardInterrupt as exc:
        sys.exit(128 + getattr(exc, "signum", 2))
    """
)


def _child(db_url: str, *args: str, ignore_sigint: bool = False) -> tuple[subprocess.Popen, int]:
    def ignore() -> None:  # what a non-interactive shell does to `cmd &`
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore if ignore_sigint else None,
    )
    line = proc.stdout.readline()
    assert line.strip(), proc.stderr.read()
    return proc, int(line)


@pytest.mark.parametrize(
    ("sig", "ignore_sigint", "expected"),
    [
        (signal.SIGTERM, False, "interrupted by SIGTERM"),
        (signal.SIGHUP, False, "interrupted by SIGHUP"),
        (signal.SIGINT, True, "interrupted by the user (Ctrl-C)"),
    ],
    ids=["sigterm", "sighup", "sigint-inherited-as-ignored"],
)
def test_signals_mark_the_run_interrupted(db_url: str, sig: int, ignore_sigint: bool, expected: str) -> None:
    proc, run_id = _child(db_url, ignore_sigint=ignore_sigint)
    store = open_store(db_url)
    assert store.get_run(run_id)["state"] == "running"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig
    row = store.get_run(run_id)
    assert (row["state"], row["error"]) == ("interrupted", expected)
    assert row["summary"]["segments"][0]["ended"] == "interrupted"


def test_a_live_run_cannot_be_resumed_and_a_killed_one_can(db_url: str) -> None:
    owner, run_id = _child(db_url)
    store = open_store(db_url)
    try:
        with pytest.raises(LiveRunError, match=f"pid {owner.pid}"), store.run(kind="search", resume=run_id):
            pass
    finally:
        owner.kill()  # SIGKILL: nobody marks the run
        owner.wait(timeout=30)
    row = store.get_run(run_id)
    assert row["state"] == "running" and run_liveness(row) == DEAD
    assert shown_state(row) == "running (dead)"
    with store.run(kind="search", resume=run_id) as run:
        assert store.get_run(run.id)["pid"] == os.getpid()
    assert store.get_run(run_id)["state"] == "completed"


def test_two_processes_resuming_one_run_cannot_both_win(db_url: str) -> None:
    store = open_store(db_url)
    with pytest.raises(KeyboardInterrupt), store.run(kind="search") as run:
        raise KeyboardInterrupt
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, db_url, str(run.id)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and all(p.poll() is None for p in racers):
            time.sleep(0.1)
        losers = [p for p in racers if p.poll() is not None]
        assert len(losers) == 1, "exactly one resumer must be refused"
        assert "still running" in losers[0].stderr.read()
        assert losers[0].returncode != 0
    finally:
        for p in racers:
            p.kill()
            p.wait(timeout=30)


def test_two_stores_in_one_folder_never_share_run_folders(tmp_path: Path) -> None:
    a = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    b = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    run_a, run_b = a.create_run(kind="search"), b.create_run(kind="search")
    assert run_a == run_b == 1
    assert a.run_dir(run_a) != b.run_dir(run_b)
    assert a.store_id != b.store_id
    assert a.run_dir(run_a).parent.parent == b.run_dir(run_b).parent.parent == tmp_path / "runs"
