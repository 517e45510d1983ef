"""Data-parallel supernet training with ``torch.distributed`` (NCCL on GPUs, gloo on CPU).

Every process runs the same :class:`~automl.nas.search.SearchLoop`; this subclass only overrides
its hooks so that N processes compute exactly what one process computes on the same global batch:

* **Same architecture everywhere.** Sampling is driven by numpy generators seeded identically, so
  every rank draws the same path each epoch without any communication (rank 0 asserts it).
* **Sharded batches.** Each rank takes a contiguous slice of every global batch *after* the batch
  was drawn and augmented with the shared seed, so rank r sees rows r*B/N..(r+1)*B/N of exactly
  the batch one process would see.
* **Gradients averaged** across ranks after every backward (the DDP all-reduce). The single-path
  supernet changes which parameters are used every epoch; all ranks use the same ones, so we
  bucket exactly the gradients that exist instead of paying DDP's unused-parameter graph walk.
  Per-rank losses are scaled by ``n_local * world / n_global`` so the average is the global mean
  even when the last batch does not split evenly.
* **Global batch statistics.** Batch norm normalises with statistics all-reduced over ranks
  (:class:`GlobalBatchNorm2d`): the supernet trains and validates in train mode, so per-rank
  statistics would change the function being searched.
* **Validation accuracy all-gathered** before the distribution update, so theta is the same on
  every rank; rank 0 alone writes the store and the checkpoint.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn

from automl.errors import UserError

# The autograd-aware collectives are flagged for a future move to functional collectives, which do
# not yet differentiate through all_reduce on every backend (gloo included).
warnings.filterwarnings("ignore", message=r".*torch.distributed.nn.functional.all_reduce is deprecated.*")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """World size announced by ``torchrun`` (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device_type: str) -> DistContext:
    """Join the process group described by torchrun's environment variables."""
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise UserError(f"distributed search needs {var} in the environment: ask the search for "
                            "nproc > 1 processes (it launches them) or start it under torchrun",
                            argument="nproc")
    backend = "nccl" if device_type == "cuda" and dist.is_nccl_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(value: object, src: int = 0) -> object:
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose batch statistics cover the global batch across all ranks.

    ``torch.nn.SyncBatchNorm`` only runs on GPUs; this one works with gloo on CPU as well. It uses
    a two-pass mean/variance (sum, then sum of squared deviations) through autograd-aware
    all-reduces, so the gradient also flows through the shared statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = dist_fn.all_reduce(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = dist_fn.all_reduce((centred * centred).sum(dims)) / n
        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 0.1
                unbiased = var * n / torch.clamp(n - 1, min=1)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)
                self.num_batches_tracked.add_(1)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every ``BatchNorm2d`` for :class:`GlobalBatchNorm2d`, keeping parameters and buffers."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlobalBatchNorm2d):
            repl = GlobalBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                     affine=child.affine, track_running_stats=child.track_running_stats)
            repl.load_state_dict(child.state_dict())
            repl.to(next(iter(child.buffers()), torch.empty(0)).device)
            setattr(module, name, repl)
        else:
            convert_batchnorm(child)
    return module


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous slice of ``n`` rows for ``rank``: sizes differ by at most one."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """All-reduce the existing gradients in one flat bucket and divide by the world size."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a per-rank tensor over ranks in rank order (shards may differ by one row)."""
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    max_rows = int(max(int(s.item()) for s in sizes))
    padded = torch.zeros((max_rows, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])


def all_reduce_sum(value: float, device: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def distributed_loop_class():  # noqa: ANN201 - returns a class built on SearchLoop
    """The data-parallel :class:`SearchLoop` (imported lazily: search.py imports data and spaces)."""
    from automl.nas.search import SearchLoop

    class DistributedSearchLoop(SearchLoop):
        """One rank of a data-parallel search (see the module docstring for the exact semantics)."""

        def __init__(self, *args, ctx: DistContext, **kwargs) -> None:  # type: ignore[no-untyped-def]
            self.ctx = ctx
            super().__init__(*args, **kwargs)
            if self.strategy.uses_arch_step:
                raise UserError("a search in several processes (nproc > 1) supports the single-path "
                                "strategies (ddpnas, random); run DARTS in one process", argument="nproc")

        def _build_supernet(self) -> nn.Module:
            return convert_batchnorm(super()._build_supernet())

        def shard(self, order: torch.Tensor) -> torch.Tensor:
            # Drop the remainder so every rank runs the same number of equally sized batches (the
            # collectives inside batch norm and the gradient sync must line up); strided slices
            # make rank r's k-th batch part of exactly the k-th batch of one process at W x batch.
            usable = order.numel() // self.ctx.world_size * self.ctx.world_size
            return order[:usable][self.ctx.rank :: self.ctx.world_size]

        def sync_gradients(self, params: list[nn.Parameter]) -> None:
            average_gradients(params, self.ctx.world_size)

        def reduce_mean(self, value: float) -> float:
            return all_reduce_sum(value, self.device) / self.ctx.world_size

        def is_main_process(self) -> bool:
            return self.ctx.is_main

        def world_size(self) -> int:
            return self.ctx.world_size

    return DistributedSearchLoop
