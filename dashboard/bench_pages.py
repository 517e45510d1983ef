"""How long the dashboard's pages take to load on a big store: the library of ``automl bench dashboard``.

Issue 18's target: a page load on a 3,000-run store with a 600-trial study stays under 2 s warm
on an idle 2-core machine. This module builds such a store in one SQLite file (the runs of
:func:`dashboard.bench_queries.build_store`, a DDPNAS search and its training written through the
real recorder, the study of :func:`dashboard.bench_hpo_page.build_study_store`), then drives
every page through Streamlit's ``AppTest`` exactly as a session would:

- **cold**: a fresh ``AppTest`` (new session state) with ``st.cache_data`` and
  ``st.cache_resource`` cleared just before the timed run, so nothing the pages cache (the
  engine, the study's trials, its figures, the theta overview) survives from an earlier page;
- **warm**: the same ``AppTest`` run again with nothing changed (what a widget click or a live
  refresh costs), ``reruns`` times; the median and the maximum are reported.

A timed run is the whole script run as ``AppTest`` sees it: the entry script, the page, every
query, figure and table serialised to protobuf, plus ``AppTest``'s own parsing of those messages
(a real server sends them over a websocket instead; the browser's drawing is not counted).
Modules are imported once before the first measurement (a running server has them), so a cold
load is a first visit to a running dashboard, not a server start.

Everything returned is plain data (dicts, lists, numbers); the CLI prints it.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import logging
import math
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.progress import ProgressCallback, ProgressEvent, emit

DASHBOARD = Path(__file__).resolve().parent
APP = DASHBOARD / "app.py"
TARGET_S = 2.0
RUNS_PAGE = "views/runs.py"
HPO_PAGE = "views/hpo.py"
PAGE_SIZE = 50  # the Runs page's default rows per page
ENV_KEYS = ("AUTOML_DB", "AUTOML_OPTUNA_STORAGE", "AUTOML_INDEXES")


# -- the store ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchStore:
    """The benchmark's SQLite store and the runs and study the pages open."""

    url: str
    path: Path
    ddpnas_run: int
    train_run: int
    compare_runs: tuple[int, ...]
    study: str
    sizes: dict[str, Any] = field(default_factory=dict)


def build_page_store(
    path: Path, n_runs: int, n_trials: int, *, epochs: int = 30, seed: int = 0
) -> BenchStore:
    """``n_runs`` runs in all (the bulk from ``build_store`` plus a DDPNAS search with its
    distribution snapshots and the training started from it, the two runs the Run page opens)
    and the ``n_trials``-trial study of :func:`dashboard.bench_hpo_page.build_study_store`, in the
    one database at ``path``."""
    from dashboard.bench_hpo_page import BENCH_STUDY, build_study_store
    from dashboard.bench_queries import build_store

    if n_runs < 3:
        raise ValueError(f"n_runs must be at least 3 (two featured runs and one bulk run), not {n_runs}")
    n_bulk = n_runs - 2
    url = build_store(path, n_bulk, epochs, seed=seed)
    ddpnas, train = _seed_featured_runs(url, seed)
    build_study_store(path, n_trials, study=BENCH_STUDY, seed=seed)
    compare = (ddpnas, train, max(1, n_bulk // 2))  # and a bulk run from the middle of the store
    return BenchStore(url=url, path=path, ddpnas_run=ddpnas, train_run=train, compare_runs=compare,
                      study=BENCH_STUDY, sizes=store_sizes(url, path))  # fmt: skip


def _seed_featured_runs(url: str, seed: int) -> tuple[int, int]:
    """A completed paper-setting DDPNAS search on the DARTS space and its 600-epoch training,
    written through :class:`automl.store.recorder.StoreRecorder` like a real search: the Run
    page draws their curves, theta heatmap, pruning curve, sample timeline and genotype graphs."""
    from automl.store import open_store

    store = open_store(url)
    try:
        ddpnas, theta = _seed_ddpnas_search(store, np.random.default_rng(seed))
        train = _seed_training(store, ddpnas, theta, np.random.default_rng(seed + 1))
    finally:
        store.close()
    return ddpnas, train


def _seed_ddpnas_search(store: Any, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """The search: 8 warm-up passes, then DDPNAS (pruning step 3) down to one op per decision,
    one distribution snapshot per update, the final genotype, its skip-capped variants and cost."""
    from automl.nas.distribution import DDPNASDistribution
    from automl.store.recorder import StoreRecorder
    from search_spaces.darts import DartsSpace
    from search_spaces.genotypes import derive_genotype, skip_capped_genotype

    decisions = DartsSpace(nodes=4).decisions()
    dist = DDPNASDistribution(len(decisions), len(decisions[0].candidates), pruning_step=3, seed=0)
    run_id = store.create_run(kind="search", config={"preset": "paper"}, seed=0, space="darts", task="fer",
                              strategy="ddpnas", data="synth:fer")  # fmt: skip
    rec = StoreRecorder(store, run_id)
    warmup = dist.warmup_samples()
    rec.on_start(
        {
            "strategy": "ddpnas",
            "search_epochs": len(warmup) + dist.total_epochs(),
            "warmup_passes": len(warmup),
            "pruning_step": 3,
            "updates": dist.total_updates(),
            "decisions": [d.name for d in decisions],
            "candidates": [list(d.candidates) for d in decisions],
        }
    )
    store.claim_run(run_id)
    quality = rng.normal(size=(len(decisions), len(decisions[0].candidates)))
    epoch = 0
    for sample in warmup:
        rec.on_epoch(epoch, _search_epoch("warmup", 0, sample, 0.2 + 0.004 * epoch, epoch))
        epoch += 1
    update_index = 0
    while not dist.finished:
        sample = dist.sample()
        acc = float(1 / (1 + math.exp(-quality[np.arange(len(sample)), sample].mean() - 0.01 * epoch)))
        rec.on_epoch(
            epoch, {**_search_epoch("search", update_index, sample, acc, epoch), "arch_hash": f"a{epoch}"}
        )
        update = dist.tell(sample, acc)
        if update is not None:
            update_index = update["update"]
            pruned = {"pruned": [None if p is None else int(p) for p in update["pruned"]]}
            rec.on_distribution(update_index, epoch, update["theta"], update["alive"], pruned)
        epoch += 1
    theta = np.asarray(dist.theta)
    variants = {f"skip_cap_{cap}": skip_capped_genotype(theta, nodes=4, cap=cap) for cap in range(2, 7)}
    rec.on_finish(derive_genotype(theta, nodes=4), {
        "strategy": "ddpnas", "theta": theta.tolist(), "variants": variants, "metric_name": "accuracy",
        "cost": {"params": 3.3e6, "mflops": 528.0, "latency_ms": 7.9}, "search_epochs": epoch,
        "wall_time": 1.2 * epoch, "mean_epoch_time": 1.2,
    })  # fmt: skip
    store.set_state(run_id, "completed")
    return run_id, theta


def _search_epoch(phase: str, round_: int, sample: np.ndarray, acc: float, epoch: int) -> dict[str, Any]:
    return {
        "phase": phase,
        "round": round_,
        "sample": [int(s) for s in sample],
        "train_loss": 2.0 - 0.01 * epoch,
        "train_metric": acc + 0.03,
        "val_loss": 2.1 - 0.01 * epoch,
        "val_metric": acc,
        "lr": 0.1,
        "wall_time": 1.2,
    }


def _seed_training(store: Any, parent: int, theta: np.ndarray, rng: np.random.Generator) -> int:
    """The paper's 600-epoch training of the found genotype, completed with its test metrics."""
    from sqlalchemy import insert

    from automl.store.models import Epoch
    from search_spaces.genotypes import derive_genotype

    n_epochs = 600
    run_id = store.create_run(kind="train", config={"train": {"epochs": n_epochs}}, seed=0, space="darts",
                              task="fer", data="synth:fer", parent_run_id=parent)  # fmt: skip
    store.set_state(run_id, "running")
    noise = rng.normal(0, 0.01, size=n_epochs)
    rows = [
        {
            "run_id": run_id,
            "epoch": e,
            "phase": "train",
            "train_loss": 2.0 * 0.995**e,
            "train_metric": 0.9 - 0.7 * 0.99**e,
            "val_loss": 2.1 * 0.996**e,
            "val_metric": 0.85 - 0.65 * 0.99**e + float(noise[e]),
            "lr": 0.025 * 0.5 * (1 + math.cos(math.pi * e / n_epochs)),
            "wall_time": 30.0,
            "extra": {},
        }
        for e in range(n_epochs)
    ]
    with store.engine.begin() as conn:  # 600 epochs in one statement (record_epoch is one transaction each)
        conn.execute(insert(Epoch), rows)
    store.add_architecture(run_id, derive_genotype(theta, nodes=4), params=3.3e6, mflops=528.0, role="final")
    metrics = {"accuracy": 0.8412, "macro_f1": 0.8307, "loss": 0.47}
    best = max(r["val_metric"] for r in rows)
    summary = {"test_metric": metrics["accuracy"], "primary_metric": "accuracy", "test_metrics": metrics}
    store.set_summary(run_id, {**summary, "best_val_metric": best, "wall_time": 30.0 * n_epochs})
    store.set_state(run_id, "completed")
    return run_id


def store_sizes(url: str, path: Path) -> dict[str, Any]:
    """Rows per table the pages read and the file's size: the store the numbers were measured on."""
    from sqlalchemy import create_engine, text

    tables = {"runs": "automl_runs", "epochs": "automl_epochs", "distributions": "automl_distributions",
              "architectures": "automl_architectures", "studies": "studies", "trials": "trials",
              "trial_params": "trial_params", "trial_intermediate_values": "trial_intermediate_values",
              "trial_user_attributes": "trial_user_attributes"}  # fmt: skip
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sizes: dict[str, Any] = {
                name: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608
                for name, table in tables.items()
            }
    finally:
        engine.dispose()
    sizes["file_mb"] = round(path.stat().st_size / 1e6, 1)
    return sizes


# -- the pages ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageCase:
    """One page load: the page, its query parameters, the widgets set before the timed run
    (``(AppTest accessor, key, value)``, e.g. ``("selectbox", "sort", "result")``) and what
    changes in the store before each warm rerun (``between``: :data:`NEW_REPORT` or nothing)."""

    name: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    widgets: tuple[tuple[str, str, Any], ...] = ()
    between: str = ""


NEW_REPORT = "a running trial reports a new intermediate value"


def page_cases(store: BenchStore) -> list[PageCase]:
    """Every page the issue names, on the runs and the study of ``store``."""
    n_runs = int(store.sizes.get("runs") or 0)
    middle = max(1, (math.ceil(n_runs / PAGE_SIZE) + 1) // 2)
    compare = ",".join(map(str, store.compare_runs))
    trials = int(store.sizes.get("trials") or 0)
    return [
        PageCase("Runs: page 1 (default filters)", RUNS_PAGE),
        PageCase(f"Runs: page {middle} (middle)", RUNS_PAGE, widgets=(("number_input", "page", middle),)),
        PageCase("Runs: sorted by result", RUNS_PAGE, widgets=(("selectbox", "sort", "result"),)),
        PageCase("Run: DDPNAS search (theta)", "views/run.py", query=(("run", str(store.ddpnas_run)),)),
        PageCase("Run: completed training", "views/run.py", query=(("run", str(store.train_run)),)),
        PageCase("Compare: 3 runs", "views/compare.py", query=(("runs", compare),)),
        PageCase(f"HPO: {trials}-trial study", HPO_PAGE, query=(("study", store.study),)),
        # With Live on (trials running) the page reruns every few seconds, and each new report
        # changes the study's version, the key of its trial and figure caches.
        PageCase(
            "HPO: live, after a new report",
            HPO_PAGE,
            query=(("study", store.study),),
            between=NEW_REPORT,
        ),  # fmt: skip
    ]


def report_to_running_trial(url: str, study_name: str, step: int) -> None:
    """What a trial worker does between two live refreshes: one more intermediate value (written
    by the benchmark into its own store, through Optuna's storage API; the page only reads)."""
    import optuna
    from optuna.trial import TrialState

    from dashboard.studies import close_storage

    storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        trial = next(t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING)
        storage.set_trial_intermediate_value(trial._trial_id, step, 0.5)
    finally:
        close_storage(storage)


def _before_rerun(case: PageCase, rerun: int) -> None:
    """The change ``case.between`` names; its step is past any a trial reported (a new value)."""
    from dashboard.bench_hpo_page import STEPS

    if case.between == NEW_REPORT:
        report_to_running_trial(os.environ["AUTOML_DB"], dict(case.query)["study"], STEPS + rerun)


def compile_seconds(case: PageCase, repeat: int = 3) -> float:
    """What every ``AppTest`` run pays that a server pays once per page: compiling the entry script
    and the page with Streamlit's "magic" rewrite (``AppTest`` makes a new script cache for every
    run; a server keeps one). Best of ``repeat``; subtract it from a row for a server's figure."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        cache = ScriptCache()
        for script in (APP, DASHBOARD / case.path):
            cache.get_bytecode(str(script))
        best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def dashboard_env(url: str) -> Iterator[None]:
    """The environment ``automl dashboard`` gives the app (``AUTOML_DB``, no other storage or
    index), and a bare ``sys.argv``: :func:`dashboard.settings.load_settings` reads ``--db`` from
    the command line, which would otherwise be the benchmark's own. Restored afterwards; Streamlit
    logs only errors meanwhile (``AppTest`` runs without a server and warns about it every run)."""
    from streamlit import logger as st_logger

    saved_env = {key: os.environ.get(key) for key in ENV_KEYS}
    saved_argv = sys.argv
    saved_level = getattr(st_logger, "_global_log_level", logging.INFO)
    os.environ["AUTOML_DB"] = url
    for key in ENV_KEYS[1:]:
        os.environ.pop(key, None)
    sys.argv = [str(APP)]
    st_logger.set_log_level("error")
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.argv = saved_argv
        st_logger.set_log_level(saved_level)


def clear_caches() -> None:
    """What a cold load starts from: no cached data or resource (engine, trials, figures)."""
    import streamlit as st

    with outside_a_script():
        st.cache_data.clear()
        st.cache_resource.clear()
    gc.collect()


@contextlib.contextmanager
def outside_a_script() -> Iterator[None]:
    """Streamlit warns, on every call made from the benchmark's own thread (a new ``AppTest``,
    clearing a cache), that no script is running; each ``AppTest`` run resets its log level, so
    the warnings are silenced around those calls (untimed, nothing else logs meanwhile)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def land(case: PageCase, timeout: float) -> tuple[Any, list[str]]:
    """A fresh ``AppTest`` one run away from ``case``: on its page with its widgets set, and the
    exceptions met on the way. The Runs page's plain load is the app's first run, so nothing runs
    before it; other pages first run the default page (as a browser does before the user clicks),
    untimed."""
    from streamlit.testing.v1 import AppTest

    with outside_a_script():
        at = AppTest.from_file(str(APP), default_timeout=timeout)
    for key, value in case.query:
        at.query_params[key] = value
    if case.path == RUNS_PAGE and not case.widgets:
        return at, []
    _, errors = timed_run(at)
    if case.path != RUNS_PAGE:
        at.switch_page(case.path)
    for accessor, key, value in case.widgets:
        try:
            getattr(at, accessor)(key=key).set_value(value)
        except KeyError:  # the landing run did not draw the widget (it failed, or the page changed)
            errors.append(f"no {accessor} with key {key!r} to set")
    return at, [f"before the timed run: {e}" for e in errors]


def timed_run(at: Any) -> tuple[float, list[str]]:
    """Seconds of one ``AppTest.run()`` and the exceptions the page showed (none when it loaded)."""
    gc.collect()  # a collection left over from the last run is not this run's cost
    start = time.perf_counter()
    try:
        at.run()
    except RuntimeError as exc:  # AppTest's timeout
        return time.perf_counter() - start, [str(exc)]
    return time.perf_counter() - start, [str(e.value) for e in at.exception]


def drawn(at: Any) -> dict[str, Any]:
    """What the page showed, so a report shows that the timed page is the full page."""
    return {
        "title": at.title[0].value if len(at.title) else None,
        "plotly_charts": len(at.get("plotly_chart")),
        "dataframes": len(at.dataframe),
        "graphviz_charts": len(at.get("graphviz_chart")),
        "metrics": len(at.metric),
    }


def time_case(
    case: PageCase, *, reruns: int, cold_runs: int, timeout: float, target_s: float
) -> dict[str, Any]:
    """One page's cold loads (a new session on cleared caches each) and ``reruns`` warm reruns of
    the last cold session, with the median and maximum of the warm ones against ``target_s``."""
    cold, errors, at = [], [], None
    for _ in range(cold_runs):
        at, landing = land(case, timeout)
        errors += landing
        clear_caches()
        seconds, errs = timed_run(at)
        cold.append(seconds)
        errors += errs
    warm = []
    for i in range(reruns):
        _before_rerun(case, i)
        seconds, errs = timed_run(at)
        warm.append(seconds)
        errors += errs
    median = statistics.median(warm) if warm else math.nan
    return {
        **asdict(case),
        "cold_s": statistics.median(cold),
        "cold_runs_s": cold,
        "warm_median_s": median,
        "warm_max_s": max(warm) if warm else math.nan,
        "warm_runs_s": warm,
        "ratio": median / target_s,
        "passed": not errors and median <= target_s,
        "errors": sorted(set(errors)),
        "drawn": drawn(at),
        "compile_s": compile_seconds(case),
    }


# -- a profile of one warm rerun ------------------------------------------------------------------
@contextlib.contextmanager
def profiled_script_thread(profiler: cProfile.Profile) -> Iterator[None]:
    """``AppTest`` runs the script in a thread of its own, which a profiler enabled in this one
    never sees: enable ``profiler`` inside that thread for the runs made meanwhile."""
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    original = LocalScriptRunner._run_script_thread

    def run_profiled(self: Any) -> None:
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    LocalScriptRunner._run_script_thread = run_profiled  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalScriptRunner._run_script_thread = original  # type: ignore[method-assign]


def profile_case(case: PageCase, *, timeout: float, top: int = 8) -> dict[str, Any]:
    """The dashboard's own functions (queries, figures, panels) by cumulative seconds in one warm
    rerun of ``case``, and the functions anywhere with the most time of their own: which query or
    figure dominates the load."""
    at, _ = land(case, timeout)
    timed_run(at)  # the cold run, untimed: the profile is of a warm rerun
    _before_rerun(case, 1000)  # a step no timed rerun used
    profiler = cProfile.Profile()
    with profiled_script_thread(profiler):
        seconds, _ = timed_run(at)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [(_where(func), cc, nc, tt, ct) for func, (cc, nc, tt, ct, _) in stats.items()]
    ours = [r for r in rows if r[0].startswith("dashboard/") and "<module>" not in r[0]]
    return {
        "page": case.name,
        "rerun_s": seconds,
        "dashboard_cumulative": [_profile_row(r) for r in sorted(ours, key=lambda r: -r[4])[:top]],
        "own_time": [_profile_row(r) for r in sorted(rows, key=lambda r: -r[3])[:top]],
    }


def _where(func: tuple[str, int, str]) -> str:
    """``dashboard/queries.py:138(list_runs)``; a library's path from its package on
    (``sqlalchemy/...``, ``python3.11/json/...``)."""
    filename, line, name = func
    path = filename.replace(os.sep, "/")
    root = str(DASHBOARD.parent).replace(os.sep, "/") + "/"
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(root):
        path = path[len(root) :]
    elif "/lib/python" in path:
        path = "python" + path.split("/lib/python", 1)[1]
    return f"{path}:{line}({name})" if line else name


def _profile_row(row: tuple[str, int, int, float, float]) -> dict[str, Any]:
    where, _, calls, own, cumulative = row
    return {"function": where, "calls": calls, "own_s": round(own, 4), "cumulative_s": round(cumulative, 4)}


# -- the benchmark --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """Cores, CPU model, versions and the load average (other jobs on a shared machine slow every
    page alike: compare the rows of one report, and read its absolute times against this)."""
    import optuna
    import sqlalchemy
    import streamlit

    from automl.machine import cpu_facts

    return {
        **cpu_facts(),
        "streamlit": streamlit.__version__,
        "optuna": optuna.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average": _load_average(),
    }


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def prime_imports(cases: Sequence[PageCase], timeout: float) -> float:
    """One untimed visit of each page: imports pandas, plotly, optuna... once, as a running
    server already has them. Returns its seconds (reported, not counted as a page's load)."""
    start = time.perf_counter()
    for case in cases:
        at, _ = land(case, timeout)
        timed_run(at)
    return time.perf_counter() - start


def page_bench(
    n_runs: int = 3000,
    n_trials: int = 600,
    *,
    epochs: int = 30,
    reruns: int = 5,
    cold_runs: int = 1,
    target_s: float = TARGET_S,
    timeout: float = 300.0,
    profile: bool = False,
    work_dir: Path | None = None,
    seed: int = 0,
    select: Callable[[PageCase], bool] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build the store (in ``work_dir``, else a temporary directory removed afterwards), then time
    every page (or those ``select`` keeps); the report holds one row per page, the machine before
    and after, the store's sizes and, with ``profile``, one warm rerun's profile per page."""
    if reruns < 1 or cold_runs < 1:
        raise ValueError("reruns and cold_runs must be at least 1")
    with _work_dir(work_dir) as folder:
        emit(
            progress,
            ProgressEvent("bench dashboard", 0, None, f"building {n_runs:,} runs, {n_trials} trials"),
        )
        start = time.perf_counter()
        store = build_page_store(_new_file(folder / "bench.db"), n_runs, n_trials, epochs=epochs, seed=seed)
        build_s = time.perf_counter() - start
        cases = [c for c in page_cases(store) if select is None or select(c)]
        before = machine()
        with dashboard_env(store.url):
            prime_s = prime_imports(cases, timeout)
            rows, profiles = [], []
            for i, case in enumerate(cases):
                emit(progress, ProgressEvent("bench dashboard", i, len(cases), case.name))
                rows.append(
                    time_case(case, reruns=reruns, cold_runs=cold_runs, timeout=timeout, target_s=target_s)
                )
                if profile:
                    profiles.append(profile_case(case, timeout=timeout))
            check = hpo_page_check(store, reruns, timeout) if any(c.path == HPO_PAGE for c in cases) else None
            emit(progress, ProgressEvent("bench dashboard", len(cases), len(cases), "done"))
            clear_caches()  # the engines cached meanwhile hold the file open
    return {
        "benchmark": "dashboard-pages",
        "target_s": target_s,
        "reruns": reruns,
        "cold_runs": cold_runs,
        "store": {
            "runs": n_runs,
            "epochs_per_bulk_run": epochs,
            "trials": n_trials,
            "study": store.study,
            "ddpnas_run": store.ddpnas_run,
            "train_run": store.train_run,
            "compare_runs": list(store.compare_runs),
            **store.sizes,
        },  # fmt: skip
        "build_s": round(build_s, 2),
        "prime_s": round(prime_s, 2),
        "machine": {**before, "load_average_after": _load_average()},
        "rows": rows,
        "profiles": profiles,
        "hpo_page_check": check,
        "all_passed": all(r["passed"] for r in rows),
    }


def hpo_page_check(store: BenchStore, reruns: int, timeout: float) -> dict[str, Any]:
    """The HPO page timed a second way on the same store, by
    :func:`dashboard.bench_hpo_page.time_hpo_page` (its own ``AppTest``, deep link and cache
    clearing): the two methods should agree with this module's HPO row."""
    from dashboard.bench_hpo_page import time_hpo_page

    try:
        with outside_a_script():
            times = time_hpo_page(store.url, store.study, reruns, timeout_s=timeout)
    except RuntimeError as exc:  # the page raised, or AppTest timed out
        return {"error": str(exc)}
    return {"cold_s": times.cold_s, "warm_median_s": times.warm_s, "warm_runs_s": list(times.warm_runs_s)}


def _new_file(path: Path) -> Path:
    """``path``, refused when it exists: the store is built from empty, with fixed run ids."""
    from automl.errors import UserError

    if path.exists():
        raise UserError(
            f"{path} already exists (a kept benchmark store): remove it or pick another --work-dir"
        )
    return path


@contextlib.contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        yield Path(work_dir)
        return
    with tempfile.TemporaryDirectory(prefix="automl-bench-dashboard-") as tmp:
        yield Path(tmp)


# -- tables ---------------------------------------------------------------------------------------
def page_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """One row per page as ``(title, columns, rows)`` of text: cold and warm seconds, the warm
    median over the target and whether the page met it (``ERROR`` when it raised)."""
    target = report["target_s"]
    store = report["store"]
    cells = []
    for r in report["rows"]:
        verdict = "ERROR" if r["errors"] else ("pass" if r["passed"] else "FAIL")
        cells.append([r["name"], _secs(r["cold_s"]), _secs(r["warm_median_s"]), _secs(r["warm_max_s"]),
                      f"{r['ratio']:.2f}", verdict])  # fmt: skip
    columns = ["page", "cold s", "warm median s", "warm max s", f"warm / {target:g} s", "target"]
    title = (f"Dashboard page loads: {store['runs']:,} runs, {store['trials']}-trial study "
             f"(warm = median of {report['reruns']} reruns)")  # fmt: skip
    return title, columns, cells


def _secs(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


def profile_lines(report: dict[str, Any], top: int = 3) -> list[str]:
    """The dashboard functions that dominate each page's warm rerun, one line per page."""
    lines = []
    for p in report.get("profiles") or []:
        hot = ", ".join(f"{h['function']} {h['cumulative_s']:.2f} s" for h in p["dashboard_cumulative"][:top])
        lines.append(f"{p['page']} ({p['rerun_s']:.2f} s profiled): {hot or '-'}")
    return lines


def target_lines(report: dict[str, Any]) -> list[str]:
    """``target <page>: met`` / ``NOT met`` per page, and the load average the numbers came with."""
    target = report["target_s"]
    lines = [
        f"target {r['name']} warm < {target:g} s: {'met' if r['passed'] else 'NOT met'}"
        for r in report["rows"]
    ]
    check = report.get("hpo_page_check")
    if check and "error" in check:
        lines.append(f"HPO page by dashboard.bench_hpo_page.time_hpo_page: {check['error']}")
    elif check:
        lines.append(f"HPO page by dashboard.bench_hpo_page.time_hpo_page (a second method): "
                     f"cold {check['cold_s']:.2f} s, warm median {check['warm_median_s']:.2f} s")  # fmt: skip
    before, after = report["machine"].get("load_average"), report["machine"].get("load_average_after")
    if before and after:
        lines.append(f"load average (1 min) {before[0]:.2f} before, {after[0]:.2f} after, "
                     f"on {report['machine']['nproc']} cores")  # fmt: skip
    return lines


def names_matching(
    patterns: Sequence[str], n_runs: int = 3000, n_trials: int = 600
) -> Callable[[PageCase], bool] | None:
    """A ``select`` keeping the pages whose name contains one of ``patterns`` (any case); None
    keeps all. A pattern that names no page is refused now, before minutes of store building."""
    from automl.errors import UserError

    wanted = [p.strip().lower() for p in patterns if p.strip()]
    if not wanted:
        return None
    names = [c.name.lower() for c in page_cases(_named_only(n_runs, n_trials))]
    unknown = [p for p in wanted if not any(p in name for name in names)]
    if unknown:
        raise UserError(f"--pages: no page named like {', '.join(map(repr, unknown))}; "
                        "the pages are runs, run, compare and hpo")  # fmt: skip
    return lambda case: any(p in case.name.lower() for p in wanted)


def _named_only(n_runs: int, n_trials: int) -> BenchStore:
    """A store that exists only to name the pages (:func:`page_cases` reads its sizes)."""
    return BenchStore(url="", path=Path(), ddpnas_run=0, train_run=0, compare_runs=(0, 0, 0), study="",
                      sizes={"runs": n_runs, "trials": n_trials})  # fmt: skip
