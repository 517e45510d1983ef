"""Hyper-parameter tuning as a job: the target, the configuration, the ``hpo`` run, the result.

:func:`tune_job` is what ``automl hpo`` calls, and what a notebook or a service calls: it reads
the target (a search run's final architecture, a genotype file or a genotype dict), layers the
configuration (the search run's stored config or a preset, a TOML file, the keyword arguments),
checks the genotype and the data before anything is written, opens the ``hpo`` run through
:mod:`automl.store.lifecycle` (states, heartbeat, SIGTERM/SIGHUP; every trial is a ``train`` run
inside it), runs the study (:func:`automl.hpo.run_study`) and returns a :class:`TuneResult`.

The study is named after its target unless ``study_name`` says otherwise, so running the same
tuning again (here or on another machine sharing a PostgreSQL storage) joins the same study.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.progress import ProgressCallback

if TYPE_CHECKING:
    from automl.config import Config
    from automl.store import Store

Target = int | str | Path | dict[str, Any]


@dataclass
class TuneResult:
    """What a study session found: ``summary`` is what is stored with the ``hpo`` run."""

    run_id: int
    study: str
    storage: str  # the Optuna storage URL, password hidden
    objectives: tuple[str, ...]
    summary: dict[str, Any]

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's hyper-parameters (one objective; None with several or no trial done)."""
        return self.summary.get("best_params")

    @property
    def best_value(self) -> float | None:
        return self.summary.get("best_value")

    @property
    def pareto_front(self) -> list[dict[str, Any]] | None:
        """The non-dominated trials (several objectives)."""
        return self.summary.get("pareto_front")

    @property
    def signal(self) -> dict[str, Any] | None:
        """The learning checks' verdict on the chosen trial(s) (:func:`automl.hpo.study_signal`)."""
        return self.summary.get("signal")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.summary)


@dataclass
class _Resolved:
    genotype: dict[str, Any]
    search_run_id: int | None
    stored_config: dict[str, Any] | None
    allow_user_code: str | None


def default_study_name(source: str, data: str, objectives: Sequence[str]) -> str:
    """Deterministic, so re-running the same tuning resumes the same study."""
    data_tag = re.sub(r"[^A-Za-z0-9]+", "_", data).strip("_")[:40]
    return f"hpo-{source}-{data_tag}-{'-'.join(objectives)}"


def _resolve_target(store: Store, target: Target, space: str | None) -> _Resolved:
    """The genotype, its search run (if any) and that run's config; the user-code guard applied."""
    from automl.genotype_source import guard_genotype_space, resolve_target

    if not isinstance(target, dict | int | str | Path) or isinstance(target, bool):
        raise UserError(
            f"target must be a run id, a genotype file or a genotype dict, not {type(target).__name__}"
        )
    genotype, run_id, stored = resolve_target(store, target)
    allow = guard_genotype_space(genotype, space, stored)
    return _Resolved(genotype, run_id, stored, allow)


def tune_config(
    stored: dict[str, Any] | None = None,
    *,
    config: Config | None = None,
    preset: str | None = None,
    **options: Any,
) -> Config:
    """``config`` (else the search run's ``stored`` config, else the ``quick`` preset; an explicit
    ``preset`` replaces either), then the TOML ``config_file``, then the other options
    (:func:`automl.train_job.train_config`'s: a trial trains as ``automl train`` does)."""
    from automl.train_job import train_config

    if config is not None and preset is not None:
        raise UserError("pass a config or a preset, not both")
    return train_config(base=config if config is not None else stored, preset=preset, **options)


def check_target(genotype: dict[str, Any], cfg: Config, allow_user_code: str | None = None) -> None:
    """Fail fast (a :class:`UserError`) on a genotype its space rejects or bad data, before any run."""
    from automl.data.spec import parse_spec
    from automl.training import resolve_device
    from search_spaces import UserCodeRefusedError, create_space
    from search_spaces.registry import SpaceUnavailableError

    try:
        create_space(genotype["space"], allow_user_code=allow_user_code).validate_genotype(genotype)
    except (UserCodeRefusedError, SpaceUnavailableError) as exc:
        raise UserError(str(exc), argument=getattr(exc, "argument", None)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"the genotype is not valid for its space: {exc}") from None
    try:
        parse_spec(cfg.search.data)
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(f"bad data spec '{cfg.search.data}': {exc}", argument="data") from None
    resolve_device(cfg.search.device)  # cuda without a GPU: refused here, not by every trial in turn


def architecture_id(store: Store, run_id: int | None, g_hash: str) -> int | None:
    """The id of ``run_id``'s architecture row with genotype hash ``g_hash`` (the latest), if any."""
    if run_id is None:
        return None
    for arch in reversed(store.list_architectures(run_id)):
        if arch["genotype_hash"] == g_hash:
            return int(arch["id"])
    return None


def tune_job(
    target: Target,
    store: Store | str,
    *,
    config: Config | None = None,
    preset: str | None = None,
    config_file: str | Path | None = None,
    data: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    epochs: int | None = None,
    cpu_threads: int | None = None,
    space: str | None = None,
    trials: int = 20,
    workers: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    objectives: str | Sequence[str] = ("accuracy",),
    sampler: Any = "tpe",
    pruner: Any = "median",
    enqueue: Sequence[dict[str, Any]] | str | Path | None = None,
    heartbeat: int | None = None,
    progress: ProgressCallback | None = None,
) -> TuneResult:
    """Tune the final training of ``target`` (a search run id, a genotype file or dict) in ``store``.

    The configuration: see :func:`tune_config` (``data`` ... ``space`` are its arguments).
    ``trials`` is the study's total budget, shared by every process working on it; ``workers``
    processes run on this machine. ``storage``: the Optuna storage URL (default: the store's own
    database; ``journal:PATH`` for a journal file). ``sampler`` / ``pruner``: a name of
    :mod:`automl.hpo_registry` or an Optuna object. ``enqueue``: known configurations to try
    first (a list of dicts over :data:`automl.hpo.HP_NAMES`, or a JSON file of them).
    ``heartbeat``: RDB heartbeat seconds (0: off). Raises :class:`~automl.errors.UserError` for
    bad input before any run is created, and ``KeyboardInterrupt`` when stopped (the ``hpo`` run
    is then ``interrupted``; running the same tuning again continues the study).
    """
    from automl.hpo import check_configurations, check_pruning, parse_objectives, read_enqueue_file
    from automl.hpo_registry import check_pruner, check_sampler
    from automl.hpo_workers import choose_storage, storage_kind
    from automl.nas.job import as_store
    from automl.process_state import preserved_process_state

    if trials < 1 or workers < 1:
        raise UserError(f"trials and workers must be at least 1 (got {trials} and {workers})")
    names = parse_objectives(objectives)
    check_sampler(sampler)
    check_pruner(pruner)
    check_pruning(pruner, names)
    if isinstance(enqueue, str | Path):
        configurations = read_enqueue_file(Path(enqueue))
    else:
        configurations = check_configurations(list(enqueue or []))
    store = as_store(store)
    storage_url = storage or choose_storage(store.url, workers)
    storage_kind(storage_url)  # validates the URL before anything is written
    resolved = _resolve_target(store, target, space)
    cfg = tune_config(
        resolved.stored_config, config=config, preset=preset, config_file=config_file, data=data,
        seed=seed, device=device, epochs=epochs, cpu_threads=cpu_threads, space=space,
    )  # fmt: skip
    check_target(resolved.genotype, cfg, resolved.allow_user_code)
    session = _Session(store, resolved, cfg, storage_url, names, trials, workers, sampler, pruner,
                       configurations, heartbeat, study_name)  # fmt: skip
    with preserved_process_state():
        return session.run(progress)


@dataclass
class _Session:
    """Everything checked: the ``hpo`` run and the study inside it."""

    store: Store
    resolved: _Resolved
    cfg: Config
    storage_url: str
    objectives: tuple[str, ...]
    trials: int
    workers: int
    sampler: Any
    pruner: Any
    configurations: list[dict[str, Any]]
    heartbeat: int | None
    study_name: str | None

    def run_config(self, name: str) -> dict[str, Any]:
        from automl.hpo_registry import pruner_name, sampler_name
        from automl.redact import safe_url

        return {
            **self.cfg.model_dump(mode="json"),
            "hpo": {
                "study": name,
                "storage": safe_url(self.storage_url),
                "trials": self.trials,
                "workers": self.workers,
                "objectives": list(self.objectives),
                "sampler": sampler_name(self.sampler),
                "pruner": pruner_name(self.pruner),
                "enqueued": self.configurations,
            },
        }

    def run(self, progress: ProgressCallback | None) -> TuneResult:
        from automl.hpo import HPOTarget, run_study
        from automl.hpo_workers import storage_kind
        from automl.redact import safe_url
        from automl.store import genotype_hash

        r, cfg, store = self.resolved, self.cfg, self.store
        g_hash = genotype_hash(r.genotype)
        source = f"run{r.search_run_id}" if r.search_run_id is not None else g_hash[:10]
        name = self.study_name or default_study_name(source, cfg.search.data, self.objectives)
        arch_id = architecture_id(store, r.search_run_id, g_hash)
        s = cfg.search
        with store.run(kind="hpo", config=self.run_config(name), seed=s.seed, space=r.genotype.get("space"),
                       task=s.task, data=s.data, parent_run_id=r.search_run_id) as run:  # fmt: skip
            if arch_id is None:
                arch_id = store.add_architecture(run.id, r.genotype, role="hpo_target")
            target = HPOTarget(
                genotype=r.genotype, genotype_hash=g_hash, config=cfg.model_dump(mode="json"),
                store_url=store.url, hpo_run_id=run.id, objectives=self.objectives,
                base_epochs=cfg.train.epochs, device=s.device, seed=s.seed, cpu_threads=s.cpu_threads,
                search_run_id=r.search_run_id, architecture_id=arch_id, allow_user_code=r.allow_user_code,
            )  # fmt: skip
            summary = run_study(
                target, storage_url=self.storage_url, study_name=name, n_trials=self.trials,
                workers=self.workers, configurations=self.configurations, sampler=self.sampler,
                pruner=self.pruner, heartbeat_interval=self.heartbeat, progress=progress,
            )  # fmt: skip
            summary.update(hpo_run_id=run.id, storage=safe_url(self.storage_url),
                           storage_kind=storage_kind(self.storage_url))  # fmt: skip
            if "best_value" in summary:
                summary["best_val_metric"] = summary["best_value"]  # what `automl runs list` shows
            run.set_summary(summary)
        stored = store.get_run(run.id).get("summary") or summary  # with the run's wall time
        return TuneResult(run.id, name, safe_url(self.storage_url), self.objectives, stored)
