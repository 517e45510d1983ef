"""The ``mobilenet`` space: a ProxylessNAS-style chain of MBConv layers.

Layout (``init_channels`` = c): stem 3x3 conv to c channels (stride 1 below 64x64 inputs, 2 from
64x64 up, so 32..112 inputs end on a 4x4..7x7 map), then three stages of widths 2c, 4c, 8c, each
opening with a stride-2 layer, then global pooling and a linear classifier. Every layer chooses a
kernel in {3, 5, 7} and an expansion in {3, 6}; layers after the first of a stage may also be
``skip`` (the layer disappears), which is how the search picks the depth.

Example::

    space = MobileNetSpace(layers=6)
    net = space.supernet(in_channels=1, num_outputs=7, image_size=48, init_channels=8)
    net.set_sample([1, 2, 6, 0, 3, 6])             # one index per decision, see decisions()
    genotype = space.genotype_from_choice([1, 2, 6, 0, 3, 6])
    model = space.network(genotype, in_channels=1, num_outputs=7, image_size=48, init_channels=16)
    space.cost(genotype, in_channels=1, num_outputs=7, image_size=48, init_channels=16)
    budget = space.budget(in_channels=1, num_outputs=7, image_size=48, init_channels=8, max_mflops=5)
"""

from __future__ import annotations

from typing import Any

from torch import nn

from search_spaces.blocks import LinearHead, SpaceError
from search_spaces.chain import ChainOptions, ChainSpace


class MobileNetSpace(ChainSpace):
    """Options: ``task`` ("fer" or "au"; both use the linear head), ``layers`` (default 4) or
    ``depths`` (three stage depths), ``init_channels`` (default 16), ``dropout`` before the
    classifier (default 0)."""

    name = "mobilenet"
    width_mults = (2, 4, 8)
    stage_strides = (2, 2, 2)

    def __init__(self, task: str = "fer", **options: Any) -> None:
        # The head is a linear layer for either task (softmax for "fer", one logit per AU for
        # "au": the loss makes the difference), so the task does not change the space.
        if task not in ("fer", "au"):
            raise SpaceError(f"unknown task {task!r}; use 'fer' or 'au'")
        super().__init__(**options)
        self.task = task

    def build_head(
        self, name: str | None, cin: int, feat_size: int, num_outputs: int, opts: ChainOptions
    ) -> nn.Module:
        return LinearHead(cin, num_outputs, dropout=opts.dropout)
