"""Optuna studies over the final training's hyper-parameters of one searched architecture.

What is tuned, and why these: the DARTS-style recipe in :mod:`automl.training` has six knobs whose
best values move with the data set and the architecture -- learning rate and weight decay (log
scale, they act multiplicatively), batch size, the share of the epoch budget, drop-path, and the
network's width (``init_channels``, which also sets its cost). Everything else stays as configured.

Objectives: ``accuracy`` is the task's primary metric (accuracy for FER, mean F1 for AU; always
maximised) on a *validation* split carved out of the training split (``[data] val_fraction``,
subject-exclusive where subjects are known): choosing hyper-parameters on the test split would
report an optimistic test score, so the study never sees it. ``latency`` (ms for one image on
the CPU, minimised) and ``params`` (millions, minimised). One objective: per-epoch intermediate
values feed a pruner (median or Hyperband). Several: Optuna cannot prune multi-objective trials,
and the Pareto front (``study.best_trials``) is what is reported and stored.

Links to the store: every trial trains inside its own ``train`` run (child of the ``hpo`` run, one
row per epoch), and the trial's user attributes carry ``train_run_id``, ``hpo_run_id``,
``search_run_id``, ``architecture_id`` and ``genotype_hash``. The study's user attributes carry
the same for the study and, after a session, the best trial or the Pareto front.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl.config import Config, TrainSection
from automl.errors import UserError
from automl.progress import ProgressCallback, ProgressEvent, emit

OBJECTIVES = {"accuracy": "maximize", "latency": "minimize", "params": "minimize"}
HP_NAMES = ("lr", "weight_decay", "batch_size", "epochs_scale", "drop_path", "init_channels")


# ------------------------------------------------------------------------------ search space


@dataclass(frozen=True)
class HPSpace:
    """Ranges of the tuned hyper-parameters (``init_channels`` choices are relative to the base)."""

    lr: tuple[float, float] = (1e-3, 0.2)
    weight_decay: tuple[float, float] = (1e-5, 1e-2)
    batch_sizes: tuple[int, ...] = (32, 64, 96, 128)
    epochs_scale: tuple[float, float, float] = (0.25, 1.0, 0.25)  # low, high, step
    drop_path: tuple[float, float] = (0.0, 0.4)
    width_factors: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5)

    def width_choices(self, base_channels: int) -> list[int]:
        return sorted({max(4, int(round(base_channels * f / 4.0)) * 4) for f in self.width_factors})


def suggest_params(trial: optuna.Trial, base: TrainSection, space: HPSpace = HPSpace()) -> dict[str, Any]:
    low, high, step = space.epochs_scale
    return {
        "lr": trial.suggest_float("lr", *space.lr, log=True),
        "weight_decay": trial.suggest_float("weight_decay", *space.weight_decay, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(space.batch_sizes)),
        "epochs_scale": trial.suggest_float("epochs_scale", low, high, step=step),
        "drop_path": trial.suggest_float("drop_path", *space.drop_path),
        "init_channels": trial.suggest_categorical("init_channels", space.width_choices(base.init_channels)),
    }


def apply_params(base: TrainSection, params: dict[str, Any], base_epochs: int) -> tuple[TrainSection, int]:
    """The trial's training section and its epoch count (``epochs_scale`` x the base, at least 1)."""
    updates = {
        k: params[k]
        for k in ("lr", "weight_decay", "batch_size", "drop_path", "init_channels")
        if k in params
    }
    epochs = max(1, int(round(base_epochs * float(params.get("epochs_scale", 1.0)))))
    cfg = base.model_copy(update={**updates, "epochs": epochs})
    return TrainSection.model_validate(cfg.model_dump()), epochs


def parse_objectives(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown:
        raise UserError(
            f"unknown objective(s) {', '.join(unknown) or '(none)'}: use accuracy, or accuracy,latency "
            "or accuracy,params"
        )
    if names[0] != "accuracy" or len(set(names)) != len(names):
        raise UserError(
            "the objectives must start with accuracy and name each objective once, e.g. accuracy,latency",
            argument="objectives",
        )
    return tuple(names)


def check_pruning(pruner: Any, objectives: tuple[str, ...]) -> None:
    """Refuse a pruner chosen for a study of several objectives: Optuna cannot prune one (its
    trials report no intermediate values), so the pruner would silently do nothing. ``median``,
    the default, and ``none`` pass: with several objectives both mean no pruning."""
    from automl.hpo_registry import pruner_name

    if len(objectives) > 1 and pruner not in ("median", "none"):
        raise UserError(
            f"the {pruner_name(pruner)} pruner needs a single objective: Optuna cannot prune a study "
            f"of several ({','.join(objectives)}); use pruner none, or the objective accuracy alone"
        )


def directions(objectives: tuple[str, ...]) -> list[str]:
    return [OBJECTIVES[name] for name in objectives]


def read_enqueue_file(path: Path, space: HPSpace = HPSpace()) -> list[dict[str, Any]]:
    """Known configurations to try first: a JSON object or a list of objects over ``HP_NAMES``."""
    if not path.is_file():
        raise UserError(f'enqueue file not found: {path} (a JSON list of {{"lr": ..., ...}} objects)')
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"enqueue file {path} is not valid JSON: {exc}") from None
    items = payload if isinstance(payload, list) else [payload]
    return check_configurations(items, f"enqueue file {path}", space)


def check_configurations(
    items: Any, where: str = "enqueue", space: HPSpace = HPSpace()
) -> list[dict[str, Any]]:
    """Known configurations (objects over ``HP_NAMES``), checked; ``where`` starts each error."""
    if not isinstance(items, list | tuple):
        raise UserError(f"{where}: expected a list of objects of hyper-parameters")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item:
            raise UserError(f"{where}: entry {i} must be a non-empty JSON object of hyper-parameters")
        unknown = sorted(set(item) - set(HP_NAMES))
        if unknown:
            raise UserError(
                f"{where}: entry {i} has unknown key(s) {', '.join(unknown)} (allowed: {', '.join(HP_NAMES)})"
            )
        for key, value in item.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise UserError(f"{where}: entry {i}: '{key}' must be a finite number, not {value!r}")
            if key in ("lr", "weight_decay") and value <= 0:
                raise UserError(f"{where}: entry {i}: '{key}' must be positive")
        if "batch_size" in item and item["batch_size"] not in space.batch_sizes:
            raise UserError(f"{where}: entry {i}: batch_size must be one of {list(space.batch_sizes)}")
        out.append(dict(item))
    return out


# ---------------------------------------------------------------------------------- the target


@dataclass
class HPOTarget:
    """What is tuned and where results go: picklable, so worker processes rebuild the objective."""

    genotype: dict[str, Any]
    genotype_hash: str
    config: dict[str, Any]  # the resolved Config (train section = the base of every trial)
    store_url: str
    hpo_run_id: int
    objectives: tuple[str, ...] = ("accuracy",)
    base_epochs: int = 10
    device: str = "auto"
    seed: int = 0
    cpu_threads: int | None = None  # search.cpu_threads: torch threads of every worker on CPU
    search_run_id: int | None = None
    architecture_id: int | None = None
    space: HPSpace = field(default_factory=HPSpace)
    allow_user_code: str | None = None  # the nni: space the user chose explicitly (build_network)


def measure_latency_ms(model: Any, in_channels: int, image_size: int, *, repeats: int = 10) -> float:
    """Median wall time of one image through ``model`` on the CPU (eval mode, no autograd)."""
    import torch

    model = model.cpu().eval()
    x = torch.rand(1, in_channels, image_size, image_size)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            t0 = time.perf_counter()
            model(x)
            if i >= 3:  # the first calls allocate; they are not the steady state
                times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return float(times[len(times) // 2])


def validation_split(data: Any, fraction: float, seed: int) -> Any:
    """``data`` with its training split cut in two: the rest to train on, ``fraction`` held out as
    the "test" split that ``train_genotype`` evaluates. Subject-exclusive when subjects are known,
    so frames of one person never sit on both sides (the AU benchmarks are video)."""
    import numpy as np
    import torch

    n = int(data.train_x.shape[0])
    rng = np.random.default_rng(seed)
    subjects = data.train_subjects
    if subjects is not None and len(np.unique(subjects)) >= 2:
        unique = np.unique(subjects)
        rng.shuffle(unique)
        n_val = min(max(1, int(round(len(unique) * fraction))), len(unique) - 1)
        val_mask = np.isin(subjects, unique[:n_val])
    else:
        val_mask = np.zeros(n, dtype=bool)
        val_mask[rng.permutation(n)[: max(1, int(round(n * fraction)))]] = True
    if val_mask.sum() < 1 or (~val_mask).sum() < 2:
        raise UserError(
            f"data set {data.name} has {n} training samples: too few to hold out a validation split"
        )
    val_idx = torch.from_numpy(np.flatnonzero(val_mask))
    train_idx = torch.from_numpy(np.flatnonzero(~val_mask))
    return dataclasses.replace(
        data,
        train_x=data.train_x[train_idx],
        train_y=data.train_y[train_idx],
        test_x=data.train_x[val_idx],
        test_y=data.train_y[val_idx],
        train_subjects=None if subjects is None else subjects[~val_mask],
        test_subjects=None if subjects is None else subjects[val_mask],
        train_sources=_subset(data.train_sources, ~val_mask),
        test_sources=_subset(data.train_sources, val_mask),
        meta={**(data.meta or {}), "split": f"hpo validation ({fraction:.0%} of train)"},
    )


def _subset(sources: list[str] | None, mask: Any) -> list[str] | None:
    """The file paths of the rows ``mask`` keeps (None when the data set has none)."""
    if sources is None or len(sources) != len(mask):
        return None
    return [s for s, keep in zip(sources, mask, strict=True) if keep]


class TrainObjective:
    """``objective(trial)``: train the target with the trial's hyper-parameters, return the objectives.

    The data are loaded (and the validation split cut) once per process, on first use, and kept;
    each trial opens nothing else but its own ``train`` run in the store.
    """

    def __init__(self, target: HPOTarget) -> None:
        self.target = target
        self._data: Any = None
        self._task: Any = None
        self._store: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target, "_data": None, "_task": None, "_store": None}

    @property
    def primary_metric(self) -> str:
        self.prepare()
        return str(self._task.primary_metric)

    def prepare(self) -> None:
        if self._data is not None:
            return
        from automl.data import load_data, make_task
        from automl.store import open_store

        cfg = Config.model_validate(self.target.config)
        full = load_data(
            cfg.search.data,
            image_size=cfg.data.image_size,
            channels=cfg.data.channels,
            fold=cfg.data.fold,
            n=cfg.data.n,
            seed=cfg.search.seed,
        )
        self._data = validation_split(full, cfg.data.val_fraction, cfg.search.seed)
        self._task = make_task(self._data)
        self._store = open_store(self.target.store_url, migrate=False)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        """One trial inside its own ``train`` run (:mod:`automl.store.lifecycle`): a pruned trial's
        run ends ``pruned``, a failed one ``failed``, a Ctrl-C or SIGTERM ``interrupted``."""
        self.prepare()
        t = self.target
        cfg = Config.model_validate(t.config)
        params = suggest_params(trial, cfg.train, t.space)
        train_cfg, epochs = apply_params(cfg.train, params, t.base_epochs)
        run_config = cfg.model_copy(update={"train": train_cfg}).model_dump(mode="json")
        with self._store.run(
            kind="train",
            config=run_config,
            seed=t.seed,
            space=t.genotype.get("space"),
            task=self._data.task,
            data=cfg.search.data,
            parent_run_id=t.hpo_run_id,
        ) as run:
            for key, value in (
                ("train_run_id", run.id),
                ("hpo_run_id", t.hpo_run_id),
                ("search_run_id", t.search_run_id),
                ("architecture_id", t.architecture_id),
                ("genotype_hash", t.genotype_hash),
                ("epochs", epochs),
            ):
                trial.set_user_attr(key, value)
            measured = self._train(trial, run.id, cfg, train_cfg, epochs, params)
        return measured[0] if len(measured) == 1 else measured

    def _on_epoch(self, trial: optuna.Trial, run_id: int) -> Any:
        store, task, multi = self._store, self._task, len(self.target.objectives) > 1

        def on_epoch(epoch: int, record: dict[str, Any]) -> None:
            store.record_epoch(run_id, epoch, record)
            value = record.get("val_metric")
            if multi or value is None:
                return  # Optuna prunes single-objective studies only
            trial.report(float(value), epoch)
            if trial.should_prune():  # the run's lifecycle records TrialPruned as "pruned"
                raise optuna.TrialPruned(f"pruned after epoch {epoch} ({task.primary_metric}={value:.4f})")

        return on_epoch

    def _train(
        self, trial: optuna.Trial, run_id: int, cfg: Config, train_cfg: TrainSection, epochs: int,
        params: dict[str, Any],
    ) -> tuple[float, ...]:
        """Train with the trial's settings, record the run's summary; the objectives' values."""
        import torch

        from automl.training import train_genotype

        t, task = self.target, self._task
        result = train_genotype(
            t.genotype,
            self._data,
            task,
            train_cfg,
            device=t.device,
            seed=t.seed,
            epochs=epochs,
            on_epoch=self._on_epoch(trial, run_id),
            augment_cfg=cfg.augment,
            eval_split="validation",
            allow_user_code=t.allow_user_code,
        )
        score = float(result.metrics[task.primary_metric])
        latency = measure_latency_ms(result.model, self._data.in_channels, self._data.image_size)
        params_m = result.params / 1e6
        measured = {"accuracy": score, "latency": latency, "params": params_m}
        self._store.set_summary(run_id, {
            "best_val_metric": score,  # on the validation split (see validation_split)
            "primary_metric": task.primary_metric,
            "params_m": params_m,
            "mflops": result.mflops,
            "latency_ms": latency,
            "hpo_trial": trial.number,
            "hpo_params": params,
            "cpu_threads": torch.get_num_threads(),  # this worker's (automl.threads policy)
            "signal": result.signal,  # automl.learning_checks on the validation split
        })
        trial.set_user_attr("metric", task.primary_metric)
        trial.set_user_attr("latency_ms", latency)
        trial.set_user_attr("params_m", params_m)
        trial.set_user_attr("mflops", result.mflops)
        trial.set_user_attr("signal", result.signal)  # read back by study_signal
        return tuple(measured[name] for name in t.objectives)


# ---------------------------------------------------------------------------------- the study


def create_or_load_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    objectives: tuple[str, ...],
    *,
    attrs: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study, or join it if it exists with the same objectives (several machines)."""
    study = optuna.create_study(
        storage=storage, study_name=study_name, directions=directions(objectives), load_if_exists=True
    )
    stored = study.user_attrs.get("objectives")
    if stored is not None and tuple(stored) != tuple(objectives):
        raise UserError(
            f"study '{study_name}' optimises {','.join(stored)}, not {','.join(objectives)}: "
            "pick another study name or the same objectives",
            argument="study_name",
        )
    if len(study.directions) != len(objectives):
        raise UserError(
            f"study '{study_name}' has {len(study.directions)} objective(s); use another study name",
            argument="study_name",
        )
    if stored is None:
        study.set_user_attr("objectives", list(objectives))
    with warnings.catch_warnings():  # metric names are an experimental Optuna API (since 3.2)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names is None:  # Optuna's own place for them: its plots and dashboards read it
            study.set_metric_names(list(objectives))
    for key, value in (attrs or {}).items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    return study


def enqueue(study: optuna.Study, configurations: list[dict[str, Any]]) -> int:
    """Queue known configurations (skipping ones already tried or queued); returns how many."""
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    for params in configurations:
        study.enqueue_trial(params, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "values": list(trial.values) if trial.values is not None else None,
        "params": dict(trial.params),
        "train_run_id": trial.user_attrs.get("train_run_id"),
        "epochs": trial.user_attrs.get("epochs"),
        "latency_ms": trial.user_attrs.get("latency_ms"),
        "params_m": trial.user_attrs.get("params_m"),
        "retry_of": trial.system_attrs.get("failed_trial"),
        "duration_s": trial.duration.total_seconds() if trial.duration is not None else None,
    }


def summarise(study: optuna.Study, objectives: tuple[str, ...]) -> dict[str, Any]:
    """State counts plus the best trial (one objective) or the Pareto front (several)."""
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    summary: dict[str, Any] = {"study": study.study_name, "objectives": list(objectives), "counts": counts}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return summary
    if len(objectives) == 1:
        best = study.best_trial
        summary["best"] = trial_row(best)
        summary["best_value"] = best.value
        summary["best_params"] = dict(best.params)
    else:
        front = sorted(study.best_trials, key=lambda t: t.number)
        summary["pareto_front"] = [trial_row(t) for t in front]
    return summary


def study_signal(study: optuna.Study, summary: dict[str, Any]) -> dict[str, Any] | None:
    """Did the study find a configuration that learns? The verdict of the best trial (one
    objective) or of the Pareto front (several: learned when any of its trials did), each trial
    judged on the validation split by :mod:`automl.learning_checks` when it ran (its ``signal``
    user attribute), plus ``all_trials_at_chance`` when no completed trial learned anything.
    ``None`` when no completed trial carries a verdict (e.g. trials of an older version)."""
    from automl.learning_checks import NO_SIGNAL, Finding, summarize

    judged = [
        (t.number, t.user_attrs["signal"])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if isinstance(t.user_attrs.get("signal"), dict)
    ]
    if not judged:
        return None
    by_number = dict(judged)
    if "best" in summary:
        chosen = [summary["best"]["number"]]
    else:
        chosen = [r["number"] for r in summary.get("pareto_front", [])]
    chosen = [n for n in chosen if n in by_number]
    findings = []
    for number in chosen:
        for w in by_number[number].get("warnings") or []:
            values = {k: v for k, v in w.items() if k not in ("code", "severity", "message")}
            findings.append(
                Finding(
                    w["code"],
                    f"{'best' if 'best' in summary else 'Pareto'} trial {number}: {w['message']}",
                    severity=w.get("severity", NO_SIGNAL),
                    values={**values, "trial": number},
                )
            )
    verdict = summarize(findings, ["metric", "predictions", "embeddings"], split="validation")
    if chosen and "pareto_front" in summary:  # a front learns when any of its trials does
        verdict["learned"] = any(by_number[n].get("learned", True) for n in chosen)
    at_chance = [n for n, s in judged if not s.get("learned", True)]
    if len(at_chance) == len(judged):
        finding = Finding(
            "all_trials_at_chance",
            f"every one of the {len(judged)} completed trial(s) is at chance on the validation split: "
            "no configuration tried learned anything (check the data, the epochs and the lr range)",
            values={"trials": len(judged)},
        )
        verdict["warnings"].append(finding.to_dict())
        verdict["learned"] = False
    verdict["trials_judged"] = len(judged)
    verdict["trials_at_chance"] = len(at_chance)
    return verdict


def store_summary(study: optuna.Study, summary: dict[str, Any]) -> None:
    """Keep the result with the study as well, so Optuna tools and the dashboard see it."""
    if "pareto_front" in summary:
        study.set_user_attr(
            "pareto_front", [{"number": r["number"], "values": r["values"]} for r in summary["pareto_front"]]
        )
    if "best" in summary:
        study.set_user_attr("best_trial", summary["best"]["number"])


# ------------------------------------------------------------------------------------ a session


def study_progress(progress: ProgressCallback | None, job: str, total: int) -> Any:
    """A ``(state counts, budget)`` poll of the workers turned into :class:`ProgressEvent`\\ s."""
    if progress is None:
        return None

    def relay(counts: dict[str, int], budget: Any) -> None:
        finished = counts.get("complete", 0) + counts.get("pruned", 0) + counts.get("fail", 0)
        states = " ".join(f"{k}:{v}" for k, v in counts.items() if v and k != "waiting")
        done = max(0, min(finished - budget.retried, total))
        emit(progress, ProgressEvent(job, done, total, states, info={"counts": dict(counts)}))

    return relay


def run_study(
    target: HPOTarget,
    *,
    storage_url: str,
    study_name: str,
    n_trials: int,
    workers: int = 1,
    configurations: list[dict[str, Any]] | None = None,
    sampler: Any = "tpe",
    pruner: Any = "median",
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Create or join the study, queue known configurations, run trials until ``n_trials`` are taken.

    ``n_trials`` is the study's total budget (not this session's), so every machine running the
    same command against one PostgreSQL study shares it, and re-running a finished study adds
    nothing unless the budget is raised. ``sampler`` / ``pruner``: a name of
    :mod:`automl.hpo_registry` or an Optuna object. ``progress`` gets one event per poll.
    """
    from automl import hpo_workers as hw
    from automl.hpo_registry import check_pruner, check_sampler

    if n_trials < 1:
        raise UserError(f"the number of trials must be at least 1 (got {n_trials})", argument="trials")
    check_sampler(sampler)
    check_pruner(pruner)
    check_pruning(pruner, target.objectives)
    objective = TrainObjective(target)
    objective.prepare()  # bad data paths fail here, once, not in every trial of every worker
    heartbeat = hw.DEFAULT_HEARTBEAT_S if heartbeat_interval is None else heartbeat_interval
    storage = hw.open_storage(storage_url, heartbeat_interval=heartbeat or None, grace_period=grace_period)
    study = create_or_load_study(
        storage,
        study_name,
        target.objectives,
        attrs={
            "hpo_run_id": target.hpo_run_id,
            "search_run_id": target.search_run_id,
            "architecture_id": target.architecture_id,
            "genotype_hash": target.genotype_hash,
        },
    )
    if configurations:
        enqueue(study, configurations)
    spec = hw.StudySpec(
        storage_url=storage_url,
        study_name=study_name,
        n_trials=n_trials,
        sampler=sampler,
        pruner=pruner,
        seed=target.seed,
        heartbeat_interval=heartbeat or None,
        grace_period=grace_period,
    )
    _run_trials(spec, objective, workers, study_progress(progress, f"hpo #{target.hpo_run_id}", n_trials))
    study = hw.load_worker_study(spec)
    summary = summarise(study, target.objectives)
    summary["primary_metric"] = objective.primary_metric
    signal = study_signal(study, summary)
    if signal is not None:
        summary["signal"] = signal
    store_summary(study, summary)
    return summary


def _run_trials(spec: Any, objective: TrainObjective, workers: int, on_poll: Any) -> None:
    """This session's trials: in this process (one worker) or in ``workers`` processes."""
    from automl import hpo_workers as hw
    from automl.threads import cpu_threads, device_type, worker_threads

    target = objective.target
    if workers <= 1:
        worker_study = hw.load_worker_study(spec)

        def on_trial(_trial: FrozenTrial) -> None:
            if on_poll is not None:
                trials = worker_study.get_trials(deepcopy=False)
                on_poll(hw.count_states(trials), hw.count_budget(trials))

        with cpu_threads(target.device, target.cpu_threads):
            hw.run_worker(spec, objective, study=worker_study, on_trial=on_trial)
        return
    # every worker process: search.cpu_threads on CPU, else its share of the cores
    on_cpu = device_type(target.device) == "cpu"
    threads = worker_threads(target.cpu_threads if on_cpu else None, workers)
    result = hw.run_local_workers(spec, objective, workers, on_poll=on_poll, threads=threads)
    crashed = [code for code in result.exit_codes if code != 0]
    if crashed and result.counts.get("running", 0):
        raise UserError(
            f"{len(crashed)} worker(s) died (exit codes {crashed}) with trials unfinished; "
            "re-run the same command to resume the study"
        )
