"""Building blocks shared by the ``mobilenet`` and ``face`` spaces.

MBConv (MobileNetV2's inverted residual, the unit of ProxylessNAS), the candidate-op names of the
chain spaces, a plain multi-head attention written with explicit matmuls (so that FLOP counting
sees the attention products and the weights can be returned for visualisation) and an exact
params / multiply-accumulate counter.

Why our own attention instead of ``nn.MultiheadAttention``: its inference fast path hides the
attention matmuls from :class:`torch.utils.flop_counter.FlopCounterMode` and does not return
per-head weights unless asked, and we need both (budgets, AU attention images).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
MBCONV_OPS: tuple[str, ...] = tuple(f"mb_k{k}_e{e}" for k in KERNELS for e in EXPANSIONS)
"""Candidate names in index order: ``mb_k3_e3, mb_k3_e6, mb_k5_e3, ..., mb_k7_e6``."""
SKIP = "skip"
"""Identity: the layer is removed (ProxylessNAS' zero op on a residual block)."""

_MB_RE = re.compile(r"^mb_k(\d+)_e(\d+)$")


class SpaceError(ValueError):
    """A malformed genotype, choice or option (the automl layer turns it into a UserError)."""


def parse_mbconv(name: str) -> tuple[int, int]:
    """``"mb_k5_e6"`` -> ``(5, 6)``; any other name is a :class:`SpaceError`."""
    match = _MB_RE.match(name)
    if match is None or name not in MBCONV_OPS:
        raise SpaceError(f"unknown MBConv op {name!r}; expected one of {', '.join(MBCONV_OPS)}")
    return int(match.group(1)), int(match.group(2))


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> ReLU6 (or no activation), 'same' padding."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: zero whole samples with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise (stride) -> 1x1 linear projection.

    The residual is used exactly when shapes allow it (stride 1, same channels), as in MobileNetV2
    and ProxylessNAS; that is also where the search may replace the block by ``skip``.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, expand: int, stride: int, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers.append(ConvBNAct(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(ConvBNAct(hidden, cout, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + self.drop_path(out) if self.use_residual else out


def build_chain_op(name: str, cin: int, cout: int, stride: int, drop_path: float = 0.0) -> nn.Module:
    """One candidate of a chain layer by name: an MBConv, or ``skip`` where shapes allow it."""
    if name == SKIP:
        if stride != 1 or cin != cout:
            raise SpaceError(
                f"op 'skip' needs stride 1 and equal channels, got {cin}->{cout} stride {stride}"
            )
        return nn.Identity()
    kernel, expand = parse_mbconv(name)
    return MBConv(cin, cout, kernel, expand, stride, drop_path=drop_path)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with explicit matmuls; keeps the last weights if asked.

    ``forward(query (N, Lq, D), context (N, Lk, D)) -> (N, Lq, D)``.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise SpaceError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        return x.view(n, length, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(query)), self._split(self.k(context)), self._split(self.v(context))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        weights = scores.softmax(dim=-1)
        if self.keep_weights:
            self.last_weights = weights.detach()
        out = torch.matmul(self.dropout(weights), v)
        n, _, length, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(n, length, -1))


class PerGroupLinear(nn.Module):
    """``A`` independent linear maps applied to ``(N, A, Din)`` -> ``(N, A, Dout)``.

    Why: every AU gets its own classifier / excitation weights while running as one batched matmul.
    """

    def __init__(self, groups: int, din: int, dout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(groups, din, dout))
        self.bias = nn.Parameter(torch.zeros(groups, dout))
        bound = 1.0 / math.sqrt(din)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (A, N, Din) @ (A, Din, Dout) -> (A, N, Dout): a bmm, seen by the FLOP counter.
        return torch.bmm(x.transpose(0, 1), self.weight).transpose(0, 1) + self.bias


class _MacCounter(TorchFunctionMode):
    """Counts multiply-accumulates of conv2d / linear / matmul / bmm calls as they happen.

    Why not ``torch.utils.flop_counter``: it imports torch._dynamo (seconds per process) and we
    only need the handful of product ops our blocks use (attention is written with ``matmul``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        if func is F.conv2d:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.macs += out.numel() * weight[0].numel()
        elif func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.macs += out.numel() * weight.shape[-1]
        elif func in _MATMULS:
            self.macs += out.numel() * args[0].shape[-1]
        return out


_MATMULS = {torch.matmul, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.bmm}


def count_cost(module: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """``(params, MACs)`` of one forward of ``module`` on an input of ``input_shape``.

    MACs are multiply-accumulates of convolutions, linear layers and matmuls: the "FLOPs"
    convention of the MobileNet / ProxylessNAS / DARTS papers. Batch norm, activations and other
    element-wise work are not counted. The module runs in eval mode on the device of its
    parameters; build it under ``torch.device("meta")`` to count without computing anything.
    """
    params = sum(p.numel() for p in module.parameters())
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    was_training = module.training
    threads = torch.get_num_threads()
    module.eval()
    # One thread: these forwards are tiny, and on a busy machine an OpenMP pool spinning for
    # cores that other processes hold makes each one ~100x slower.
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), _MacCounter() as counter:
            module(torch.zeros(*input_shape, device=device))
    finally:
        torch.set_num_threads(threads)
        module.train(was_training)
    return params, counter.macs


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last two (spatial) dimensions: each map sums to 1."""
    shape = logits.shape
    return F.softmax(logits.flatten(-2), dim=-1).view(shape)


class LinearHead(nn.Module):
    """Global average pooling -> dropout -> linear: the softmax (FER) / pooled AU classifier.

    ``embed`` is the pooled feature vector, the representation a retrieval index hashes.
    """

    def __init__(self, cin: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = cin
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_outputs)

    def forward_with_embedding(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = feat.mean(dim=(2, 3))
        return self.fc(self.dropout(pooled)), pooled

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(feat)[0]

    def attention_maps(self) -> torch.Tensor | None:
        return None
