"""A user's NNI ``ModelSpace`` behind our :class:`~search_spaces.base.SearchSpace` protocol.

``automl search --space nni:my_module:MySpace`` runs DDPNAS (or our DARTS / random search) over a
space written for NNI 3.0, without NNI's experiment machinery (and so without its web server):

* **Decisions.** Every leaf mutable of ``space.simplify()`` is one row of the distribution: a
  ``LayerChoice`` / ``nni.choice`` (``Categorical``) has its values as candidates; an
  ``InputChoice`` picking ``n_chosen`` of ``n`` inputs (``CategoricalMultiple``) has every
  ``n_chosen``-subset as a candidate, because DDPNAS prunes one categorical per row and a subset is
  what the network actually consumes. Continuous mutables have no categorical distribution to
  prune, so they are refused with a message naming the label.
* **Weight sharing** goes through NNI's own one-shot supernets: ``single_path`` mode converts the
  space with the mutation hooks of NNI's ``RandomOneShot`` (path-sampling layers), and
  ``set_sample`` hands the sampled ``{label: value}`` to every NNI super-module's ``resample``;
  ``mixed`` mode (our DARTS) uses the hooks of NNI's ``DARTS`` (softmax-weighted mixtures whose
  ``_arch_alpha`` are our architecture parameters; ``export_probs`` gives the weight rows).
* **Stand-alone networks** come from NNI's freezing API: ``space.freeze(arch)`` on a fresh
  instance, after ``check_contains`` validated the architecture.

A genotype is ``{"space": "nni:<target>", "arch": {label: value}}`` -- exactly NNI's frozen
architecture dict, so it round-trips through NNI unchanged.

The class is built with the keyword arguments it accepts among ``in_channels``, ``num_outputs``
(or ``num_classes``), ``image_size``, ``init_channels`` and ``layers``; any other argument needs a
default. Importing this module needs the optional ``nni`` extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.base import Decision, Genotype, SupernetMode
from search_spaces.nni_import import ModelSpace
from search_spaces.nni_import import nni_mutable as nm
from search_spaces.ops import count_mflops, count_params
from search_spaces.registry import AllowUserCode, check_user_code

PREFIX = "nni:"
SIZE_ARGUMENTS = ("in_channels", "num_outputs", "num_classes", "image_size", "init_channels", "layers")
_PROBE_SIZES = {"in_channels": 1, "num_outputs": 7, "image_size": 48}
"""Sizes used only to list a space's decisions before any data is known."""


def _import_target(target: str, *, allow_user_code: AllowUserCode = False) -> type:
    """``module:Class`` (importable, the working directory included) or ``path/file.py:Class``.

    Imports (runs) the user's module, so only as :func:`search_spaces.registry.check_user_code`
    allows: ``allow_user_code`` is the user's explicit choice of ``nni:<target>``.
    """
    check_user_code(PREFIX + target, allow_user_code)
    module_name, sep, class_name = target.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"NNI space '{target}' must be 'module:ClassName' or 'path/to/file.py:ClassName'")
    try:
        if module_name.endswith(".py") or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise ValueError(f"NNI space file {path} does not exist")
            spec = importlib.util.spec_from_file_location(f"_automl_nni_space_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            cwd = str(Path.cwd())
            if cwd not in sys.path:  # like `python -m`: the user's own modules next to them
                sys.path.insert(0, cwd)
            module = importlib.import_module(module_name)
    except ValueError:
        raise
    except Exception as exc:  # the user's module failed to import: say which and why
        raise ValueError(
            f"cannot import NNI space module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"module '{module_name}' has no class '{class_name}'")
    if not (isinstance(cls, type) and issubclass(cls, ModelSpace)):
        raise ValueError(f"'{target}' is not an NNI ModelSpace subclass (nni.nas.nn.pytorch.ModelSpace)")
    return cls


class _Row:
    """One decision: its label and the NNI values of its candidates (in candidate order)."""

    def __init__(self, label: str, values: list[Any]):
        self.label = label
        self.values = values

    @property
    def names(self) -> tuple[str, ...]:
        return tuple("+".join(map(str, v)) if isinstance(v, list) else str(v) for v in self.values)


def _rows_of(space: ModelSpace) -> list[_Row]:
    rows: list[_Row] = []
    for label, mutable in space.simplify().items():
        if isinstance(mutable, nm.Categorical):
            rows.append(_Row(label, list(mutable.values)))
        elif isinstance(mutable, nm.CategoricalMultiple):
            n_chosen = mutable.n_chosen
            if n_chosen is None:
                raise ValueError(
                    f"decision '{label}' chooses any number of inputs (n_chosen=None); DDPNAS needs a fixed "
                    "n_chosen so that each subset is one candidate"
                )
            combos = [list(c) for c in itertools.combinations(mutable.values, n_chosen)]
            rows.append(_Row(label, combos))
        else:
            raise ValueError(
                f"decision '{label}' is a {type(mutable).__name__}; DDPNAS searches categorical choices "
                "(LayerChoice, InputChoice, nni.choice) only"
            )
    if not rows:
        raise ValueError("the NNI space has no LayerChoice / InputChoice / nni.choice to search")
    return rows


class NNISupernet(nn.Module):
    """An NNI space converted by NNI's one-shot hooks, driven through our Supernet protocol."""

    def __init__(self, net: nn.Module, rows: list[_Row], mode: SupernetMode):
        super().__init__()
        from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

        self.net = net
        self.mode = mode
        self._rows = rows
        self._super_modules = [m for m in net.modules() if isinstance(m, BaseSuperNetModule)]
        self._arch: list[nn.Parameter] = []
        if mode == "mixed":
            seen: set[int] = set()
            for name, p in net.named_parameters():
                if "_arch_alpha" in name and id(p) not in seen:
                    seen.add(id(p))
                    self._arch.append(p)
        self._sampled = False

    def set_sample(self, choice: Sequence[int]) -> None:
        if len(choice) != len(self._rows):
            raise ValueError(
                f"sample has {len(choice)} entries, expected {len(self._rows)} (one per decision)"
            )
        memo: dict[str, Any] = {}
        for row, c in zip(self._rows, choice, strict=True):
            if not 0 <= int(c) < len(row.values):
                raise ValueError(f"sample picks candidate {c} of '{row.label}', which has {len(row.values)}")
            memo[row.label] = row.values[int(c)]
        for module in self._super_modules:
            module.resample(memo)
        self._sampled = True

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self._arch)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self._arch}
        return [p for p in self.net.parameters() if id(p) not in arch]

    def arch_weights(self) -> np.ndarray:
        """Mixed mode: one row per decision of candidate probabilities (padded with zeros).

        For an input subset the row is the product of its members' probabilities, renormalised:
        the subset NNI's DARTS would export (its top-``n_chosen`` inputs) is the row's arg-max.
        """
        probs: dict[str, dict[Any, float]] = {}
        with torch.no_grad():
            for module in self._super_modules:
                exporter = getattr(module, "export_probs", None)
                if exporter is not None:
                    probs.update(exporter({}))
        width = max(len(r.values) for r in self._rows)
        w = np.zeros((len(self._rows), width))
        for i, row in enumerate(self._rows):
            p = probs.get(row.label)
            if p is None:
                raise ValueError(f"NNI reported no architecture weights for '{row.label}'")
            for k, value in enumerate(row.values):
                members = value if isinstance(value, list) else [value]
                w[i, k] = math.prod(float(p.get(m, 0.0)) for m in members)
            total = w[i].sum()
            if total > 0:
                w[i] /= total
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "single_path" and not self._sampled:
            raise RuntimeError("single-path supernet: call set_sample(choice) before forward")
        return self.net(x)


class NNISpace:
    """Search space ``nni:<target>`` (see the module docstring)."""

    def __init__(
        self, target: str, task: str | None = None, *, allow_user_code: AllowUserCode = False, **unused: Any
    ):
        self.target = target[len(PREFIX):] if target.startswith(PREFIX) else target
        self.name = PREFIX + self.target
        self.task = task
        self.cls = _import_target(self.target, allow_user_code=allow_user_code)
        # Listed now, so that a space DDPNAS cannot search is refused when it is named.
        self._rows: list[_Row] = _rows_of(self.instantiate(_PROBE_SIZES))

    # --- instances ---------------------------------------------------------------------------
    def init_kwargs(self, sizes: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments the user's class accepts among ``sizes`` (and their aliases)."""
        params = inspect.signature(getattr(self.cls, "_init_wrapped", self.cls.__init__)).parameters
        given = dict(sizes)
        if "num_outputs" in given:
            given.setdefault("num_classes", given["num_outputs"])
        kwargs = {k: v for k, v in given.items() if k in params and k in SIZE_ARGUMENTS}
        for name, p in params.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is p.empty and name not in kwargs:
                raise ValueError(
                    f"{self.cls.__name__}.__init__ needs '{name}', which automl cannot supply "
                    f"(it passes {', '.join(SIZE_ARGUMENTS)}): give it a default"
                )
        return kwargs

    def instantiate(self, sizes: Mapping[str, Any]) -> ModelSpace:
        kwargs = self.init_kwargs(sizes)
        try:
            return self.cls(**kwargs)
        except Exception as exc:
            raise ValueError(f"{self.cls.__name__}({kwargs}) failed: {type(exc).__name__}: {exc}") from None

    def _all_rows(self) -> list[_Row]:
        return self._rows

    # --- decisions ---------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return [Decision(r.label, r.names) for r in self._all_rows()]

    def arch_of(self, choice: Sequence[int]) -> dict[str, Any]:
        rows = self._all_rows()
        if len(choice) != len(rows):
            raise ValueError(f"choice has {len(choice)} entries, expected {len(rows)} (one per decision)")
        return {r.label: r.values[int(c)] for r, c in zip(rows, choice, strict=True)}

    # --- networks ----------------------------------------------------------------------------
    def supernet(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        mode: SupernetMode = "single_path",
        **options: Any,
    ) -> NNISupernet:
        from nni.nas.strategy import DARTS, RandomOneShot

        space = self.instantiate(
            {"in_channels": in_channels, "num_outputs": num_outputs, "image_size": image_size, **options}
        )
        rows = _rows_of(space)
        if mode == "single_path":
            net = RandomOneShot().mutate_model(space)
        elif mode == "mixed":
            net = DARTS().mutate_model(space)
        else:
            raise ValueError(f"unknown supernet mode '{mode}' (use 'single_path' or 'mixed')")
        return NNISupernet(net, rows, mode)

    def network(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> nn.Module:
        g = self.validate_genotype(genotype)
        space = self.instantiate(
            {"in_channels": in_channels, "num_outputs": num_outputs, "image_size": image_size, **options}
        )
        problem = space.check_contains(g["arch"])
        if problem is not None:
            raise ValueError(f"architecture does not fit {self.name}: {problem}")
        return space.freeze(g["arch"])

    # --- genotypes ---------------------------------------------------------------------------
    def genotype_from_choice(self, choice: Sequence[int]) -> Genotype:
        return {"space": self.name, "arch": self.arch_of(choice)}

    def derive_genotype(self, weights: np.ndarray, *, skip_cap: int | None = None) -> Genotype:
        w = np.asarray(weights, dtype=float)
        rows = self._all_rows()
        if w.ndim != 2 or w.shape[0] != len(rows):
            raise ValueError(f"weights must have one row per decision ({len(rows)}), got shape {w.shape}")
        choice = [int(np.argmax(w[i, : len(r.values)])) for i, r in enumerate(rows)]
        return self.genotype_from_choice(choice)

    def validate_genotype(self, genotype: Genotype) -> Genotype:
        if not isinstance(genotype, dict):
            raise ValueError(f"an NNI genotype must be a JSON object, got {type(genotype).__name__}")
        if genotype.get("space") != self.name:
            raise ValueError(f"genotype is for space '{genotype.get('space')}', not '{self.name}'")
        arch = genotype.get("arch")
        if not isinstance(arch, dict):
            raise ValueError("an NNI genotype needs an 'arch' object of {label: value}")
        rows = {r.label: r for r in self._all_rows()}
        unknown = sorted(set(arch) - set(rows))
        if unknown:
            raise ValueError(f"genotype has unknown decision(s) {', '.join(unknown[:3])} for {self.name}")
        missing = sorted(set(rows) - set(arch))
        if missing:
            raise ValueError(f"genotype lacks decision(s) {', '.join(missing[:3])} of {self.name}")
        for label, value in arch.items():
            if value not in rows[label].values:
                raise ValueError(
                    f"decision '{label}' has value {value!r}, not one of {', '.join(rows[label].names)}"
                )
        return {"space": self.name, "arch": dict(arch)}

    def cost(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> dict[str, float]:
        model = self.network(
            genotype, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
        )
        return {
            "params": float(count_params(model)),
            "mflops": float(count_mflops(model, (in_channels, image_size, image_size))),
        }
