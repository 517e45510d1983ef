"""Trial workers sharing one study: exact budgets, no duplicates, and re-runs of killed workers' trials.

The objectives here are cheap on purpose: what is under test is the storage and the worker loop
(real worker processes, a real SQLite file, a real journal file, a real PostgreSQL server).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from automl.errors import UserError
from automl.hpo_workers import (
    StudySpec,
    count_budget,
    load_worker_study,
    open_storage,
    run_local_workers,
    run_worker,
    storage_kind,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


class QuickObjective:
    """A quadratic with a little sleep; with ``rendezvous`` every worker waits for the others once,
    so that all of them really take part (process start-up times differ by seconds)."""

    def __init__(self, sleep_s: float = 0.02, rendezvous: str | None = None, workers: int = 2) -> None:
        self.sleep_s = sleep_s
        self.rendezvous = rendezvous
        self.workers = workers
        self._met = False

    def _meet(self) -> None:
        assert self.rendezvous is not None
        Path(self.rendezvous, f"ready-{os.getpid()}").touch()
        deadline = time.time() + 60
        while len(list(Path(self.rendezvous).glob("ready-*"))) < self.workers and time.time() < deadline:
            time.sleep(0.05)
        self._met = True

    def __call__(self, trial: optuna.Trial) -> float:
        if self.rendezvous and not self._met:
            self._meet()
        x = trial.suggest_float("x", -5.0, 5.0)
        time.sleep(self.sleep_s)
        return (x - 1.0) ** 2


class HangOnce:
    """Trial ``victim`` hangs (first attempt only) after writing its pid, so the test can kill it."""

    def __init__(self, marker_dir: str, victim: int = 1) -> None:
        self.marker_dir = marker_dir
        self.victim = victim

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        if trial.number == self.victim:
            Path(self.marker_dir, "victim.pid").write_text(str(os.getpid()))
            time.sleep(120)
        time.sleep(0.05)
        return x * x


def _new_study(url: str, name: str = "s", **storage_kw) -> None:
    optuna.create_study(study_name=name, storage=open_storage(url, **storage_kw))


def _assert_exact(url: str, n: int, name: str = "s") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), "duplicate trial numbers"
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], "trial left behind"
    return trials


# ----------------------------------------------------------------------------------- unit parts


def test_storage_kind_and_bad_urls(tmp_path: Path) -> None:
    assert storage_kind("journal:/tmp/x.log") == "journal"
    assert storage_kind("sqlite:///x.db") == "sqlite"
    assert storage_kind("postgresql://u@h/db") == "postgresql"
    with pytest.raises(UserError, match="invalid storage URL"):
        storage_kind("not a url")
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"journal:{tmp_path / 'missing' / 'x.log'}")
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


def test_count_budget_excludes_waiting_and_retried_failures() -> None:
    dist = {"x": FloatDistribution(0, 1)}

    def make(state: TrialState, number: int, **system) -> optuna.trial.FrozenTrial:
        t = create_trial(
            state=state,
            params={"x": 0.5},
            distributions=dist,
            value=1.0 if state.is_finished() and state != TrialState.FAIL else None,
            system_attrs=system,
        )
        t.number = number
        return t

    trials = [
        make(TrialState.COMPLETE, 0),
        make(TrialState.FAIL, 1),  # its worker died; retried as trial 3
        make(TrialState.PRUNED, 2),
        make(TrialState.RUNNING, 3, failed_trial=1, retry_history=[1]),
        make(TrialState.WAITING, 4),  # queued, not yet taken
        make(TrialState.FAIL, 5),  # a genuine failure: counts
    ]
    count = count_budget(trials)
    assert (count.taken, count.running, count.waiting, count.retried) == (4, 1, 1, 1)


def test_single_worker_stops_at_the_study_budget(db_url: str) -> None:
    _new_study(db_url)
    spec = StudySpec(storage_url=db_url, study_name="s", n_trials=5, sampler="random", pruner="none")
    report = run_worker(spec, QuickObjective(0.0))
    assert report.trials == [0, 1, 2, 3, 4]
    # The budget is the study's: a second session with the same N has nothing left to do.
    assert run_worker(spec, QuickObjective(0.0)).trials == []
    assert len(_assert_exact(db_url, 5)) == 5


def test_failing_trial_is_recorded_and_the_study_goes_on(db_url: str) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise RuntimeError("boom")
        return x

    _new_study(db_url)
    spec = StudySpec(storage_url=db_url, study_name="s", n_trials=3, sampler="random", pruner="none")
    run_worker(spec, objective)
    trials = _assert_exact(db_url, 3)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "boom" in trials[1].user_attrs["error"]


def test_pruned_trials_count_and_intermediate_values_are_kept(db_url: str) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(4):
            # trials after the first three are worse at every step: the median pruner stops them
            trial.report(x if trial.number < 3 else -1.0 - step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x

    optuna.create_study(study_name="s", storage=open_storage(db_url), direction="maximize")
    spec = StudySpec(storage_url=db_url, study_name="s", n_trials=6, sampler="random", pruner="median")
    run_worker(spec, objective, study=load_worker_study(spec))
    trials = _assert_exact(db_url, 6)
    states = [t.state for t in trials]
    assert states[:3] == [TrialState.COMPLETE] * 3
    assert states[3:] == [TrialState.PRUNED] * 3
    assert all(len(t.intermediate_values) == 2 for t in trials[3:])  # pruned after warm-up step 1


# --------------------------------------------------------------------------- parallel processes


def test_two_workers_on_a_journal_file_complete_exactly_n_trials(tmp_path: Path) -> None:
    """The journal file (no database at all); the RDB back ends are run by the ``automl hpo`` tests."""
    url = f"journal:{tmp_path / 'study.journal'}"
    _new_study(url)
    spec = StudySpec(
        storage_url=url, study_name="s", n_trials=12, sampler="random", pruner="none", poll_interval=0.3
    )
    result = run_local_workers(spec, QuickObjective(rendezvous=str(tmp_path)), 2)
    assert result.exit_codes == [0, 0]
    trials = _assert_exact(url, 12)
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    workers = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(workers) == 2, "both workers ran trials"


def _kill_victim_when_started(marker: Path, killed: list[int]):  # noqa: ANN202
    def on_poll(_counts, _budget) -> None:  # noqa: ANN001
        pid_file = marker / "victim.pid"
        if not killed and pid_file.exists() and pid_file.read_text():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    return on_poll


@pytest.mark.parametrize(
    "detector",
    ["local-pid", pytest.param("heartbeat", marks=pytest.mark.postgres)],
)
def test_sigkilled_worker_trial_is_failed_and_rerun(
    detector: str, db_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A worker killed with -9 mid-trial: its trial becomes FAIL and another worker re-runs it.

    ``local-pid`` (SQLite) finds the dead process on this host at once; ``heartbeat`` (PostgreSQL,
    pid check off) is what workers on several machines rely on: the dead worker's heartbeat goes
    stale after the grace period.
    """
    heartbeat = detector == "heartbeat"
    url = request.getfixturevalue("postgres_url") if heartbeat else db_url
    _new_study(url, heartbeat_interval=1, grace_period=2)
    spec = StudySpec(
        storage_url=url,
        study_name="s",
        n_trials=6,
        sampler="random",
        pruner="none",
        heartbeat_interval=1,
        grace_period=2,
        poll_interval=0.3,
        reap_local=not heartbeat,
    )
    killed: list[int] = []
    result = run_local_workers(
        spec,
        HangOnce(str(tmp_path)),
        2,
        on_poll=_kill_victim_when_started(tmp_path, killed),
        poll_interval=0.3,
    )
    assert killed, "the victim trial never started"
    assert sorted(result.exit_codes) == [-signal.SIGKILL, 0]
    trials = _assert_exact(url, 6)
    victim = trials[1]
    assert victim.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE and retry.params == victim.params
    assert retry.user_attrs["worker"]["pid"] != killed[0], "re-run by another worker"
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert len(trials) == 7  # six in the budget plus the failed attempt
