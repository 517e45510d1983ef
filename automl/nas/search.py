"""The one search loop: every strategy (DDPNAS, DARTS, random WS) runs through :class:`SearchLoop`.

Per epoch: the strategy picks the architecture (per epoch or per batch; ``None`` = mixed ops),
the loop trains the supernet's weights for one pass over the train split (90% of the training set,
split with the seed), validates on the held-out 10% (in train mode, as the authors do: BN uses
batch statistics because running statistics shared by many paths mean nothing), hands the metric
to the strategy, applies the lr schedule, writes ``run_dir/search_state.pt`` atomically and
reports to the :class:`~automl.nas.recorder.SearchRecorder`.

Why the data sits on the device as uint8: small face crops of a whole split fit on any GPU, so
batches are sliced and augmented there with no DataLoader workers to starve the accelerator.

Distributed-ready: architecture sampling is driven by seeded numpy generators (identical on every
process), and the validation outputs pass through :meth:`SearchLoop.gather_outputs`, which a DDP
wrapper overrides to all-gather them before the metric is computed.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from automl.config import Config
from automl.data import FaceData, load_data, make_task, to_float
from automl.data.augment import augment_for
from automl.errors import UserError
from automl.nas.recorder import SearchRecorder
from automl.nas.strategies import create_strategy
from automl.nas.strategies import scaled_epochs as _scaled
from automl.nas.strategy import LrPlan, Strategy, StrategyResult
from automl.threads import apply_cpu_threads
from search_spaces.base import SearchSpace
from search_spaces.registry import create_space

STATE_FILE = "search_state.pt"
STATE_VERSION = 1

Progress = Callable[[dict[str, Any]], None]


# --- configuration helpers ------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "the device 'cuda' was asked for but no CUDA GPU is visible; use the device 'cpu' or 'auto'",
            argument="device",
        )
    return torch.device(name)


def build_space(cfg: Config, task: str) -> SearchSpace:
    options: dict[str, Any] = {"task": task}
    if cfg.search.space == "darts":
        options["nodes"] = cfg.supernet.nodes
    else:  # chain spaces (mobilenet, face) fix their number of searchable layers at creation
        options["layers"] = cfg.supernet.layers
    try:
        # The config's space is what the caller chose to search (``automl search`` refuses an
        # nni: space that did not come from --space or a stored search run's config).
        return create_space(cfg.search.space, allow_user_code=cfg.search.space, **options)
    except ModuleNotFoundError as exc:
        raise UserError(f"search space '{cfg.search.space}' is not available in this build ({exc})") from None
    except ValueError as exc:  # e.g. too few layers for the space's stages
        raise UserError(f"cannot build the '{cfg.search.space}' space: {exc}") from None


def build_strategy(cfg: Config, space: SearchSpace) -> Strategy:
    """The configured strategy (:func:`automl.nas.strategies.create_strategy`)."""
    return create_strategy(cfg.search.strategy, space, cfg)


def epoch_steps(cfg: Config, n_train: int) -> int | None:
    """Optimiser steps of one search epoch, or ``None`` for the authors' epoch (``"pass"``): one
    pass over the train split, freshly shuffled (kept exactly as it was: stored runs replay bit for
    bit).

    ``search.steps_per_epoch`` fixes the count (batches then cycle through reshuffled passes, so a
    small data set still gives an epoch long enough to learn from); for DDPNAS,
    ``search.epochs_scale`` multiplies it (or the steps of one pass), see :func:`build_strategy`.
    """
    s = cfg.search
    scale = s.epochs_scale if s.strategy == "ddpnas" else 1.0
    if s.steps_per_epoch == "pass" and scale == 1.0:
        return None
    per_pass = max(1, math.ceil(n_train / cfg.data.batch_size))
    base = per_pass if s.steps_per_epoch == "pass" else int(s.steps_per_epoch)
    return _scaled(base, scale)


def weight_lr(cfg: Config) -> float:
    """SGD lr of the supernet weights: the authors' 0.1 for DDPNAS, DARTS' own for the baselines."""
    if cfg.search.strategy == "darts":
        return cfg.darts.weight_lr
    if cfg.search.strategy == "random":
        return cfg.random.weight_lr
    return cfg.optim.lr


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # CPU kernels are deterministic already; this makes CUDA ones so too (or warns).
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    else:
        torch.backends.cudnn.benchmark = True


def _rng_snapshot() -> dict[str, Any]:
    py_state = random.getstate()
    np_state = np.random.get_state()
    snap: dict[str, Any] = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def _rng_restore(snap: dict[str, Any]) -> None:
    version, internal, gauss = snap["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = snap["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(snap["torch"])
    if "cuda" in snap and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`automl.atomic.atomic_write`: a kill never leaves half a file."""
    from automl.atomic import atomic_write

    with atomic_write(path) as fh:
        torch.save(obj, fh)


def _plain(value: Any) -> Any:
    """Numpy values -> Python lists and scalars, so ``torch.load(weights_only=True)`` reads them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


class LrSchedule:
    """The authors' step decay (applied only when a round ends), or cosine annealing per epoch."""

    def __init__(self, plan: LrPlan):
        self.plan = plan
        self.flag = 1  # next multiple of ``every`` that triggers a decay (authors' ``lr_flag``)

    def after_epoch(self, optimizer: torch.optim.Optimizer, epoch: int, round_boundary: bool) -> None:
        p = self.plan
        if p.kind == "step":
            lr = optimizer.param_groups[0]["lr"]
            if lr > p.min_lr and round_boundary and p.every and epoch >= self.flag * p.every:
                for group in optimizer.param_groups:
                    group["lr"] = group["lr"] * p.decay
                self.flag += 1
        elif p.kind == "cosine":
            t = min(epoch + 1, p.epochs)
            lr = p.min_lr + 0.5 * (p.lr - p.min_lr) * (1 + math.cos(math.pi * t / max(1, p.epochs)))
            for group in optimizer.param_groups:
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {"flag": self.flag}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flag = int(state["flag"])


# --- data -------------------------------------------------------------------------------------


@dataclass
class SearchData:
    """The train/val split of the training set, resident on the device as uint8 images."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    in_channels: int
    num_outputs: int
    image_size: int
    task_kind: str
    name: str
    class_names: list[str] = field(default_factory=list)


def load_search_data(cfg: Config) -> FaceData:
    d = cfg.data
    return load_data(
        cfg.search.data,
        image_size=d.image_size,
        channels=d.channels,
        fold=d.fold,
        n=d.n,
        seed=cfg.search.seed,
    )


def split_data(data: FaceData, val_fraction: float, seed: int, device: torch.device) -> SearchData:
    n = int(data.train_x.shape[0])
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 2:
        raise UserError(f"data set {data.name} has only {n} training samples: too few to search (need >= 10)")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return SearchData(
        train_x=data.train_x[train_idx].contiguous().to(device),
        train_y=data.train_y[train_idx].to(device),
        val_x=data.train_x[val_idx].contiguous().to(device),
        val_y=data.train_y[val_idx].to(device),
        in_channels=data.in_channels,
        num_outputs=data.num_outputs,
        image_size=data.image_size,
        task_kind=data.task,
        name=data.name,
        class_names=list(data.class_names),
    )


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class SearchOutcome:
    genotype: dict[str, Any]
    summary: dict[str, Any]
    epochs: int
    wall_time: float
    epoch_times: list[float]


class SearchLoop:
    """Runs one search end to end; build it, then call :meth:`run`."""

    def __init__(
        self,
        cfg: Config,
        recorder: SearchRecorder,
        *,
        run_dir: str | Path | None = None,
        data: FaceData | None = None,
        device: str | torch.device | None = None,
        progress: Progress | None = None,
        deterministic: bool | None = None,
        owner: dict[str, Any] | None = None,
        space: SearchSpace | None = None,
        strategy: Strategy | str | None = None,
    ):
        """``space`` / ``strategy``: objects (or a registered strategy name) used instead of the
        ones ``cfg.search`` names -- a space of your own, a strategy built with custom settings."""
        self.cfg = cfg
        # Which run of which store the state file belongs to (``{"run_id", "store_id"}``): two
        # stores in one folder, or a copied run folder, must never resume each other's weights.
        self.owner = dict(owner) if owner else None
        self.recorder = recorder
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.device = torch.device(device) if device is not None else resolve_device(cfg.search.device)
        if cfg.search.precision == "float64":
            torch.set_default_dtype(torch.float64)
        apply_cpu_threads(self.device, cfg.search.cpu_threads)  # the policy of automl.threads
        det = self.device.type == "cpu" if deterministic is None else deterministic
        seed_everything(cfg.search.seed, det)
        raw = data if data is not None else load_search_data(cfg)
        if raw.task != cfg.search.task:
            raise UserError(
                f"data {raw.name} is a '{raw.task}' data set but the task is '{cfg.search.task}' "
                f"(set the task to '{raw.task}')",
                argument="task",
            )
        self.task = make_task(raw)
        self.data = split_data(raw, cfg.data.val_fraction, cfg.search.seed, self.device)
        if strategy is not None and not isinstance(strategy, str):
            space = space or strategy.space
        self.space = space if space is not None else build_space(cfg, raw.task)
        chosen = strategy if strategy is not None else cfg.search.strategy
        self.strategy = create_strategy(chosen, self.space, cfg)
        self.budget = self._budget()
        if self.budget is not None:
            self.strategy.set_budget(self.budget)
        torch.manual_seed(cfg.search.seed)
        self.model = self._build_supernet().to(self.device)
        self.optimizer = torch.optim.SGD(
            self._weight_params(),
            lr=weight_lr(cfg),
            momentum=cfg.optim.momentum,
            weight_decay=cfg.optim.weight_decay,
        )
        self.schedule = LrSchedule(
            self.strategy.lr_plan(weight_lr(cfg), cfg.optim.lr_decay, cfg.optim.lr_decay_every)
        )
        self.strategy.setup(self.model, self.device)
        # crop (augment.crop_fraction) + flip where the data allows it; None when data.augment is off
        self.augment = augment_for(cfg, raw, purpose="search")
        self.steps_per_epoch = epoch_steps(cfg, int(self.data.train_x.shape[0]))
        self.epoch = 0  # next epoch to run
        self._resumed_reports: dict[str, Any] | None = None
        self._val_cursor: tuple[torch.Tensor, int] | None = None
        self._train_cursor: tuple[torch.Tensor, int] | None = None

    # --- construction -----------------------------------------------------------------------
    def _build_supernet(self) -> nn.Module:
        s = self.cfg.supernet
        try:
            return self.space.supernet(
                in_channels=self.data.in_channels,
                num_outputs=self.data.num_outputs,
                image_size=self.data.image_size,
                mode=self.strategy.mode,
                init_channels=s.init_channels,
                layers=s.layers,
                stem_multiplier=s.stem_multiplier,
            )
        except ValueError as exc:
            raise UserError(f"cannot build the {self.space.name} supernet: {exc}") from None

    def _budget(self) -> Any:
        """The ``--max-mflops`` / ``--max-params`` budget at the deployed (train-config) size."""
        s = self.cfg.search
        if s.max_mflops is None and s.max_params is None:
            return None
        if not hasattr(self.space, "budget"):
            raise UserError(f"a MFLOPs / parameter budget needs a chain space (mobilenet or face), "
                            f"not '{self.space.name}'", argument="budget")
        budget = self.space.budget(
            in_channels=self.data.in_channels, num_outputs=self.data.num_outputs,
            image_size=self.data.image_size, init_channels=self.cfg.train.init_channels,
            max_mflops=s.max_mflops, max_params=s.max_params,
        )
        try:
            budget.check()
        except ValueError as exc:
            raise UserError(str(exc), argument="budget") from None
        return budget

    def _weight_params(self) -> list[nn.Parameter]:
        fn = getattr(self.model, "weight_parameters", None)
        return list(fn()) if fn is not None else list(self.model.parameters())

    def plan(self) -> dict[str, Any]:
        decisions = self.space.decisions()
        return {
            **self.strategy.plan(),
            "space": self.space.name,
            "task": self.data.task_kind,
            "data": self.data.name,
            "device": str(self.device),
            "steps_per_epoch": self.steps_per_epoch
            if self.steps_per_epoch is not None
            else max(1, math.ceil(int(self.data.train_x.shape[0]) / self.cfg.data.batch_size)),
            "epoch_kind": "one pass" if self.steps_per_epoch is None else "fixed steps",
            "train_samples": int(self.data.train_x.shape[0]),
            "val_samples": int(self.data.val_x.shape[0]),
            "image_size": self.data.image_size,
            "in_channels": self.data.in_channels,
            "num_outputs": self.data.num_outputs,
            "decisions": [d.name for d in decisions],
            "candidates": [list(d.candidates) for d in decisions],
            "supernet_params": int(sum(p.numel() for p in self._weight_params())),
        }

    # --- hooks a distributed wrapper overrides --------------------------------------------------
    def gather_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation outputs of this process -> of all processes (identity on one process)."""
        return logits, y

    def reduce_mean(self, value: float) -> float:
        """Average a scalar (the train loss) over processes (identity on one process)."""
        return value

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's part of an epoch's sample order (all of it on one process)."""
        return order

    def is_main_process(self) -> bool:
        return True

    def world_size(self) -> int:
        """Processes sharing each global batch (1 here)."""
        return 1

    def sync_gradients(self, params: list[nn.Parameter]) -> None:
        """Average gradients over processes after each backward (nothing to do on one process)."""

    # --- one epoch ----------------------------------------------------------------------------
    def _set_sample(self, choice: list[int] | None) -> None:
        if choice is not None:
            self.model.set_sample(choice)

    def _next_val_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cycle through the validation split in random order (DARTS' architecture batches)."""
        n = int(self.data.val_x.shape[0])
        if self._val_cursor is None or self._val_cursor[1] >= n:
            self._val_cursor = (torch.randperm(n, device=self.device), 0)
        perm, pos = self._val_cursor
        idx = perm[pos : pos + batch_size]
        self._val_cursor = (perm, pos + batch_size)
        return self._prepare(self.data.val_x[idx], train=True), self.data.val_y[idx]

    def _prepare(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        if train and self.augment is not None:
            return self.augment(x)
        return to_float(x)

    def _epoch_order(self) -> tuple[torch.Tensor, int]:
        """This epoch's train indices in training order for all processes (before :meth:`shard`),
        and the batch size each process slices them with.

        The authors' epoch (``steps_per_epoch`` "pass"): one pass in a fresh random order. A fixed
        step count: ``steps`` global batches drawn from a cursor over reshuffled passes that
        carries on across epochs (and is checkpointed), so every image is seen equally often
        whatever the epoch length; a pass's remainder smaller than a batch waits for the next. A
        split smaller than one global batch makes every step one (shuffled) pass.
        """
        n = int(self.data.train_x.shape[0])
        bs = self.cfg.data.batch_size
        if self.steps_per_epoch is None:
            return torch.randperm(n, device=self.device), bs
        world = self.world_size()
        bs = max(1, min(bs, n // world))
        global_bs = bs * world
        parts = []
        for _ in range(self.steps_per_epoch):
            if self._train_cursor is None or self._train_cursor[1] + global_bs > n:
                self._train_cursor = (torch.randperm(n, device=self.device), 0)
            perm, pos = self._train_cursor
            parts.append(perm[pos : pos + global_bs])
            self._train_cursor = (perm, pos + global_bs)
        return torch.cat(parts), bs

    def train_epoch(self, sample: list[int] | None) -> tuple[float, float]:
        model, data = self.model, self.data
        model.train()
        self._set_sample(sample)
        order, bs = self._epoch_order()
        perm = self.shard(order)
        n = int(perm.numel())
        loss_sum = torch.zeros((), device=self.device)
        outputs, targets = [], []
        clip = self.cfg.optim.grad_clip
        params = self._weight_params()
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            if idx.numel() < 2 and n >= 2:  # a batch of one breaks batch norm: skip the remainder
                continue
            per_batch = self.strategy.batch_sample()
            if per_batch is not None:
                model.set_sample(per_batch)
            if self.strategy.uses_arch_step:
                xv, yv = self._next_val_batch(bs)
                self.strategy.arch_step(model, xv, yv, self.task.loss)
            x = self._prepare(data.train_x[idx], train=True)
            y = data.train_y[idx]
            self.optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = self.task.loss(logits, y)
            loss.backward()
            self.sync_gradients(params)
            nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip)
            self.optimizer.step()
            loss_sum += loss.detach() * idx.numel()
            outputs.append(logits.detach())
            targets.append(y)
        train_loss = float(loss_sum.item()) / max(1, n)
        train_metric = self.task.score(torch.cat(outputs), torch.cat(targets)) if outputs else 0.0
        return train_loss, train_metric

    @torch.no_grad()
    def evaluate(self, sample: list[int] | None) -> tuple[float, float]:
        """(loss, primary metric) of the current architecture on the validation split."""
        model, data = self.model, self.data
        model.train()  # batch statistics, as the authors validate
        self._set_sample(sample)
        bs = self.cfg.data.eval_batch_size
        outs = []
        for start in range(0, int(data.val_x.shape[0]), bs):
            outs.append(model(to_float(data.val_x[start : start + bs])))
        logits, y = self.gather_outputs(torch.cat(outs), data.val_y)
        return float(self.task.loss(logits, y).item()), float(self.task.score(logits, y))

    # --- checkpoints --------------------------------------------------------------------------
    @property
    def state_path(self) -> Path | None:
        return self.run_dir / STATE_FILE if self.run_dir is not None else None

    def save_state(self, extra: dict[str, Any] | None = None) -> None:
        if self.state_path is None or not self.is_main_process():
            return
        state = {
            "version": STATE_VERSION,
            "epoch": self.epoch,  # next epoch to run
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": _rng_snapshot(),
            "val_cursor": None
            if self._val_cursor is None
            else [self._val_cursor[0].cpu(), self._val_cursor[1]],
            "train_cursor": None
            if self._train_cursor is None
            else [self._train_cursor[0].cpu(), self._train_cursor[1]],
            "extra": extra or {},
            "owner": self.owner,
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(state, self.state_path)

    def attach(
        self, recorder: SearchRecorder, run_dir: str | Path | None, owner: dict[str, Any] | None
    ) -> None:
        """Where this loop reports and checkpoints, given once its run exists (the loop is built
        first, so that bad data or a bad space fails before any run is stored)."""
        self.recorder = recorder
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.owner = dict(owner) if owner else None

    def has_state(self) -> bool:
        """Whether ``run_dir`` holds a state file to resume from."""
        return self.state_path is not None and self.state_path.is_file()

    def load_state(self) -> bool:
        """Restore the last completed epoch from ``run_dir``; False when there is no checkpoint."""
        path = self.state_path
        if path is None or not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # corrupt or foreign file: say so instead of a traceback
            raise UserError(f"cannot read search checkpoint {path}: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise UserError(
                f"search checkpoint {path} has version {state.get('version')}, expected {STATE_VERSION}"
            )
        found = state.get("owner")
        if self.owner is not None and found is not None and found != self.owner:
            raise UserError(
                f"the search state {path} belongs to run {found.get('run_id')} of store "
                f"{found.get('store_id')}, not to run {self.owner.get('run_id')} of store "
                f"{self.owner.get('store_id')}; refusing to continue from another run's weights"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.schedule.load_state_dict(state["schedule"])
        _rng_restore(state["rng"])
        vc = state.get("val_cursor")
        self._val_cursor = None if vc is None else (vc[0].to(self.device), int(vc[1]))
        tc = state.get("train_cursor")
        self._train_cursor = None if tc is None else (tc[0].to(self.device), int(tc[1]))
        self.epoch = int(state["epoch"])
        self._resumed_reports = (state.get("extra") or {}).get("reports")
        return True

    def _report(self, reports: dict[str, Any]) -> None:
        epoch = int(reports["epoch"])
        self.recorder.on_epoch(epoch, reports["record"])
        for upd in reports["updates"]:
            extra = {k: v for k, v in upd.items() if k not in ("update", "theta", "alive")}
            self.recorder.on_distribution(
                int(upd["update"]), epoch, np.asarray(upd["theta"]), np.asarray(upd["alive"]), extra
            )

    # --- the run ------------------------------------------------------------------------------
    def genotype_cost(self, genotype: dict[str, Any]) -> dict[str, float]:
        """Params and MFLOPs of the genotype's network at the final-training size (config ``train``)."""
        t = self.cfg.train
        try:
            return self.space.cost(
                genotype,
                in_channels=self.data.in_channels,
                num_outputs=self.data.num_outputs,
                image_size=self.data.image_size,
                init_channels=t.init_channels,
                layers=t.layers,
            )
        except ValueError as exc:  # e.g. a network too deep for the image size: report, don't fail
            return {"error": str(exc)}  # type: ignore[dict-item]

    @torch.no_grad()
    @torch.no_grad()
    def final_signal(self, result: StrategyResult) -> dict[str, Any]:
        """Did the supernet learn anything? :func:`automl.learning_checks.check_classifier` on its
        validation outputs (metric vs chance for this split's size and labels, prediction
        collapse) for the found architecture's path: DDPNAS' surviving ops, random WS' best
        ranked choice, DARTS' mixed supernet; evaluated as :meth:`evaluate` does."""
        from automl.learning_checks import check_classifier, check_prune_ties

        choice = result.summary.get("surviving_choice")
        if choice is None and result.summary.get("ranking"):
            choice = max(result.summary["ranking"], key=lambda r: r["val_metric"])["choice"]
        model, data = self.model, self.data
        model.train()  # batch statistics, as in evaluate()
        self._set_sample(None if choice is None else list(choice))
        bs = self.cfg.data.eval_batch_size
        outs = [model(to_float(data.val_x[s : s + bs])) for s in range(0, int(data.val_x.shape[0]), bs)]
        logits, y = self.gather_outputs(torch.cat(outs), data.val_y)
        signal = check_classifier(
            self.task.kind,
            logits.float().cpu().numpy(),
            y.float().cpu().numpy(),
            class_names=list(data.class_names),
            split="validation",
        )
        summary = result.summary
        ties = check_prune_ties(int(summary.get("tied_prunes", 0)), int(summary.get("prunes", 0)))
        if ties:
            signal["warnings"].extend(f.to_dict() for f in ties)
            signal["checks"].append("prune_ties")
        return signal

    def _evaluate_choice(self, choice: list[int]) -> float:
        return self.evaluate(list(choice))[1]

    def _report_progress(
        self, epoch: int, total: int, record: dict[str, Any], epoch_times: list[float]
    ) -> None:
        """One progress report after ``epoch``: its record, the strategy's status and an ETA from
        the mean of the last ten epochs."""
        if self.progress is None:
            return
        remaining = self.strategy.remaining_epochs()
        mean_t = float(np.mean(epoch_times[-10:]))
        self.progress(
            {"epoch": epoch + 1, "total": total, **record, **self.strategy.status(),
             "eta_seconds": remaining * mean_t}
        )  # fmt: skip

    def run(self, resume: bool = False, stop_after: int | None = None) -> SearchOutcome | None:
        """Search to the end (or ``stop_after`` epochs, for tests); ``resume`` continues from the
        checkpoint in ``run_dir``. Returns ``None`` when stopped early."""
        started = time.perf_counter()
        resumed = self.load_state() if resume else False
        if resumed:
            self.recorder.on_resume(self.epoch - 1)
            if self._resumed_reports:
                self._report(self._resumed_reports)
        plan = self.plan()
        self.recorder.on_start(plan)
        total = self.strategy.total_epochs()
        epoch_times: list[float] = []
        ran = 0
        while not self.strategy.finished:
            if stop_after is not None and ran >= stop_after:
                return None
            t0 = time.perf_counter()
            status_before = self.strategy.status()
            sample = self.strategy.next_sample()
            phase = self.strategy.phase()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, train_metric = self.train_epoch(sample)
            val_loss, val_metric = self.evaluate(sample)
            train_loss = self.reduce_mean(train_loss)
            if not math.isfinite(train_loss):
                raise UserError(
                    f"training diverged at epoch {self.epoch} (loss {train_loss}); lower the learning rate"
                )
            updates = self.strategy.end_epoch(sample, val_metric)
            self.schedule.after_epoch(
                self.optimizer, self.strategy.schedule_epoch(self.epoch), self.strategy.round_boundary()
            )
            wall = time.perf_counter() - t0
            epoch_times.append(wall)
            record = {
                "phase": phase,
                "round": status_before.get("round"),
                "sample": sample,
                "train_loss": train_loss,
                "train_metric": train_metric,
                "val_loss": val_loss,
                "val_metric": val_metric,
                "metric_name": self.task.primary_metric,
                "lr": lr,
                "wall_time": wall,
                "surviving_ops": status_before.get("surviving_ops"),
            }
            epoch = self.epoch
            self.epoch += 1
            ran += 1
            # The checkpoint carries this epoch's reports: a kill between the checkpoint and the
            # store writes is repaired on resume by replaying them (the recorder upserts).
            reports = {"epoch": epoch, "record": _plain(record), "updates": _plain(updates)}
            self.save_state({"reports": reports})
            self._report(reports)
            self._report_progress(epoch, total, record, epoch_times)
        result: StrategyResult = self.strategy.finalize(self._evaluate_choice)
        wall_time = time.perf_counter() - started
        summary = {
            **result.summary,
            "cost": self.genotype_cost(result.genotype),
            "search_epochs": total,
            "epochs_this_process": ran,
            "resumed": resumed,
            "wall_time": wall_time,
            "mean_epoch_time": float(np.mean(epoch_times)) if epoch_times else None,
            "metric_name": self.task.primary_metric,
            "signal": self.final_signal(result),  # automl.learning_checks: did the supernet learn?
        }
        self.recorder.on_finish(result.genotype, summary)
        return SearchOutcome(result.genotype, summary, total, wall_time, epoch_times)


def dry_run_plan(cfg: Config) -> dict[str, Any]:
    """The search plan (epochs, decisions, candidates) without loading data or building networks."""
    space = build_space(cfg, cfg.search.task)
    strategy = build_strategy(cfg, space)
    decisions = space.decisions()
    return {
        **strategy.plan(),
        "space": space.name,
        "task": cfg.search.task,
        "data": cfg.search.data,
        "device": str(resolve_device(cfg.search.device)),
        "steps_per_epoch": cfg.search.steps_per_epoch
        if cfg.search.steps_per_epoch == "pass"
        else epoch_steps(cfg, n_train=0),
        "weight_lr": weight_lr(cfg),
        "lr_schedule": strategy.lr_plan(
            weight_lr(cfg), cfg.optim.lr_decay, cfg.optim.lr_decay_every
        ).__dict__,
        "num_decisions": len(decisions),
        "decisions": [d.name for d in decisions],
        "candidates": [list(d.candidates) for d in decisions],
    }
