"""Typed configuration: one pydantic model per concern, TOML files, presets.

Why pydantic with ``extra="forbid"``: a typo in a TOML file (``learning_rate`` for ``lr``) must be
an error naming the key, not a silently ignored setting that wastes a GPU-day. The resolved config
is stored with every run (``Config.model_dump()``), so a run can be reproduced from the store.

Presets: ``quick`` finishes a search in minutes on a 2-core CPU; ``paper`` is the authors'
CIFAR-10 setting (docs/algorithms.md, DDPNAS). A ``--config FILE`` is layered on top of the preset and
command-line options on top of both.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from automl.errors import UserError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


BUILTIN_SPACES = ("darts", "mobilenet", "face")
SEED_MAX = 2**32 - 1
"""The largest seed: numpy's legacy RNG takes 32 bits, and the store keeps the seed as an integer."""


def seed_problem(seed: int) -> str | None:
    """Why ``seed`` cannot seed the RNGs or be stored (None when it can)."""
    if not 0 <= seed <= SEED_MAX:
        return f"the seed must be between 0 and 2**32-1 ({SEED_MAX}), not {seed}"
    return None


def check_seed(seed: int) -> int:
    """``seed`` when it is in 0..SEED_MAX, else a one-line :class:`UserError`."""
    problem = seed_problem(int(seed))
    if problem:
        raise UserError(problem, argument="seed")
    return seed


class SearchSection(_Section):
    """What to search, on what, with which strategy."""

    space: str = Field(
        "darts", description="darts, mobilenet, face, or nni:module:ClassName (a user's NNI ModelSpace)."
    )
    task: Literal["fer", "au"] = "fer"
    data: str = "synth:fer"
    strategy: str = "ddpnas"  # a name in the registry of automl.nas.strategies
    seed: int = Field(
        0,
        description="Seeds the RNGs (numpy, torch) and is stored with the run: 0 to 2**32-1 (SEED_MAX).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    epochs_scale: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="DARTS / random WS: multiplies their epoch budgets. DDPNAS: multiplies the length of "
        "an epoch (optimiser steps), because its epoch count follows from the ops and pruning_step.",
    )
    steps_per_epoch: int | Literal["pass"] = Field(
        "pass",
        description="Optimiser steps in one search epoch, or \"pass\": one pass over the train split "
        "(the authors' epoch). A fixed step count keeps a small data set from making epochs too short "
        "to learn from; batches then cycle through reshuffled passes.",
    )
    max_mflops: float | None = Field(None, gt=0)
    max_params: float | None = Field(None, gt=0, description="Parameter budget in millions.")
    precision: Literal["float32", "float64"] = Field(
        "float32",
        description="float64 makes runs with different process counts agree to float64 rounding, "
        "which keeps their discrete choices identical (slow; CPU).",
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads on CPU for search, train, hpo (each worker) and index "
        "build (None: torch's default; --cpu-threads overrides). Tiny networks run faster on 1 "
        "thread, and 2 threads on a busy 2-core machine can be many times slower (automl.threads).",
    )


    @field_validator("seed")
    @classmethod
    def _seed_range(cls, value: int) -> int:
        problem = seed_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("steps_per_epoch", mode="before")
    @classmethod
    def _steps_value(cls, value: Any) -> Any:
        if value == "pass" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f'use a positive number of optimiser steps or "pass" (one pass), not {value!r}')

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from automl.nas.strategies import strategy_names  # cheap: no torch until a factory runs

        if value not in strategy_names():
            raise ValueError(f"unknown strategy '{value}' (choose one of: {', '.join(strategy_names())})")
        return value

    @field_validator("space")
    @classmethod
    def _known_space(cls, value: str) -> str:
        if value in BUILTIN_SPACES:
            return value
        if value.startswith("nni:") and value.count(":") >= 2 and all(value.split(":")[1:]):
            return value
        raise ValueError(
            f"unknown search space '{value}' (use {', '.join(BUILTIN_SPACES)} or nni:module:ClassName)"
        )


class DataSection(_Section):
    image_size: int | None = Field(None, ge=8, le=224, description="None: the dataset's native size.")
    channels: Literal[1, 3] | None = None
    n: int | None = Field(None, ge=10, description="Cap on samples (synth: how many to render).")
    fold: Literal[1, 2, 3] | None = None
    val_fraction: float = Field(0.1, gt=0, lt=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    augment: bool = True


class SupernetSection(_Section):
    init_channels: int = Field(8, ge=1)
    layers: int = Field(5, ge=1)
    nodes: int = Field(4, ge=1)
    stem_multiplier: int = Field(3, ge=1)


class OptimSection(_Section):
    """Weight optimiser of the supernet (author defaults: SGD 0.1, momentum 0.9, wd 3e-4, clip 5)."""

    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(3e-4, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    lr_decay: float = Field(0.1, gt=0, le=1)
    lr_decay_every: int | None = Field(None, ge=1, description="None: 50*(K/8)*(step/3) as the authors.")


class DDPNASSection(_Section):
    pruning_step: int = Field(3, ge=1, description="Rounds between distribution updates.")
    warmup_epochs: int = Field(0, ge=0)
    update_rule: Literal["v1", "v3"] = "v1"
    momentum_gamma: float = Field(0.8, ge=0, lt=1)
    temperature: float = Field(100.0, gt=0, description="softmax(temperature * accuracy).")
    skip_caps: list[int] = Field(default_factory=lambda: [2, 3, 4, 5, 6])


class DartsSection(_Section):
    """DARTS first order (baseline): mixed ops, Adam on the alphas, cosine SGD on the weights."""

    epochs: int = Field(50, ge=1)
    arch_lr: float = Field(3e-4, gt=0)
    arch_weight_decay: float = Field(1e-3, ge=0)
    weight_lr: float = Field(0.025, gt=0, description="SGD lr of the supernet weights (DARTS: 0.025).")


class RandomSection(_Section):
    """Random search with weight sharing (baseline): a random path per batch, then rank candidates."""

    epochs: int = Field(50, ge=1)
    candidates: int = Field(10, ge=1, description="Random architectures ranked on the trained supernet.")
    weight_lr: float = Field(0.025, gt=0, description="SGD lr of the supernet weights (cosine).")


class TrainSection(_Section):
    """Final training of a discrete network from scratch."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(96, ge=1)
    lr: float = Field(0.025, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(3e-4, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    init_channels: int = Field(16, ge=1)
    layers: int = Field(8, ge=1)
    auxiliary_weight: float = Field(0.4, ge=0)
    drop_path: float = Field(0.2, ge=0, lt=1)
    amp: bool = True
    augment: bool = Field(
        True, description="Augmentation on the device, as [augment] sets it (default: flips only)."
    )
    eval_every: int = Field(
        1, ge=1, description="Evaluate the test split every N epochs (and after the last)."
    )


class AugmentSection(_Section):
    """What ``train.augment`` / ``data.augment`` switch on; sizes are fractions of the image side.

    Built into an :class:`automl.data.augment.Augment` by :func:`automl.data.augment.build_augment`
    (the search uses only the crop and the flip). Fractions, not pixels: the old fixed 4 px padding
    and 8 px cutout were a quarter / half of a 16 px image. Default: flips only (where the data
    allows them), the best of the settings measured at 10 epochs on synthetic faces and on MNIST
    digits (numbers in ``build_augment``); crops, rotation, colour and cutout are opt-in.
    """

    flip: Literal["auto"] | bool = Field(
        "auto",
        description="Random horizontal flips: auto = the data set's say (faces, cifar10: yes; "
        "folder: no, digits and text are not mirror-invariant), or true / false.",
    )
    crop_fraction: float = Field(
        0.0, ge=0, lt=0.5, description="Random-crop zero padding, a fraction of the side (0: off)."
    )
    rotate_deg: float = Field(0.0, ge=0, le=180, description="Maximum absolute rotation in degrees.")
    brightness: float = Field(0.0, ge=0, lt=1, description="Maximum relative brightness change.")
    contrast: float = Field(0.0, ge=0, lt=1, description="Maximum relative contrast change.")
    cutout_fraction: float = Field(
        0.0, ge=0, le=1, description="Side of the zeroed cutout square, a fraction of the side (0: off)."
    )

    @field_validator("flip", mode="before")
    @classmethod
    def _flip_value(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError(f"use \"auto\", true or false, not {value!r}")


class Config(_Section):
    search: SearchSection = Field(default_factory=SearchSection)
    data: DataSection = Field(default_factory=DataSection)
    supernet: SupernetSection = Field(default_factory=SupernetSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    ddpnas: DDPNASSection = Field(default_factory=DDPNASSection)
    darts: DartsSection = Field(default_factory=DartsSection)
    random: RandomSection = Field(default_factory=RandomSection)
    train: TrainSection = Field(default_factory=TrainSection)
    augment: AugmentSection = Field(default_factory=AugmentSection)


PRESETS_DIR = Path(__file__).parent / "presets"
PRESET_NAMES = ("quick", "paper")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path} (name an existing TOML file)", argument="config_file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}", argument="config_file") from None


def _valid_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed beside the unknown key at ``loc`` (None when its section is not a model)."""
    model: Any = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return list(model.model_fields)


def _override_argument(loc: tuple[Any, ...], overrides: dict[str, Any] | None) -> str | None:
    """The caller's argument a bad value came from: the last part of ``loc`` when ``overrides``
    (the arguments, as nested dicts) set that key; None when the value came from a file."""
    node: Any = overrides
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return str(loc[-1]) if loc else None


def _validation_message(exc: ValidationError, source: str | None) -> str:
    """One line for pydantic's first complaint; ``source`` (the file, the preset) prefixes it."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    prefix = f"{source}: " if source else ""
    if err["type"] == "extra_forbidden":
        keys = _valid_keys(tuple(err["loc"]))
        hint = f"; the valid keys there: {', '.join(keys)}" if keys else ""
        return f"{prefix}unknown key '{key}' (check the spelling{hint})"
    msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
    return f"{prefix}bad value for '{key}': {msg}"


def validate_config(
    raw: dict[str, Any], source: str = "config", overrides: dict[str, Any] | None = None
) -> Config:
    """``raw`` as a :class:`Config`; a bad key or value is a one-line :class:`UserError` naming
    ``source``, or -- for a value set by ``overrides`` (the caller's arguments, already merged
    into ``raw``) -- naming that argument."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        loc = tuple(exc.errors()[0]["loc"])
        argument = _override_argument(loc, overrides)
        where = None if argument is not None else source  # an argument's value: not the file's
        raise UserError(_validation_message(exc, where), argument=argument) from None


def preset(name: str) -> dict[str, Any]:
    if name not in PRESET_NAMES:
        raise UserError(
            f"unknown preset '{name}' (choose one of: {', '.join(PRESET_NAMES)})", argument="preset"
        )
    return _read_toml(PRESETS_DIR / f"{name}.toml")


def load_config(
    preset_name: str = "quick",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Preset, then the TOML file, then command-line overrides (nested dicts), validated once."""
    return layer_config(preset(preset_name), f"preset '{preset_name}'", config_file, overrides)


def layer_config(
    base: dict[str, Any],
    source: str,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """``base`` (a preset, or a run's stored config, named ``source`` in errors), then the TOML
    ``config_file``, then ``overrides`` (nested dicts), validated once: the one layering path."""
    raw = dict(base)
    if config_file is not None:
        raw = _deep_merge(raw, _read_toml(Path(config_file)))
        source = str(config_file)
    if overrides:
        raw = _deep_merge(raw, overrides)
    return validate_config(raw, source, overrides)
