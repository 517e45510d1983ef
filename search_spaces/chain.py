"""Generic machinery of chain spaces (``mobilenet``, ``face``): a stem, a chain of searchable
MBConv layers grouped in stages, and a head that is either fixed or one more decision.

The decision list depends only on the stage depths (never on the image size or width), so a
DDPNAS distribution built from :meth:`ChainSpace.decisions` fits every supernet of the space.
Candidates of a layer are the six MBConv ops, plus ``skip`` (last, so that op indices mean the
same on every layer) wherever the layer keeps stride 1 and its channel count, i.e. every layer of
a stage but the first. Decisions with fewer candidates than the widest one are padded: weight
matrices are (decisions x max candidates) and :meth:`ChainSpace.candidate_mask` marks real cells.
"""

from __future__ import annotations

import abc
import copy
import functools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.base import Decision, Genotype, SupernetMode
from search_spaces.blocks import (
    MBCONV_OPS,
    SKIP,
    ConvBNAct,
    DropPath,
    SpaceError,
    build_chain_op,
    count_cost,
)
from search_spaces.budget import Budget, CostTable

# Options that belong to the DARTS space's networks (sent by a generic training loop to every
# space); they have no meaning in a chain space whose depth is fixed by the genotype.
DARTS_ONLY_OPTIONS = frozenset({"nodes", "stem_multiplier", "auxiliary", "auxiliary_weight"})
DEFAULT_LAYERS = 4
"""Searchable layers when neither ``layers`` nor ``depths`` is given (the ``quick`` preset's)."""
PAD_LOGIT = -1e4
"""Architecture logit of padding cells: softmax gives them ~0 weight even outside our masking."""


def split_depths(layers: int, stages: int) -> tuple[int, ...]:
    """Spread ``layers`` over ``stages`` as evenly as possible, later stages deeper (5, 3 -> 1, 2, 2)."""
    if layers < stages:
        raise SpaceError(f"a chain space needs at least {stages} layers (one per stage), got {layers}")
    base, extra = divmod(layers, stages)
    return tuple(base + (1 if i >= stages - extra else 0) for i in range(stages))


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded odd-kernel conv."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class LayerSpec:
    cin: int
    cout: int
    stride: int
    in_size: int


@dataclass(frozen=True)
class ChainLayout:
    """Concrete shapes of one chain network for given input size and width."""

    in_channels: int
    image_size: int
    stem_channels: int
    stem_stride: int
    layers: tuple[LayerSpec, ...]
    out_channels: int
    out_size: int


@dataclass
class ChainOptions:
    """Resolved network options (``extra``: the space's head options, e.g. ``head_dim``)."""

    init_channels: int
    dropout: float
    drop_path: float
    layers: int | None
    extra: dict[str, Any]


class ChoiceLayer(nn.Module):
    """One decision: runs the sampled candidate, or (mixed mode) a weighted sum of all of them."""

    def __init__(self, names: Sequence[str], ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.ops = nn.ModuleList(ops)
        self.index: int | None = None

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.index is not None:
            return self.ops[self.index](x)
        if weights is None:
            raise RuntimeError("single-path supernet: call set_sample(choice) before running it")
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class ChainSupernet(nn.Module):
    """Weight-sharing network over every decision of a chain space.

    ``single_path``: only the op chosen by :meth:`set_sample` runs (DDPNAS, random search).
    ``mixed``: every layer is ``sum_j softmax(alpha)_j * op_j(x)`` (DARTS); a sample set with
    :meth:`set_sample` still forces a discrete path (to evaluate one architecture), ``None`` clears.
    """

    def __init__(
        self,
        stem: nn.Module,
        layers: Sequence[ChoiceLayer],
        head: nn.Module,
        mode: SupernetMode,
        mask: np.ndarray,
    ) -> None:
        super().__init__()
        if mode not in ("single_path", "mixed"):
            raise SpaceError(f"unknown supernet mode {mode!r}; use 'single_path' or 'mixed'")
        self.mode = mode
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.choices: list[ChoiceLayer] = list(layers) + ([head] if isinstance(head, ChoiceLayer) else [])
        self.register_buffer("candidate_mask", torch.as_tensor(mask, dtype=torch.bool), persistent=False)
        self.alpha: nn.Parameter | None = None
        if mode == "mixed":
            init = 1e-3 * torch.randn(mask.shape)
            self.alpha = nn.Parameter(
                torch.where(self.candidate_mask, init, torch.full_like(init, PAD_LOGIT))
            )

    def set_sample(self, choice: Sequence[int] | None) -> None:
        if choice is None:
            if self.mode == "single_path":
                raise SpaceError("a single-path supernet needs a sample; set_sample(None) is for mixed mode")
            for layer in self.choices:
                layer.index = None
            return
        choice = [int(c) for c in choice]
        if len(choice) != len(self.choices):
            raise SpaceError(f"sample has {len(choice)} entries, the space has {len(self.choices)} decisions")
        for d, (layer, c) in enumerate(zip(self.choices, choice, strict=True)):
            if not 0 <= c < len(layer.ops):
                raise SpaceError(
                    f"sample index {c} out of range for decision {d} ({len(layer.ops)} candidates)"
                )
        for layer, c in zip(self.choices, choice, strict=True):
            layer.index = c

    def sample(self) -> list[int] | None:
        indices = [layer.index for layer in self.choices]
        return None if any(i is None for i in indices) else [int(i) for i in indices]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [] if self.alpha is None else [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def arch_weights(self) -> np.ndarray:
        """softmax(alpha) per decision over its real candidates, 0 in padding (mixed mode)."""
        if self.alpha is None:
            raise SpaceError("arch_weights() exists in mixed mode only")
        with torch.no_grad():
            return self._probs().cpu().numpy()

    def _probs(self) -> torch.Tensor:
        assert self.alpha is not None
        return self.alpha.masked_fill(~self.candidate_mask, float("-inf")).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = self._probs() if self.alpha is not None else None
        x = self.stem(x)
        for d, layer in enumerate(self.layers):
            x = layer(x, None if probs is None else probs[d, : len(layer.ops)])
        if isinstance(self.head, ChoiceLayer):
            return self.head(x, None if probs is None else probs[-1, : len(self.head.ops)])
        return self.head(x)


class ChainNetwork(nn.Module):
    """A discrete chain network: ``stem -> layers -> head``.

    ``forward`` gives logits (N, num_outputs); ``embed`` the head's embedding (N, embed_dim) used by
    retrieval and distillation; ``forward_with_embedding`` both in one pass; ``features`` the last
    feature map; ``attention_maps`` the head's per-AU maps of the last forward (or None).
    """

    def __init__(
        self, stem: nn.Module, layers: Sequence[nn.Module], head: nn.Module, genotype: Genotype
    ) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.Sequential(*layers)
        self.head = head
        self.genotype = json.loads(json.dumps(genotype))
        self.embed_dim = int(head.embed_dim)
        # Stochastic depth grows with depth (layer i of n drops with prob * (i + 1) / n).
        n = max(1, len(layers))
        self._drop_paths = [
            (m, (i + 1) / n)
            for i, layer in enumerate(layers)
            for m in layer.modules()
            if isinstance(m, DropPath)
        ]
        self._drop_path_prob = max((m.p / scale for m, scale in self._drop_paths), default=0.0)

    @property
    def drop_path_prob(self) -> float:
        """Stochastic-depth probability of the deepest residual layer; the training loop raises it
        over the epochs (the DARTS recipe), which updates every residual MBConv."""
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        self._drop_path_prob = float(value)
        for module, scale in self._drop_paths:
            module.p = self._drop_path_prob * scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.forward_with_embedding(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(x)[1]

    def attention_maps(self) -> torch.Tensor | None:
        return self.head.attention_maps()


class ChainSpace(abc.ABC):
    """Base of chain spaces. Subclasses set the stage layout and build the head.

    Constructor options fix the decisions: ``layers`` (searchable MBConv layers, spread over the
    stages) or explicit ``depths``; ``init_channels`` is the default width (stem channels; stage
    widths are ``init_channels * width_mults``) and can be overridden per network.
    """

    name = "chain"
    width_mults: tuple[int, ...] = (2, 4, 8)
    stage_strides: tuple[int, ...] = (2, 2, 2)
    min_image_size = 8

    def __init__(
        self,
        *,
        layers: int | None = None,
        depths: Sequence[int] | None = None,
        init_channels: int = 16,
        dropout: float = 0.0,
        **options: Any,
    ) -> None:
        self._check_unknown(options, ())
        stages = len(self.width_mults)
        if depths is not None:
            depths = tuple(int(d) for d in depths)
            if len(depths) != stages or min(depths) < 1:
                raise SpaceError(f"depths must be {stages} positive integers, got {list(depths)}")
            if layers is not None and int(layers) != sum(depths):
                raise SpaceError(f"layers={layers} contradicts depths={list(depths)} (sum {sum(depths)})")
        else:
            depths = split_depths(int(layers if layers is not None else DEFAULT_LAYERS), stages)
        if init_channels < 1:
            raise SpaceError(f"init_channels must be >= 1, got {init_channels}")
        self.depths: tuple[int, ...] = depths
        self.init_channels = int(init_channels)
        self.dropout = float(dropout)
        self._cost_cache: dict[str, CostTable] = {}

    # ----------------------------------------------------------------- decisions
    @property
    def num_layers(self) -> int:
        return sum(self.depths)

    def layer_candidates(self) -> list[tuple[str, ...]]:
        out = []
        for depth in self.depths:
            out.append(MBCONV_OPS)
            out.extend([MBCONV_OPS + (SKIP,)] * (depth - 1))
        return out

    def head_decision(self) -> Decision | None:
        """The head decision (face AU head); None when the head is fixed."""
        return None

    def decisions(self) -> list[Decision]:
        out = [Decision(f"layer{i}", c) for i, c in enumerate(self.layer_candidates())]
        head = self.head_decision()
        return out + ([head] if head is not None else [])

    def candidate_mask(self) -> np.ndarray:
        """Boolean (decisions x max candidates): which cells of a weight matrix are real ops."""
        decisions = self.decisions()
        width = max(len(d.candidates) for d in decisions)
        mask = np.zeros((len(decisions), width), dtype=bool)
        for i, d in enumerate(decisions):
            mask[i, : len(d.candidates)] = True
        return mask

    # ----------------------------------------------------------------- genotypes
    def _genotype_extra(self, choice: Sequence[int]) -> dict[str, Any]:
        return {}

    def genotype_from_choice(self, choice: Sequence[int]) -> Genotype:
        decisions = self.decisions()
        choice = [int(c) for c in choice]
        if len(choice) != len(decisions):
            raise SpaceError(
                f"choice has {len(choice)} entries, the {self.name} space has {len(decisions)} decisions"
            )
        for d, c in zip(decisions, choice, strict=True):
            if not 0 <= c < len(d.candidates):
                raise SpaceError(
                    f"choice index {c} out of range for {d.name} ({len(d.candidates)} candidates)"
                )
        genotype: Genotype = {
            "space": self.name,
            "depths": list(self.depths),
            "ops": [decisions[i].candidates[c] for i, c in enumerate(choice[: self.num_layers])],
        }
        genotype.update(self._genotype_extra(choice))
        return genotype

    def derive_genotype(
        self, weights: np.ndarray | Sequence[Sequence[float]], *, skip_cap: int | None = None
    ) -> Genotype:
        """Best op per decision by weight (DDPNAS theta or DARTS softmax(alpha)).

        ``weights``: (decisions x max candidates), padding cells ignored, or one row per decision.
        Cells that are NaN or -inf never win (pass ``np.where(alive, theta, -np.inf)`` to honour
        pruning). ``skip_cap``: at most that many ``skip`` layers; the weakest skips (by their
        own weight) are replaced by the layer's best MBConv op.
        """
        matrix = self._weight_matrix(weights)
        choice = [int(i) for i in matrix.argmax(axis=1)]
        if skip_cap is not None:
            skip = len(MBCONV_OPS)
            skipped = [d for d in range(self.num_layers) if choice[d] == skip]
            skipped.sort(key=lambda d: matrix[d, skip], reverse=True)
            for d in skipped[max(int(skip_cap), 0) :]:
                choice[d] = int(matrix[d, :skip].argmax())
        return self.genotype_from_choice(choice)

    def _weight_matrix(self, weights: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        mask = self.candidate_mask()
        if isinstance(weights, np.ndarray) and weights.ndim == 2:
            rows = list(weights)
        else:
            rows = [np.asarray(r, dtype=float).ravel() for r in weights]
        if len(rows) != mask.shape[0]:
            raise SpaceError(
                f"weights have {len(rows)} rows, the {self.name} space has {mask.shape[0]} decisions"
            )
        matrix = np.full(mask.shape, -np.inf)
        for d, row in enumerate(rows):
            k = int(mask[d].sum())
            row = np.asarray(row, dtype=float)
            if row.shape[0] not in (k, mask.shape[1]):
                raise SpaceError(f"weights row {d} has {row.shape[0]} entries, decision has {k} candidates")
            matrix[d, :k] = np.where(np.isnan(row[:k]), -np.inf, row[:k])
            if np.all(matrix[d] == -np.inf):
                raise SpaceError(f"weights row {d} has no finite entry")
        return matrix

    def choice_from_genotype(self, genotype: Genotype) -> list[int]:
        """Inverse of :meth:`genotype_from_choice` (validates first)."""
        genotype = self.validate_genotype(genotype)
        decisions = self.decisions()
        choice = [decisions[i].candidates.index(op) for i, op in enumerate(genotype["ops"])]
        head = self.head_decision()
        if head is not None:
            choice.append(head.candidates.index(genotype["head"]))
        return choice

    def validate_genotype(self, genotype: Genotype) -> Genotype:
        if not isinstance(genotype, dict):
            raise SpaceError(f"a {self.name} genotype is a JSON object, got {type(genotype).__name__}")
        if genotype.get("space") != self.name:
            raise SpaceError(f"genotype is for space {genotype.get('space')!r}, not {self.name!r}")
        depths = genotype.get("depths")
        if (
            not isinstance(depths, list)
            or len(depths) != len(self.width_mults)
            or not all(isinstance(d, int) and d >= 1 for d in depths)
        ):
            raise SpaceError(
                f"genotype 'depths' must be {len(self.width_mults)} positive integers, got {depths!r}"
            )
        # A genotype carries its own depths (and, in the face space, its task): validate it against
        # the space it describes, so that a space created without options accepts any stored one.
        return self.space_for_genotype(genotype)._validate_body(genotype)

    def _validate_body(self, genotype: Genotype) -> Genotype:
        """Checks once ``genotype`` matches this space's depths (see :meth:`validate_genotype`)."""
        ops = genotype.get("ops")
        if not isinstance(ops, list) or len(ops) != self.num_layers:
            raise SpaceError(f"genotype 'ops' must list {self.num_layers} ops, got {ops!r}")
        for i, (op, cands) in enumerate(zip(ops, self.layer_candidates(), strict=True)):
            if op not in cands:
                raise SpaceError(
                    f"genotype layer {i} has op {op!r}, which the {self.name} space does not offer "
                    f"there; choose one of: {', '.join(cands)}"
                )
        return genotype

    def space_for_genotype(self, genotype: Genotype) -> ChainSpace:
        """This space, or a copy with the genotype's depths (a genotype carries its own depths)."""
        depths = genotype.get("depths") if isinstance(genotype, dict) else None
        if (
            isinstance(depths, list)
            and tuple(depths) != self.depths
            and all(isinstance(d, int) for d in depths)
        ):
            other = copy.copy(self)
            other.depths = tuple(depths)
            other._cost_cache = {}
            return other
        return self

    # ----------------------------------------------------------------- shapes and options
    def stem_stride(self, image_size: int) -> int:
        return 1 if image_size < 64 else 2

    def layout(self, *, in_channels: int, image_size: int, init_channels: int) -> ChainLayout:
        if in_channels not in (1, 3):
            raise SpaceError(f"in_channels must be 1 (grey) or 3 (RGB), got {in_channels}")
        if image_size < self.min_image_size:
            raise SpaceError(
                f"image_size {image_size} is below the {self.name} space's minimum {self.min_image_size}"
            )
        stem_stride = self.stem_stride(image_size)
        size = conv_out(image_size, stem_stride)
        cin = init_channels
        specs = []
        for depth, mult, stride in zip(self.depths, self.width_mults, self.stage_strides, strict=True):
            cout = init_channels * mult
            for j in range(depth):
                s = stride if j == 0 else 1
                specs.append(LayerSpec(cin, cout, s, size))
                size = conv_out(size, s)
                cin = cout
        return ChainLayout(in_channels, image_size, init_channels, stem_stride, tuple(specs), cin, size)

    def _check_unknown(self, options: dict[str, Any], known: Sequence[str]) -> None:
        unknown = set(options) - set(known) - DARTS_ONLY_OPTIONS
        if unknown:
            raise SpaceError(f"unknown {self.name} space option(s): {', '.join(sorted(unknown))}")

    def _head_option_names(self) -> tuple[str, ...]:
        return ()

    def _options(self, options: dict[str, Any]) -> ChainOptions:
        self._check_unknown(
            options, ("init_channels", "dropout", "drop_path", "layers", *self._head_option_names())
        )
        init = int(options.get("init_channels") or self.init_channels)
        if init < 1:
            raise SpaceError(f"init_channels must be >= 1, got {init}")
        drop_path = float(options.get("drop_path") or 0.0)
        if not 0.0 <= drop_path < 1.0:
            raise SpaceError(f"drop_path must be in [0, 1), got {drop_path}")
        extra = {k: options[k] for k in self._head_option_names() if options.get(k) is not None}
        return ChainOptions(
            init, float(options.get("dropout", self.dropout) or 0.0), drop_path, options.get("layers"), extra
        )

    # ----------------------------------------------------------------- networks
    @abc.abstractmethod
    def build_head(
        self, name: str | None, cin: int, feat_size: int, num_outputs: int, opts: ChainOptions
    ) -> nn.Module:
        """The head named ``name`` (None: the fixed head) over a (cin, feat_size, feat_size) map."""

    def _stem(self, layout: ChainLayout) -> nn.Module:
        return ConvBNAct(layout.in_channels, layout.stem_channels, 3, layout.stem_stride)

    def supernet(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        mode: SupernetMode = "single_path",
        **options: Any,
    ) -> ChainSupernet:
        """Options: ``init_channels`` (width), ``layers`` (must equal this space's layer count:
        build the space with ``layers=...``), ``dropout``, head options; DARTS-only size knobs
        (``nodes``, ``stem_multiplier``) are accepted and ignored."""
        opts = self._options(options)
        if opts.layers is not None and int(opts.layers) != self.num_layers:
            raise SpaceError(
                f"supernet layers={opts.layers} but the {self.name} space was built with "
                f"{self.num_layers} layers; pass layers={opts.layers} when creating the space"
            )
        layout = self.layout(in_channels=in_channels, image_size=image_size, init_channels=opts.init_channels)
        layers = [
            ChoiceLayer(cands, [build_chain_op(n, s.cin, s.cout, s.stride) for n in cands])
            for s, cands in zip(layout.layers, self.layer_candidates(), strict=True)
        ]
        head_decision = self.head_decision()
        if head_decision is None:
            head = self.build_head(None, layout.out_channels, layout.out_size, num_outputs, opts)
        else:
            head = ChoiceLayer(
                head_decision.candidates,
                [
                    self.build_head(n, layout.out_channels, layout.out_size, num_outputs, opts)
                    for n in head_decision.candidates
                ],
            )
        return ChainSupernet(self._stem(layout), layers, head, mode, self.candidate_mask())

    def network(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> ChainNetwork:
        """The stand-alone network. Options: ``init_channels`` (width; default the space's),
        ``dropout``, ``drop_path`` (stochastic depth on residual MBConvs), head options. The
        genotype fixes the depth, so a ``layers`` option (a DARTS eval-net knob) is ignored."""
        space = self.space_for_genotype(genotype)
        if space is not self:
            return space.network(
                genotype, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
            )
        genotype = self.validate_genotype(genotype)
        opts = self._options(options)
        layout = self.layout(in_channels=in_channels, image_size=image_size, init_channels=opts.init_channels)
        n = len(layout.layers)
        layers = [
            build_chain_op(op, s.cin, s.cout, s.stride, drop_path=opts.drop_path * (i + 1) / n)
            for i, (op, s) in enumerate(zip(genotype["ops"], layout.layers, strict=True))
        ]
        head = self.build_head(genotype.get("head"), layout.out_channels, layout.out_size, num_outputs, opts)
        return ChainNetwork(self._stem(layout), layers, head, genotype)

    # ----------------------------------------------------------------- costs and budgets
    def cost_table(self, *, in_channels: int, num_outputs: int, image_size: int, **options: Any) -> CostTable:
        """Exact params / MACs of every candidate in place (additive: see :mod:`search_spaces.budget`)."""
        key = json.dumps([in_channels, num_outputs, image_size, sorted(options.items())], default=str)
        if key not in self._cost_cache:
            self._cost_cache[key] = self._build_cost_table(in_channels, num_outputs, image_size, options)
        return self._cost_cache[key]

    def _build_cost_table(
        self, in_channels: int, num_outputs: int, image_size: int, options: dict[str, Any]
    ) -> CostTable:
        options = {k: v for k, v in options.items() if k != "layers"}
        opts = self._options(options)
        layout = self.layout(in_channels=in_channels, image_size=image_size, init_channels=opts.init_channels)
        net = self.supernet(
            in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
        )
        mask = self.candidate_mask()
        params = np.full(mask.shape, np.nan)
        macs = np.full(mask.shape, np.nan)
        fixed_p, fixed_m = count_cost(net.stem, (1, in_channels, image_size, image_size))
        feat_shape = (1, layout.out_channels, layout.out_size, layout.out_size)
        for d, (layer, spec) in enumerate(zip(net.layers, layout.layers, strict=True)):
            for j, op in enumerate(layer.ops):
                params[d, j], macs[d, j] = count_cost(op, (1, spec.cin, spec.in_size, spec.in_size))
        if isinstance(net.head, ChoiceLayer):
            for j, op in enumerate(net.head.ops):
                params[-1, j], macs[-1, j] = count_cost(op, feat_shape)
        else:
            head_p, head_m = count_cost(net.head, feat_shape)
            fixed_p, fixed_m = fixed_p + head_p, fixed_m + head_m
        return CostTable(fixed_p, fixed_m, params, macs)

    def cost(
        self, genotype: Genotype, *, in_channels: int, num_outputs: int, image_size: int, **options: Any
    ) -> dict[str, float]:
        """``{"params": count, "mflops": millions of multiply-accumulates}`` of ``network(genotype)``."""
        space = self.space_for_genotype(genotype)
        choice = space.choice_from_genotype(genotype)
        options = {k: v for k, v in options.items() if k not in ("layers", "drop_path")}
        table = space.cost_table(
            in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
        )
        params, macs = table.total(choice)
        return {"params": float(params), "mflops": macs / 1e6}

    def budget(
        self,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        max_mflops: float | None = None,
        max_params: float | None = None,
        **options: Any,
    ) -> Budget:
        """A :class:`Budget` over this space's choices at the given sizes (``max_params`` in millions)."""
        table = self.cost_table(
            in_channels=in_channels,
            num_outputs=num_outputs,
            image_size=image_size,
            **{k: v for k, v in options.items() if k != "layers"},
        )
        return Budget(table, max_mflops=max_mflops, max_params=max_params)

    def feasible(
        self,
        choice: Sequence[int],
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        max_mflops: float | None = None,
        max_params: float | None = None,
        **options: Any,
    ) -> bool:
        budget = self.budget(
            in_channels=in_channels,
            num_outputs=num_outputs,
            image_size=image_size,
            max_mflops=max_mflops,
            max_params=max_params,
            **options,
        )
        return budget.feasible(choice)

    def sample_within_budget(
        self,
        rng: np.random.Generator,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        max_mflops: float | None = None,
        max_params: float | None = None,
        allowed: np.ndarray | None = None,
        **options: Any,
    ) -> list[int]:
        budget = self.budget(
            in_channels=in_channels,
            num_outputs=num_outputs,
            image_size=image_size,
            max_mflops=max_mflops,
            max_params=max_params,
            **options,
        )
        return budget.sample(rng, allowed=allowed)

    def measure_latency(
        self,
        genotype: Genotype,
        *,
        in_channels: int,
        num_outputs: int,
        image_size: int,
        device: str | torch.device = "cpu",
        batch_size: int = 1,
        warmup: int = 5,
        repeats: int = 20,
        **options: Any,
    ) -> dict[str, float | str | int]:
        """Wall-clock inference latency of ``network(genotype)`` on ``device`` (eval, no grad).

        Returns median and 90th-percentile milliseconds per batch over ``repeats`` timed runs
        after ``warmup`` untimed ones; CUDA work is synchronised around each run.
        """
        device = torch.device(device)
        net = (
            self.network(
                genotype, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
            )
            .to(device)
            .eval()
        )
        x = torch.rand(batch_size, in_channels, image_size, image_size, device=device)
        sync: Callable[[], None] = (
            functools.partial(torch.cuda.synchronize, device) if device.type == "cuda" else (lambda: None)
        )
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                sync()
                start = time.perf_counter()
                net(x)
                sync()
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        return {
            "latency_ms": statistics.median(times),
            "latency_p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
            "device": str(device),
            "batch_size": batch_size,
            "repeats": repeats,
        }
