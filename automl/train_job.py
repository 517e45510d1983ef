"""Training a searched architecture from scratch as a job: what ``automl train`` does, from Python.

:func:`train_job` takes the architecture as a genotype dict, a JSON genotype file (a bare
genotype, or any JSON object holding one under ``"genotype"``: an ``automl export --format json``
file, a checkpoint sidecar) or a stored run's id (its final architecture; the new run's parent).
:func:`train_config` is the one configuration layering: for a run id its stored config (so the
retraining sees the same image size, sample cap and ``[train]`` section as the search), else the
``quick`` preset; an explicit ``preset`` replaces that base, ``config_file`` is layered on top,
then the keyword options.

With a store the job is a ``train`` run (:mod:`automl.store.lifecycle` owns its states): one row
per epoch, the checkpoint (safetensors + sidecar) in the run's directory, the final architecture,
the test metrics and the learning checks' ``signal`` in its summary. Without one nothing is
recorded; the checkpoint is written into ``out`` (default: a new temporary directory, named in
the result -- the caller removes it).

Occlusion (docs/algorithms.md, distillation): ``occlude="lower"|"upper"`` hides half of every
face in training and testing; with ``distill`` (:class:`~automl.distill_setup.DistillOptions`) the
student is trained against a teacher trained on full faces; ``concat_with`` (a second distilled
student) adds the concatenated model's metrics; ``save_attention`` writes the per-AU attention
maps of a few test faces as PNGs (:mod:`automl.attention_maps`). Everything runs inside
:func:`~automl.process_state.preserved_process_state`, on ``search.cpu_threads`` torch threads.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.config import Config
from automl.distill_setup import DistillOptions, check_occlude
from automl.errors import UserError
from automl.genotype_source import guard_genotype_space, resolve_target
from automl.progress import ProgressCallback, ProgressEvent, emit

if TYPE_CHECKING:
    from automl.data import FaceData
    from automl.store import Store

Target = dict[str, Any] | str | Path | int


# ---------------------------------------------------------------------------------- configuration


def option_overrides(
    *,
    data: str | None,
    seed: int | None,
    device: str | None,
    epochs: int | None,
    cpu_threads: int | None = None,
) -> dict[str, Any]:
    """The config overrides of the options training and tuning share (None: keep the config's)."""
    overrides: dict[str, Any] = {"search": {}, "train": {}}
    for key, value in (("data", data), ("seed", seed), ("device", device), ("cpu_threads", cpu_threads)):
        if value is not None:
            overrides["search"][key] = value
    if epochs is not None:
        overrides["train"]["epochs"] = epochs
    return overrides


def resolve_config(
    stored: dict[str, Any] | None,
    *,
    preset_name: str | None,
    config_file: str | Path | None,
    overrides: dict[str, Any],
) -> Config:
    """A run's stored config or a preset, then ``config_file``, then ``overrides``.

    A user's NNI space (``nni:...``) in ``search.space`` must come from the base (a stored run's
    config) or from ``overrides`` (the caller's explicit choice), never from a config file.
    """
    from automl.config import layer_config, preset

    if preset_name is not None or stored is None:
        name = preset_name or "quick"
        base, source = preset(name), f"preset '{name}'"
    else:
        base, source = stored, "the run's stored config"
    cfg = layer_config(base, source, config_file, overrides)
    chosen = (overrides.get("search") or {}).get("space") or (
        ((base.get("search") or {}).get("space")) if base is stored else None
    )
    if cfg.search.space.startswith("nni:") and cfg.search.space != chosen:
        raise UserError(
            f"{config_file} sets search.space = '{cfg.search.space}', which names user code to import; "
            "it runs only when that space is chosen explicitly"
        )
    return cfg


def train_config(
    target: Target | None = None,
    store: Store | str | None = None,
    *,
    base: Config | dict[str, Any] | None = None,
    preset: str | None = None,
    config_file: str | Path | None = None,
    data: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    epochs: int | None = None,
    cpu_threads: int | None = None,
    space: str | None = None,
) -> Config:
    """The configuration of training (or tuning) ``target``: ``base`` if given, else its run's
    stored config (a run id), else the ``quick`` preset -- replaced by ``preset`` when given --
    then ``config_file``, then the options.

    ``space`` (the genotype's space, chosen explicitly) is recorded as ``search.space``.
    """
    from automl.nas.job import as_store

    stored = base.model_dump(mode="json") if isinstance(base, Config) else base
    if stored is None and target is not None and not isinstance(target, dict) and _is_run_id(target):
        store = as_store(store)
        if store is not None:
            stored = store.get_run(int(target)).get("config") or None
    overrides = option_overrides(data=data, seed=seed, device=device, epochs=epochs, cpu_threads=cpu_threads)
    if space:
        overrides["search"]["space"] = space
    return resolve_config(stored, preset_name=preset, config_file=config_file, overrides=overrides)


def _is_run_id(target: Target) -> bool:
    if isinstance(target, int) and not isinstance(target, bool):
        return True
    text = str(target)
    return not Path(text).exists() and text.strip().isdigit()


# ---------------------------------------------------------------------------------- result


@dataclass
class TrainJobResult:
    """A finished training job: the trained network, its test metrics, where it was written."""

    run_id: int | None
    parent_run_id: int | None
    primary_metric: str
    metrics: dict[str, Any]
    params: int
    mflops: float | None
    checkpoint: Path
    history: list[dict[str, Any]]
    wall_time: float
    occlude: str
    genotype: dict[str, Any]
    model: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    signal: dict[str, Any] | None = None

    @property
    def distill(self) -> dict[str, Any] | None:
        return self.meta.get("distill")

    @property
    def attention_files(self) -> list[str] | None:
        return self.meta.get("attention_files")

    @property
    def concat(self) -> dict[str, Any] | None:
        return self.meta.get("concat")

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names") or [])

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``automl train --json`` prints)."""
        return {
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "primary_metric": self.primary_metric,
            "metrics": self.metrics,
            "params": self.params,
            "mflops": self.mflops,
            "checkpoint": str(self.checkpoint),
            "history": self.history,
            "wall_time": self.wall_time,
            "occlude": self.occlude,
            "distill": self.distill,
            "attention_files": self.attention_files,
            "concat": self.concat,
            "signal": self.signal,
        }


# ---------------------------------------------------------------------------------- the job


def train_job(
    target: Target,
    store: Store | str | None = None,
    *,
    config: Config | None = None,
    data: FaceData | None = None,
    progress: ProgressCallback | None = None,
    space: str | None = None,
    occlude: str = "none",
    distill: DistillOptions | None = None,
    concat_with: str | Path | None = None,
    save_attention: str | Path | None = None,
    out: str | Path | None = None,
) -> TrainJobResult:
    """Train ``target`` (genotype dict, genotype JSON path, or run id of ``store``) from scratch.

    ``store``: a :class:`~automl.store.Store`, its URL, or None (nothing recorded; the checkpoint
    goes to ``out``, default a new temporary directory). With a store, ``out`` receives a copy.
    ``config`` defaults to :func:`train_config` of ``target``; ``data`` replaces its
    ``search.data`` with an in-memory :class:`~automl.data.FaceData`. ``space`` is the space the
    caller chose explicitly: needed (and must match) for a genotype of a user's NNI space.
    ``distill`` needs ``occlude``; ``concat_with`` (train run id or checkpoint of a second
    distilled student) needs ``distill``. Bad input raises :class:`~automl.errors.UserError`
    before a run exists; a failure during training leaves the run ``failed``.
    """
    from automl.nas.job import as_store
    from automl.process_state import preserved_process_state
    from automl.threads import cpu_threads

    store = as_store(store)
    _check_combination(occlude, distill, concat_with)
    genotype, parent_run_id, stored = resolve_target(store, target)
    allow_user_code = guard_genotype_space(genotype, space, stored)
    cfg = config if config is not None else train_config(target, store, space=space)
    with preserved_process_state():
        job = _prepare(
            genotype, cfg, store, data=data, allow_user_code=allow_user_code, parent_run_id=parent_run_id,
            occlude=occlude, distill=distill, concat_with=concat_with, save_attention=save_attention,
        )  # fmt: skip
        with cpu_threads(job.device, cfg.search.cpu_threads) as threads:
            job.threads = threads
            if store is None:
                return _train_unrecorded(job, out, progress)
            return _train_recorded(job, store, out, progress)


def _check_combination(occlude: str, distill: DistillOptions | None, concat_with: Any) -> None:
    from automl.genotype_source import InputError

    check_occlude(occlude)
    if distill is not None:
        if occlude == "none":
            raise InputError(
                "distillation trains a student on occluded faces: set occlude to 'lower' or 'upper'",
                argument="distill",
            )
        distill.config()  # bad settings fail before anything is loaded
    if concat_with is not None and distill is None:
        raise InputError(
            "concatenation joins two distilled students: it needs distill", argument="concat_with"
        )


@dataclass
class _Job:
    """Everything checked and loaded before a run exists."""

    genotype: dict[str, Any]
    cfg: Config
    data: Any
    task: Any
    device: Any
    occlude: str
    allow_user_code: str | None
    parent_run_id: int | None
    transform: Any = None
    distillation: Any = None
    partner: Any = None
    partner_info: dict[str, Any] = field(default_factory=dict)
    save_attention: Path | None = None
    threads: int | None = None
    data_spec: str = ""  # the run row's data column: the spec loaded, or an in-memory set's name

    @property
    def extra_meta(self) -> dict[str, Any]:
        d = self.distillation
        return {"occlude": self.occlude, **({"distill": d.settings} if d else {})}


def _prepare(
    genotype: dict[str, Any],
    cfg: Config,
    store: Store | None,
    *,
    data: Any,
    allow_user_code: str | None,
    parent_run_id: int | None,
    occlude: str,
    distill: DistillOptions | None,
    concat_with: Any,
    save_attention: Any,
) -> _Job:
    """Fail on bad input before a run is created: genotype, device, data, teacher, partner."""
    from automl.attention_maps import check_attention_head
    from automl.data.tasks import make_task
    from automl.distill_setup import load_partner, load_teacher, make_distillation
    from automl.training import resolve_device

    genotype = _validated(genotype, allow_user_code)
    device = resolve_device(cfg.search.device)
    spec = cfg.search.data if data is None else str(getattr(data, "name", "") or "in-memory")
    data = data if data is not None else _load_data(cfg)
    job = _Job(genotype, cfg, data, make_task(data), device, occlude, allow_user_code, parent_run_id)
    job.data_spec = spec
    if occlude != "none":
        job.transform = _occluder(occlude)
    if save_attention is not None:
        check_attention_head(genotype, data, cfg.train, allow_user_code=allow_user_code)
        job.save_attention = Path(save_attention)
    if distill is not None:
        teacher, teacher_info = load_teacher(store, distill.teacher, data, allow_user_code=allow_user_code)
        job.distillation = make_distillation(teacher, occlude, distill, seed=cfg.search.seed)
        job.distillation.settings.update(teacher_info)
        job.transform = job.distillation.transform
    if concat_with is not None:
        job.partner, job.partner_info = load_partner(
            store, concat_with, data, occlude, allow_user_code=allow_user_code
        )
    return job


def _validated(genotype: dict[str, Any], allow_user_code: str | None) -> dict[str, Any]:
    from search_spaces import UserCodeRefusedError, create_space
    from search_spaces.registry import SpaceUnavailableError

    try:
        space = create_space(genotype["space"], allow_user_code=allow_user_code)
        return space.validate_genotype(genotype)
    except (UserCodeRefusedError, SpaceUnavailableError) as exc:  # before the user's module is imported
        raise UserError(str(exc), argument=getattr(exc, "argument", None)) from None
    except ValueError as exc:
        raise UserError(f"invalid genotype: {exc}") from None


def _load_data(cfg: Config) -> Any:
    from automl.data.spec import load_data

    d = cfg.data
    return load_data(cfg.search.data, image_size=d.image_size, channels=d.channels, fold=d.fold, n=d.n,
                     seed=cfg.search.seed)  # fmt: skip


def _occluder(part: str) -> Any:
    from automl.data.augment import occlude as occlude_batch

    def transform(x: Any) -> Any:
        return occlude_batch(x, part)

    return transform


def _step_progress(progress: ProgressCallback | None, label: str, state: dict[str, str]) -> Any:
    """``automl.training``'s per-step callback, relayed as :class:`ProgressEvent`\\ s."""
    if progress is None:
        return None

    def relay(step: int, total: int, info: dict[str, Any]) -> None:
        epoch = f"epoch {info['epoch'] + 1}/{info['epochs']}"
        message = f"{epoch} {state['metric']}".strip()
        emit(progress, ProgressEvent(label, step, total, message, None, dict(info)))

    return relay


def _fit(job: _Job, run_dir: Path, progress: ProgressCallback | None, label: str,
         record_epoch: Any = None, run_id: int | None = None) -> Any:
    """Train the network; its checkpoint is written into ``run_dir``. Returns automl.training's result."""
    from automl.training import train_genotype

    state = {"metric": ""}

    def on_epoch(epoch: int, record: dict[str, Any]) -> None:
        if record_epoch is not None:
            record_epoch(epoch, record)
        if "val_metric" in record:
            state["metric"] = f"test {job.task.primary_metric} {record['val_metric']:.3f}"

    d = job.distillation
    return train_genotype(
        job.genotype, job.data, job.task, job.cfg.train, device=job.device, seed=job.cfg.search.seed,
        progress=_step_progress(progress, label, state), on_epoch=on_epoch, run_dir=run_dir,
        transform=job.transform, extra_loss=d.extra_loss if d else None,
        prepare_model=d.prepare_model if d else None,
        extra_meta={**job.extra_meta, "run_id": run_id, "parent_run_id": job.parent_run_id},
        augment_cfg=job.cfg.augment, allow_user_code=job.allow_user_code,
    )  # fmt: skip


def _after_training(job: _Job, result: Any) -> dict[str, Any]:
    """The concatenated model and the attention maps; what they add to the summary."""
    from automl.attention_maps import write_attention_maps
    from automl.distill_setup import train_concatenated

    after: dict[str, Any] = {}
    if job.partner is not None:
        metrics = train_concatenated(
            result.model, job.partner, job.data, job.task, job.cfg.train,
            transform=_occluder(job.occlude), device=job.device, seed=job.cfg.search.seed,
        )  # fmt: skip
        result.meta["concat"] = {**job.partner_info, "test_metrics": metrics}
        after["concat"] = {
            **job.partner_info,
            "test_metric": metrics.get(job.task.primary_metric),
            "test_metrics": metrics,
        }
    if job.save_attention is not None:
        files = write_attention_maps(result.model, job.data, job.save_attention, transform=job.transform)
        result.meta["attention_files"] = files
        after.update(attention_dir=str(job.save_attention), attention_files=len(files))
    return after


def _result(job: _Job, result: Any, run_id: int | None, checkpoint: Path) -> TrainJobResult:
    return TrainJobResult(
        run_id=run_id, parent_run_id=job.parent_run_id, primary_metric=job.task.primary_metric,
        metrics=result.metrics, params=result.params, mflops=result.mflops, checkpoint=checkpoint,
        history=result.history, wall_time=result.wall_time, occlude=job.occlude,
        genotype=result.genotype, model=result.model, meta=result.meta, signal=result.signal,
    )  # fmt: skip


def _train_unrecorded(job: _Job, out: str | Path | None, progress: ProgressCallback | None) -> TrainJobResult:
    run_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="automl-train-"))
    result = _fit(job, run_dir, progress, "train")
    _after_training(job, result)
    assert result.checkpoint is not None
    return _result(job, result, None, result.checkpoint)


def _train_recorded(
    job: _Job, store: Store, out: str | Path | None, progress: ProgressCallback | None
) -> TrainJobResult:
    from automl.checkpoint import save_checkpoint
    from automl.store.recorder import StoreRecorder

    cfg = job.cfg
    with store.run(kind="train", config=cfg.model_dump(mode="json"), seed=cfg.search.seed,
                   space=job.genotype["space"], task=job.data.task, data=job.data_spec,
                   parent_run_id=job.parent_run_id) as run:  # fmt: skip
        run.set_summary({**job.extra_meta, "device": str(job.device), "cpu_threads": job.threads})
        recorder = StoreRecorder(store, run.id)
        result = _fit(job, run.dir, progress, f"train #{run.id}", recorder.on_epoch, run.id)
        checkpoint = result.checkpoint
        assert checkpoint is not None
        store.add_checkpoint(run.id, checkpoint, kind="weights", metrics=result.metrics)
        if out is not None:
            save_checkpoint(Path(out) / checkpoint.name, result.model, result.meta)
        store.add_architecture(run.id, result.genotype, params=result.params, mflops=result.mflops,
                               role="final")  # fmt: skip
        after = _after_training(job, result)
        run.set_summary(_final_summary(job, result, after, checkpoint))
    return _result(job, result, run.id, checkpoint)


def _final_summary(job: _Job, result: Any, after: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    primary = job.task.primary_metric
    return {
        **after,
        **({"distill": job.distillation.settings} if job.distillation else {}),
        "test_metric": result.metrics.get(primary),
        "primary_metric": primary,
        "test_metrics": result.metrics,
        "params": result.params,
        "mflops": result.mflops,
        "checkpoint": str(checkpoint),
        "wall_time": result.wall_time,
        "augment": result.meta.get("augment"),
        "signal": result.signal,  # automl.learning_checks: did it learn anything?
    }
