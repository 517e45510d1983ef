"""The Python API: what ``automl search|train|hpo|export|index`` do, in a few lines each.

    import automl

    data = automl.face_data(images, labels, task="fer")          # or automl.load_data("synth:fer")
    found = automl.search(data, store="sqlite:///runs.db")       # DDPNAS on the face space
    model = automl.train(found.genotype, data, store="sqlite:///runs.db")

Every function takes objects where the CLI takes names (a :class:`~search_spaces.base.SearchSpace`,
a :class:`~automl.nas.strategy.Strategy`, an Optuna sampler, a hasher, a
:class:`~automl.store.Store`), a ``config`` (a :class:`~automl.config.Config`, a dict of TOML
sections, or a TOML path) layered over a ``preset``, and an optional ``progress`` callback
(:mod:`automl.progress`). ``store=None`` keeps nothing but the result. Errors a user can cause are
:class:`~automl.errors.UserError` (a ``ValueError``) with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.config import Config, load_config, validate_config
from automl.config import _deep_merge as deep_merge

if TYPE_CHECKING:
    from automl.data import FaceData
    from automl.exporting import ExportInfo
    from automl.hpo_job import TuneResult
    from automl.nas.job import SearchResult
    from automl.nas.strategy import Strategy
    from automl.progress import ProgressCallback
    from automl.store import Store
    from automl.train_job import TrainJobResult
    from search_spaces.base import SearchSpace


def resolve_config(
    config: Config | dict[str, Any] | str | Path | None = None,
    *,
    preset: str = "quick",
    **sections: dict[str, Any],
) -> Config:
    """The one layering: ``preset``, then ``config`` (object, dict of sections or TOML path), then
    ``sections`` (e.g. ``search={"seed": 1}``), validated once."""
    overrides = {name: dict(values) for name, values in sections.items() if values}
    if isinstance(config, Config):
        base = config.model_dump(mode="json")
        return validate_config(deep_merge(base, overrides) if overrides else base, "config")
    if isinstance(config, dict):
        return load_config(preset, None, deep_merge(config, overrides))
    return load_config(preset, config, overrides or None)


def search(
    data: FaceData | str | None = None,
    *,
    space: SearchSpace | str | None = None,
    strategy: Strategy | str | None = None,
    config: Config | dict[str, Any] | str | Path | None = None,
    preset: str = "quick",
    store: Store | str | None = None,
    progress: ProgressCallback | None = None,
    resume: int | None = None,
    **search_options: Any,
) -> SearchResult:
    """Search an architecture; returns a :class:`~automl.nas.job.SearchResult`.

    ``data``: a :class:`~automl.data.FaceData` (e.g. from :func:`face_data`), a ``KIND:PATH`` spec,
    or None (the config's, ``synth:fer`` by default). ``search_options`` are ``[search]`` keys
    (seed, device, epochs_scale, max_mflops, cpu_threads...). ``resume=RUN_ID`` continues an
    interrupted search of ``store`` from its stored config.
    """
    from automl.nas.job import resume_config, search_job

    if resume is not None:
        if store is None:
            raise ValueError("resume needs the store holding the run")
        return search_job(resume_config(store, resume), store, resume=resume, progress=progress)
    options = dict(search_options)
    if isinstance(space, str):
        options["space"] = space
    if isinstance(strategy, str):
        options["strategy"] = strategy
    in_memory = data is not None and not isinstance(data, str)
    if isinstance(data, str):
        options["data"] = data
    elif in_memory:
        options.setdefault("task", data.task)  # type: ignore[union-attr]
    cfg = resolve_config(config, preset=preset, search=options)
    if in_memory:
        cfg.search.data = f"memory:{data.name}"  # type: ignore[union-attr]
    return search_job(
        cfg,
        store,
        data=data if in_memory else None,  # type: ignore[arg-type]
        progress=progress,
        space=None if isinstance(space, str) else space,
        strategy=None if isinstance(strategy, str) else strategy,
    )


def train(
    target: dict[str, Any] | str | int | Path,
    data: FaceData | str | None = None,
    *,
    config: Config | dict[str, Any] | str | Path | None = None,
    preset: str | None = None,
    store: Store | str | None = None,
    progress: ProgressCallback | None = None,
    out: str | Path | None = None,
    **options: Any,
) -> TrainJobResult:
    """Train ``target`` (a genotype dict such as ``search(...).genotype``, a genotype JSON file,
    or a search run id of ``store``) from scratch; returns a
    :class:`~automl.train_job.TrainJobResult` (``.model``, ``.metrics``, ``.checkpoint``, ``.signal``).

    The configuration starts from the search run's stored one (a run id) or the ``quick`` preset
    (``preset`` replaces either), then ``config``, then ``options`` (``[train]`` keys: epochs, lr,
    init_channels...). ``data``: a :class:`~automl.data.FaceData` or a ``KIND:PATH`` spec. Without
    a store the checkpoint goes to ``out``.
    """
    from automl.train_job import train_job

    sections: dict[str, dict[str, Any]] = {"train": dict(options)}
    in_memory = data is not None and not isinstance(data, str)
    if isinstance(data, str):
        sections["search"] = {"data": data}
    elif in_memory:
        sections["search"] = {"task": data.task}  # type: ignore[union-attr]
    cfg = job_config(target, store, config, preset, sections)
    frame = data if in_memory else None
    return train_job(target, store, config=cfg, data=frame, progress=progress, out=out)  # type: ignore[arg-type]


def export(
    run_id: int, fmt: str = "torchscript", *, store: Store | str, out: str | Path | None = None
) -> ExportInfo:
    """Export run ``run_id`` of ``store`` in ``fmt`` (one of
    :data:`automl.export_formats.EXPORT_FORMATS`); returns where it went and what it holds
    (:class:`~automl.exporting.ExportInfo`)."""
    from automl.export_job import export_run

    return export_run(store, run_id, fmt, out)


def tune(
    target: dict[str, Any] | str | int | Path,
    *,
    store: Store | str,
    data: str | None = None,
    config: Config | dict[str, Any] | str | Path | None = None,
    preset: str | None = None,
    trials: int = 20,
    objectives: tuple[str, ...] = ("accuracy",),
    sampler: Any = "tpe",
    pruner: Any = "median",
    workers: int = 1,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> TuneResult:
    """Tune the training hyper-parameters of ``target`` with an Optuna study in ``store``; returns
    a :class:`~automl.hpo_job.TuneResult`. ``data`` is a ``KIND:PATH`` spec (trials may run in
    worker processes, which load it themselves); ``sampler`` / ``pruner``: a name of
    :mod:`automl.hpo_registry` or an Optuna object; ``options`` are ``[train]`` keys."""
    from automl.hpo_job import tune_job

    sections = {"train": dict(options), "search": {"data": data} if data else {}}
    cfg = job_config(target, store, config, preset, sections)
    return tune_job(target, store, config=cfg, trials=trials,
                    objectives=tuple(objectives), sampler=sampler, pruner=pruner, workers=workers,
                    progress=progress)  # fmt: skip


def job_config(
    target: Any,
    store: Store | str | None,
    config: Config | dict[str, Any] | str | Path | None,
    preset: str | None,
    sections: dict[str, dict[str, Any]],
) -> Config:
    """A train or tune job's configuration: a search run's stored config when ``target`` is one
    (else the ``quick`` preset; an explicit ``preset`` replaces either), then ``config``, then
    ``sections``. A :class:`Config` object is taken as the base itself."""
    from automl.config import layer_config
    from automl.train_job import train_config

    overrides = {name: dict(values) for name, values in sections.items() if values}
    if isinstance(config, Config):
        return resolve_config(config, **overrides)
    base = train_config(target, store, preset=preset).model_dump(mode="json")
    if isinstance(config, dict):
        return validate_config(deep_merge(deep_merge(base, config), overrides), "config")
    return layer_config(base, "the job's base config", config, overrides)
