"""The tiny DARTS-space search the NAS tests share: 8 px faces, 2-channel supernet, 1-node cells,
one-pass epochs (the authors' epoch), pruning every round -- seconds per search on one core."""

from __future__ import annotations

from typing import Any

from automl.config import Config, load_config

TINY: dict[str, dict[str, Any]] = {
    "search": {"device": "cpu", "space": "darts", "steps_per_epoch": "pass"},
    "data": {"image_size": 8, "n": 40, "batch_size": 64},
    "supernet": {"init_channels": 2, "layers": 3, "nodes": 1},
    "ddpnas": {"pruning_step": 1},
    "darts": {"epochs": 3},
    "random": {"epochs": 3, "candidates": 3},
    "train": {"init_channels": 4, "layers": 3},
}


def tiny_config(base: dict[str, dict[str, Any]] | None = None, **sections: dict[str, Any]) -> Config:
    """The quick preset under ``base`` (default :data:`TINY`), then ``sections`` merged per section."""
    over = {k: dict(v) for k, v in (base or TINY).items()}
    for name, values in sections.items():
        over.setdefault(name, {}).update(values)
    return load_config("quick", overrides=over)
