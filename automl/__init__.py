"""face-automl: architecture search (DDPNAS, DARTS, random WS) for facial AU detection and FER,
online hashing retrieval, and a run store. The public API (see :mod:`automl.api`):

* data: :func:`load_data` (a ``KIND:PATH`` spec), :func:`face_data` (your own tensors);
* jobs: :func:`search`, :func:`train`, :func:`tune`, :func:`export`, :func:`predict` (a trained
  network on photos, folders and videos; :func:`load_face_model` loads an export once);
* registries: :func:`create_space`, :func:`create_strategy`, :func:`create_hasher`;
* the store: :func:`open_store` (``with store.run(kind=...) as run:`` is the run lifecycle).

Names resolve lazily, so ``import automl`` (and ``automl --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "search": "automl.api",
    "train": "automl.api",
    "tune": "automl.api",
    "export": "automl.api",
    "predict": "automl.prediction",
    "PredictResult": "automl.prediction",
    "load_face_model": "automl.face_model",
    "resolve_config": "automl.api",
    "load_data": "automl.data",
    "face_data": "automl.data.arrays",
    "FaceData": "automl.data",
    "SearchResult": "automl.nas.job",
    "Config": "automl.config",
    "load_config": "automl.config",
    "create_space": "search_spaces.registry",
    "create_strategy": "automl.nas.strategies",
    "register_strategy": "automl.nas.strategies",
    "create_hasher": "hashing",
    "open_store": "automl.store",
    "Store": "automl.store",
    "UserError": "automl.errors",
    "ProgressEvent": "automl.progress",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'automl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
