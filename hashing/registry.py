"""The one list of hashers the package has, by name: what ``create_hasher``, the index and the
benchmark all use.

A name is looked up case-insensitively (``"bsodh"``, ``"BSODH"``); an index manifest stores the
registered spelling and :meth:`hashing.index.HashIndex.load` resolves it here, so a manifest can
only ever pick one of these classes -- never a module to import. Code that defines its own
:class:`~hashing.base.OnlineHasher` adds it with :func:`register_hasher` before building or
loading an index that uses it.

Every entry also carries the parameters the MIHash framework's benchmark runs it with
(``bench_params``), so :func:`hashing.bench.make_methods` is a loop over this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hashing.base import OnlineHasher
from hashing.baselines import ITQ, LSH, OKH, OSH, AdaptHash, SketchHash
from hashing.bsodh import BSODH, PRESETS
from hashing.errors import HashingError, UnknownHasherError
from hashing.hmoh import HMOH
from hashing.hmoh import bench_params as hmoh_bench_params


def _no_params(n_bits: int, d: int, preset: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class HasherSpec:
    """One registered hasher: its name, class and how the benchmark configures it."""

    name: str
    cls: type[OnlineHasher]
    online: bool = True  # learns from a stream (ITQ refits on everything seen: an offline reference)
    bench_label: str = ""  # the method's name in benchmark tables (default: ``name``)
    bench_params: Callable[[int, int, str], dict[str, Any]] = field(default=_no_params)

    @property
    def label(self) -> str:
        return self.bench_label or self.name


_REGISTRY: dict[str, HasherSpec] = {}


def register_hasher(spec_or_name: HasherSpec | str, cls: type[OnlineHasher] | None = None) -> HasherSpec:
    """Add a hasher class under a name (``register_hasher("MyHash", MyHash)``, or a full
    :class:`HasherSpec`). Registering a taken name for a different class is an error."""
    spec = spec_or_name if isinstance(spec_or_name, HasherSpec) else HasherSpec(str(spec_or_name), cls)  # type: ignore[arg-type]
    if not (isinstance(spec.cls, type) and issubclass(spec.cls, OnlineHasher)):
        raise HashingError(f"hasher {spec.name!r}: {spec.cls!r} is not an OnlineHasher subclass")
    if not spec.name or not spec.name.replace("_", "").replace("-", "").isalnum():
        raise HashingError(f"hasher names are letters, digits, '-' and '_', not {spec.name!r}")
    taken = _REGISTRY.get(spec.name.lower())
    if taken is not None and taken.cls is not spec.cls:
        raise HashingError(f"hasher name {spec.name!r} is already registered for {taken.cls.__name__}")
    _REGISTRY[spec.name.lower()] = spec
    return spec


def hasher_names() -> list[str]:
    """Registered names, in registration order (BSODH first)."""
    return [spec.name for spec in _REGISTRY.values()]


def hasher_spec(name: str) -> HasherSpec:
    """The entry for ``name`` (any case); :class:`UnknownHasherError` names the known ones."""
    spec = _REGISTRY.get(str(name).lower()) if isinstance(name, str) else None
    if spec is None:
        raise UnknownHasherError(
            f"unknown hasher {name!r}: use one of {', '.join(hasher_names())}", param="hasher"
        )
    return spec


def registered_name(hasher: OnlineHasher | type[OnlineHasher]) -> str:
    """The registered name of a hasher (instance or class); unregistered -> HashingError."""
    cls = hasher if isinstance(hasher, type) else type(hasher)
    for spec in _REGISTRY.values():
        if spec.cls is cls:
            return spec.name
    raise UnknownHasherError(
        f"hasher class {cls.__name__} is not registered: call hashing.register_hasher"
        f"({cls.__name__!r}, {cls.__name__}) first, so that a saved index can name it",
        param="hasher",
    )


def create_hasher(name_or_object: str | OnlineHasher | type[OnlineHasher], **params: Any) -> OnlineHasher:
    """A hasher from a registered name and its parameters, e.g.
    ``create_hasher("bsodh", n_bits=64, preset="cifar10", seed=0)`` or
    ``create_hasher("OSH", n_bits=32, stepsize=0.1)``.

    An already-built hasher is returned as it is (parameters are then an error: they would be
    silently ignored); an :class:`~hashing.base.OnlineHasher` subclass is instantiated with
    ``params``. BSODH also takes ``preset`` (a key of :data:`hashing.bsodh.PRESETS`), whose
    values the explicit parameters override. Bad parameters -> :class:`HashingError`.
    """
    if isinstance(name_or_object, OnlineHasher):
        if params:
            raise HashingError(
                f"parameters {sorted(params)} were given with an already-built "
                f"{type(name_or_object).__name__}; pass a name to build a new one",
                param="hasher",
            )
        return name_or_object
    if isinstance(name_or_object, type) and issubclass(name_or_object, OnlineHasher):
        cls, label = name_or_object, name_or_object.__name__
    else:
        spec = hasher_spec(name_or_object)  # type: ignore[arg-type]
        cls, label = spec.cls, spec.name
    if "preset" in params:
        preset = params.pop("preset")
        if cls is not BSODH:
            raise HashingError(f"preset is a BSODH parameter, not one of {label}", param="preset")
        if preset not in PRESETS:
            raise HashingError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}", param="preset")
        params = {**PRESETS[preset], **params}
    try:
        return cls(**params)
    except TypeError as exc:
        raise HashingError(f"bad parameters for {label}: {exc}", param="hasher") from None


def _sketch_params(n_bits: int, d: int, preset: str) -> dict[str, Any]:
    return {"sketch_size": min(200, d - d % 2), "batch_size": max(50, n_bits)}


for _spec in (
    # The framework's protocol feeds BSODH features already centred and unit-length.
    HasherSpec(
        "BSODH", BSODH, bench_params=lambda r, d, p: {"center": False, "normalize": False, **PRESETS[p]}
    ),
    # The official script's lr and Hadamard order per dataset (hashing.hmoh.PRESETS).
    HasherSpec("HMOH", HMOH, bench_params=hmoh_bench_params),
    HasherSpec("OKH", OKH, bench_params=lambda r, d, p: {"c": 0.1, "alpha": 0.2}),
    HasherSpec("OSH", OSH, bench_params=lambda r, d, p: {"stepsize": 0.1, "sgd_boost": True}),
    HasherSpec(
        "AdaptHash", AdaptHash, bench_params=lambda r, d, p: {"alpha": 0.9, "beta": 1e-2, "stepsize": 1.0}
    ),
    HasherSpec("SketchHash", SketchHash, bench_params=_sketch_params),
    HasherSpec("LSH", LSH),
    HasherSpec("ITQ", ITQ, online=False, bench_label="ITQ (offline)"),
):
    register_hasher(_spec)
