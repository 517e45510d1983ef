"""A search as a job: configuration layering, the run lifecycle, distributed ranks, the result.

:func:`search_job` is what ``automl search`` and :func:`automl.search` both call. It resolves
where the search is recorded (a :class:`~automl.store.Store`, a store URL, or nothing: an
in-memory record), opens the run through :mod:`automl.store.lifecycle` (states, heartbeat,
SIGTERM/SIGHUP, resume safety), runs :class:`~automl.nas.search.SearchLoop` inside
:func:`~automl.process_state.preserved_process_state`, and returns a :class:`SearchResult`.

Resume safety lives here too: the loop's state file names the run and the store it belongs to,
and a resume whose state file is missing is recorded (``summary.restarts``) and warned about
instead of silently starting again from epoch 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.config import Config, load_config
from automl.errors import UserError
from automl.progress import ProgressCallback, ProgressEvent, emit

if TYPE_CHECKING:
    from automl.data import FaceData
    from automl.nas.strategy import Strategy
    from automl.store import Store
    from search_spaces.base import SearchSpace

AU_KINDS = ("bp4d", "disfa")


def task_of_data(spec: str) -> str:
    """The task a data spec implies: AU sets (synth:au, BP4D, DISFA) are multi-label, the rest FER."""
    kind, _, path = spec.strip().partition(":")
    kind = kind.lower()
    if kind in AU_KINDS or (kind == "synth" and path.lower().startswith("au")):
        return "au"
    return "fer"


def search_config(
    *,
    preset: str = "quick",
    config_file: str | Path | None = None,
    space: str | None = None,
    task: str | None = None,
    data: str | None = None,
    strategy: str | None = None,
    epochs_scale: float | None = None,
    device: str | None = None,
    seed: int | None = None,
    max_mflops: float | None = None,
    max_params: float | None = None,
    cpu_threads: int | None = None,
) -> Config:
    """Preset, then the TOML ``config_file``, then these arguments (the one layering of a search).

    A user's NNI space (``nni:...``) must be passed as ``space`` itself: a config file naming one
    is refused, so a search run's stored ``search.space`` is always the caller's explicit choice.
    """
    search: dict[str, Any] = {
        key: value
        for key, value in (
            ("space", space),
            ("data", data),
            ("strategy", strategy),
            ("epochs_scale", epochs_scale),
            ("device", device),
            ("seed", seed),
            ("task", task),
            ("max_mflops", max_mflops),
            ("max_params", max_params),
            ("cpu_threads", cpu_threads),
        )
        if value is not None
    }
    overrides = {"search": search} if search else None
    cfg = load_config(preset, Path(config_file) if config_file else None, overrides)
    if cfg.search.space.startswith("nni:") and cfg.search.space != space:
        raise UserError(
            f"{config_file or 'the preset'} sets search.space = '{cfg.search.space}', which names user "
            f"code to import; automl runs it only when you choose that space yourself: give "
            f"'{cfg.search.space}' as the space to allow it",
            argument="space",
        )
    if task is None and data is not None:
        cfg.search.task = task_of_data(cfg.search.data)  # type: ignore[assignment]
    elif task is not None and data is None and task_of_data(cfg.search.data) != task:
        # task="au" alone means the embedded AU set, as task="fer" alone means synth:fer.
        cfg.search.data = f"synth:{task}"
    return cfg


@dataclass
class SearchResult:
    """What a finished search found and how it went."""

    run_id: int | None
    genotype: dict[str, Any]
    summary: dict[str, Any]
    search_epochs: int
    wall_time: float
    rank: int = 0
    epoch_times: list[float] = field(default_factory=list)

    @property
    def cost(self) -> dict[str, Any] | None:
        return self.summary.get("cost")

    @property
    def metric_name(self) -> str | None:
        return self.summary.get("metric_name")

    @property
    def signal(self) -> dict[str, Any] | None:
        """The learning checks' verdict on the supernet (:mod:`automl.learning_checks`)."""
        return self.summary.get("signal")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "genotype": self.genotype,
            "search_epochs": self.search_epochs,
            "wall_time": self.wall_time,
            "cost": self.cost,
            "metric_name": self.metric_name,
            "signal": self.signal,
            **({"rank": self.rank} if self.rank else {}),
        }


def resume_config(
    store: Store | str, run_id: int, *, device: str | None = None, cpu_threads: int | None = None
) -> Config:
    """The stored configuration of search ``run_id``, checked to be resumable (not completed, not live).

    ``device`` / ``cpu_threads``: where to continue it, when not where it ran; the rest of the
    configuration stays the run's own.
    """
    from automl.config import validate_config
    from automl.store.lifecycle import check_resumable

    store = as_store(store)
    assert store is not None
    run = store.get_run(run_id)
    check_resumable(run, "search")
    cfg = validate_config(run.get("config") or {}, f"stored config of run {run_id}")
    if device is not None:
        cfg.search.device = device  # type: ignore[assignment]
    if cpu_threads is not None:
        cfg.search.cpu_threads = cpu_threads
    return cfg


def as_store(store: Store | str | None) -> Store | None:
    """A :class:`~automl.store.Store` object, a store URL (opened and migrated), or None."""
    if store is None or not isinstance(store, str):
        return store
    from automl.store import open_store

    return open_store(store)


def _loop_progress(progress: ProgressCallback | None, label: str) -> Any:
    if progress is None:
        return None

    def relay(info: dict[str, Any]) -> None:
        metric = info.get("metric_name", "val")
        value = info.get("val_metric")
        text = f"{info.get('phase', '')} round {info.get('round', '-')} ops {info.get('surviving_ops', '-')}"
        if isinstance(value, float):
            text += f" {metric} {value:.3f}"
        emit(progress, ProgressEvent(label, int(info["epoch"]), info.get("total"), text,
                                     info.get("eta_seconds"), info))

    return relay


def search_job(
    cfg: Config,
    store: Store | str | None = None,
    *,
    resume: int | None = None,
    data: FaceData | None = None,
    progress: ProgressCallback | None = None,
    space: SearchSpace | None = None,
    strategy: Strategy | str | None = None,
) -> SearchResult:
    """Run (or with ``resume``, continue) the search ``cfg`` describes and record it in ``store``.

    ``data`` replaces ``cfg.search.data`` with an in-memory :class:`~automl.data.FaceData` (your own
    tensors); ``space`` / ``strategy`` objects replace the ones the config names (a resume rebuilds
    from the stored config, so resumable runs use registered names). Raises
    :class:`~automl.errors.UserError` for bad input and
    :class:`~automl.store.lifecycle.RunInterrupted` / ``KeyboardInterrupt`` when stopped (the run is
    then ``interrupted`` and resumable).
    """
    from automl.nas import distributed
    from automl.nas.search import resolve_device
    from automl.process_state import preserved_process_state

    if resume is not None and store is None:
        raise UserError("resuming a search needs the store that holds it")
    with preserved_process_state():
        ctx = None
        if distributed.env_world_size() > 1:  # one rank of a multi-process launch (torchrun)
            ctx = distributed.init_from_env(resolve_device(cfg.search.device).type)
        try:
            parts = {"data": data, "space": space, "strategy": strategy}
            if ctx is not None and not ctx.is_main:
                return _follower_rank(cfg, ctx, resume, parts)
            return _main_rank(cfg, as_store(store), resume, parts, progress, ctx)
        finally:
            if ctx is not None:
                distributed.shutdown()


def _build_loop(cfg: Config, parts: dict[str, Any], progress: Any, ctx: Any) -> Any:
    """The loop, built before any run row exists; :meth:`SearchLoop.attach` gives it the run."""
    from automl.nas import distributed
    from automl.nas.recorder import MemoryRecorder
    from automl.nas.search import SearchLoop

    recorder = MemoryRecorder()
    kwargs = {"progress": progress, **parts}
    if ctx is None:
        return SearchLoop(cfg, recorder, **kwargs)
    return distributed.distributed_loop_class()(cfg, recorder, ctx=ctx, **kwargs)


def _follower_rank(cfg: Config, ctx: Any, resume: int | None, parts: dict[str, Any]) -> SearchResult:
    from automl.nas import distributed
    from automl.nas.recorder import MemoryRecorder

    # Built in the same order as on rank 0 (loop first, then the broadcast); only rank 0 writes
    # the store, and the others learn the run id, directory and owner from it.
    loop = _build_loop(cfg, parts, None, ctx)
    run_id, run_dir, owner = distributed.broadcast_object(None)  # type: ignore[misc]
    loop.attach(MemoryRecorder(), run_dir, owner)
    outcome = loop.run(resume=resume is not None)
    assert outcome is not None
    return SearchResult(run_id, outcome.genotype, outcome.summary, outcome.epochs, outcome.wall_time,
                        rank=ctx.rank, epoch_times=list(outcome.epoch_times))


def _main_rank(cfg: Config, store: Store | None, resume: int | None, parts: dict[str, Any],
               progress: ProgressCallback | None, ctx: Any) -> SearchResult:
    from automl.nas import distributed

    if store is None:  # nothing persisted: no run row, no resume state
        if ctx is not None:
            distributed.broadcast_object((None, None, None))
        loop = _build_loop(cfg, parts, _loop_progress(progress, "search"), ctx)
        outcome = loop.run()
        assert outcome is not None
        return SearchResult(None, outcome.genotype, outcome.summary, outcome.epochs, outcome.wall_time,
                            epoch_times=list(outcome.epoch_times))
    from automl.store.recorder import StoreRecorder

    s = cfg.search
    if resume is not None:
        from automl.store.lifecycle import check_resumable

        check_resumable(store.get_run(resume), "search")
    # Built before the run row exists: bad data, a bad space or a missing GPU stores nothing.
    loop = _build_loop(cfg, parts, None, ctx)
    space_name = getattr(parts.get("space"), "name", None) or s.space  # an object of your own: its name
    strategy_name = getattr(parts.get("strategy"), "name", None) or s.strategy
    with store.run(kind="search", config=cfg.model_dump(mode="json"), resume=resume, seed=s.seed,
                   space=space_name, task=s.task, strategy=strategy_name, data=s.data) as run:
        owner = {"run_id": run.id, "store_id": store.store_id}
        if ctx is not None:
            distributed.broadcast_object((run.id, str(run.dir), owner))
            run.set_summary({"world_size": ctx.world_size, "backend": ctx.backend})
        loop.attach(StoreRecorder(store, run.id), run.dir, owner)
        loop.progress = _loop_progress(progress, f"search #{run.id} {s.strategy}")
        if resume is not None and not loop.has_state():
            run.note_restart(f"no search state in {run.dir}: the search starts again from epoch 0")
        outcome = loop.run(resume=resume is not None)
        assert outcome is not None
    summary = store.get_run(run.id)["summary"]
    wall_time = float(summary.get("wall_time") or 0.0)  # every segment of the run, not just this one
    return SearchResult(run.id, outcome.genotype, summary, outcome.epochs, wall_time,
                        epoch_times=list(outcome.epoch_times))
