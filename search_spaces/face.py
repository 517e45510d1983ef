"""The ``face`` space: an MBConv backbone for 48x48..112x112 face crops plus, for AU detection,
a searchable AU head.

Backbone (``init_channels`` = c): stem 3x3 conv to c channels (stride 1 below 64x64 inputs, 2 from
64x64 up), three stages of widths 2c, 4c, 8c with strides 2, 2, 1, each layer a choice of MBConv
kernel {3, 5, 7} x expansion {3, 6} (+ ``skip`` after a stage's first layer). The last stage
keeps its resolution (output stride 4 below 64x64, 8 from 64x64 up: 12x12 maps at 48x48, 14x14 at
112x112) because AUs are small, local muscle movements and the attention heads need room to place
one map per AU.

Heads: task ``"fer"`` (multi-class) uses a softmax classifier (pooling + linear; the softmax is
in the loss) and has no head decision. Task ``"au"`` (multi-label, one logit per AU) adds a last
decision ``au_head`` over ``linear``, ``au_attention``, ``au_transformer``, ``au_graph``
(:mod:`search_spaces.face_heads`). The genotype names the head::

    {"space": "face", "task": "au", "depths": [2, 2, 2], "ops": [...6 ops...], "head": "au_graph"}

Head options (supernet / network): ``head_dim`` (token / node width, default 64) and
``attention_heads`` (default 4) for ``au_transformer``; ``head_dim`` for ``au_graph``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.base import Decision, Genotype
from search_spaces.blocks import LinearHead, SpaceError
from search_spaces.chain import ChainOptions, ChainSpace
from search_spaces.face_heads import AUAttentionHead, AUGraphHead, AUTransformerHead

TASKS = ("fer", "au")
AU_HEADS: tuple[str, ...] = ("linear", "au_attention", "au_transformer", "au_graph")
FER_HEAD = "linear"


class FaceSpace(ChainSpace):
    """Options: ``task`` ("fer" or "au"), ``layers`` (default 4) or ``depths``, ``init_channels``
    (default 16), ``dropout``, ``heads`` (AU head candidates, default all four, in that order)."""

    name = "face"
    width_mults = (2, 4, 8)
    stage_strides = (2, 2, 1)

    def __init__(self, task: str = "fer", *, heads: Sequence[str] | None = None, **options: Any) -> None:
        if task not in TASKS:
            raise SpaceError(f"unknown face task {task!r}; use 'fer' (expressions) or 'au' (action units)")
        super().__init__(**options)
        self.task = task
        heads = tuple(heads) if heads is not None else AU_HEADS
        bad = [h for h in heads if h not in AU_HEADS]
        if bad or not heads or len(set(heads)) != len(heads):
            raise SpaceError(
                f"AU heads must be distinct names among {', '.join(AU_HEADS)}, got {list(heads)}"
            )
        self.heads = heads

    # ----------------------------------------------------------------- decisions / genotypes
    def head_decision(self) -> Decision | None:
        return Decision("au_head", self.heads) if self.task == "au" else None

    def _genotype_extra(self, choice: Sequence[int]) -> dict[str, Any]:
        head = self.heads[int(choice[-1])] if self.task == "au" else FER_HEAD
        return {"task": self.task, "head": head}

    def _validate_body(self, genotype: Genotype) -> Genotype:
        super()._validate_body(genotype)
        task = genotype.get("task")
        if task != self.task:
            raise SpaceError(f"genotype task {task!r} is not one of the face tasks: {', '.join(TASKS)}")
        head = genotype.get("head")
        allowed = self.heads if self.task == "au" else (FER_HEAD,)
        if head not in allowed:
            raise SpaceError(
                f"genotype head {head!r} is not a {self.task} head of the face space; choose one of: "
                f"{', '.join(allowed)}"
            )
        return genotype

    def space_for_genotype(self, genotype: Genotype) -> ChainSpace:
        """Follow the genotype's depths, task and head: a stored AU genotype builds without the
        caller re-creating the space with the right options."""
        space = super().space_for_genotype(genotype)
        if not isinstance(genotype, dict):
            return space
        task, head = genotype.get("task"), genotype.get("head")
        if task in TASKS and (
            task != self.task or (task == "au" and head in AU_HEADS and head not in self.heads)
        ):
            space = copy.copy(space)
            space.task = task
            space.heads = AU_HEADS
            space._cost_cache = {}
        return space

    # ----------------------------------------------------------------- networks
    def stem_stride(self, image_size: int) -> int:
        return 1 if image_size < 64 else 2

    def _head_option_names(self) -> tuple[str, ...]:
        return ("head_dim", "attention_heads")

    def build_head(
        self, name: str | None, cin: int, feat_size: int, num_outputs: int, opts: ChainOptions
    ) -> nn.Module:
        name = name or FER_HEAD
        dim = int(opts.extra.get("head_dim", 64))
        if name == "linear":
            return LinearHead(cin, num_outputs, dropout=opts.dropout)
        if self.task != "au":
            raise SpaceError(f"head {name!r} is an AU head; the fer task uses 'linear'")
        if name == "au_attention":
            return AUAttentionHead(cin, num_outputs, dropout=opts.dropout)
        if name == "au_transformer":
            heads = int(opts.extra.get("attention_heads", 4))
            return AUTransformerHead(cin, num_outputs, feat_size, dim=dim, heads=heads, dropout=opts.dropout)
        if name == "au_graph":
            return AUGraphHead(cin, num_outputs, dim=dim, dropout=opts.dropout)
        raise SpaceError(f"unknown AU head {name!r}; choose one of: {', '.join(AU_HEADS)}")


def attention_images(maps: torch.Tensor, size: int) -> torch.Tensor:
    """(N, A, h, w) attention maps -> (N, A, size, size) uint8 images, each map min-max scaled.

    For ``automl train --save-attention``: upsample to the input size and write one grey PNG per
    (sample, AU), or blend with the face.
    """
    if maps.dim() != 4:
        raise SpaceError(f"attention maps must be (N, A, H, W), got shape {tuple(maps.shape)}")
    up = F.interpolate(maps.detach().float().cpu(), size=(size, size), mode="bilinear", align_corners=False)
    lo = up.amin(dim=(2, 3), keepdim=True)
    hi = up.amax(dim=(2, 3), keepdim=True)
    scaled = (up - lo) / (hi - lo).clamp_min(1e-12)
    return (scaled * 255).round().to(torch.uint8)
