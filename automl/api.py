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
    from automl.export import ExportInfo
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
    preset: str = "quick",
    store: Store | str | None = None,
    progress: ProgressCallback | None = None,
    out: str | Path | None = None,
    **options: Any,
) -> TrainJobResult:
    """Train ``target`` (a genotype dict such as ``search(...).genotype``, a genotype JSON file,
    or a search run id of ``store``) from scratch; returns a
    :class:`~automl.train_job.TrainJobResult` (``.model``, ``.metrics``, ``.checkpoint``, ``.signal``).

    ``data``: a :class:`~automl.data.FaceData` or a ``KIND:PATH`` spec; ``options`` are ``[train]``
    keys (epochs, lr, init_channels...); without a store the checkpoint goes to ``out``.
    """
    from automl.train_job import train_job

    sections: dict[str, dict[str, Any]] = {"train": dict(options)}
    in_memory = data is not None and not isinstance(data, str)
    if isinstance(data, str):
        sections["search"] = {"data": data}
    elif in_memory:
        sections["search"] = {"task": data.task}  # type: ignore[union-attr]
    cfg = resolve_config(config, preset=preset, **sections)
    frame = data if in_memory else None
    return train_job(target, store, config=cfg, data=frame, progress=progress, out=out)  # type: ignore[arg-type]


def export(
    run_id: int, fmt: str = "torchscript", *, store: Store | str, out: str | Path | None = None
) -> ExportInfo:
    """Export run ``run_id`` of ``store`` in ``fmt`` (one of
    :data:`automl.export_formats.EXPORT_FORMATS`); returns where it went and what it holds
    (:class:`~automl.export.ExportInfo`)."""
    from automl.export_job import export_run

    return export_run(store, run_id, fmt, out)
