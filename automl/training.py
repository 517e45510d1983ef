"""Final training of a discrete (searched) network from scratch, and its evaluation.

The loop follows the DARTS / DDPNAS evaluation recipe: SGD with momentum, cosine learning rate per
epoch, an auxiliary head weighted into the loss, drop-path whose probability grows linearly over
the epochs (set on the model's ``drop_path_prob`` attribute, as in the authors' code), and
gradient-norm clipping.

Why the data handling looks unusual: face crops are small (48x48 grey is 2.3 KB), so a whole split
fits on an accelerator as a uint8 tensor. Batches are then gathered with an index tensor and
augmented on the device (:mod:`automl.data.augment`), which removes the DataLoader workers and the
host-to-device copy from every step. A split too large for the device budget stays on the host
(pinned) and only the batch is copied.

On CUDA the loop uses autocast (bf16 where supported, fp16 with a gradient scaler otherwise),
channels-last memory format and ``cudnn.benchmark``. On CPU it does none of that and is
deterministic for a given seed: the same seed gives bit-identical weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from automl.config import AugmentSection, TrainSection
from automl.data.augment import Augment, build_augment, to_float
from automl.errors import UserError

if TYPE_CHECKING:
    from search_spaces.registry import AllowUserCode

ProgressFn = Callable[[int, int, dict[str, Any]], None]
"""``progress(step, total_steps, info)``: called after every training step (for progress bars)."""

EpochFn = Callable[[int, dict[str, Any]], None]
"""``on_epoch(epoch, record)``: called after every epoch with the record stored for it."""

ExtraLossFn = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
"""``extra_loss(x, y, output)``: added to the loss (e.g. distillation); ``x`` is the float batch
the model saw, ``output`` the model's raw output (a tensor, or ``(logits, aux_logits)``)."""

TransformFn = Callable[[torch.Tensor], torch.Tensor]
"""Applied to every float batch, in training and evaluation (e.g. occluding half of the face)."""


# --------------------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA on a machine without it is a user error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"the device '{device}' was asked for but no CUDA GPU is visible; use the device 'cpu' or 'auto'",
            argument="device",
        )
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device '{device}' (use auto, cpu or cuda)", argument="device") from None


def _amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 autocast where the GPU supports it, fp16 otherwise; no autocast on CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def place_split(x: torch.Tensor, device: torch.device, budget_bytes: int | None = None) -> torch.Tensor:
    """Move a whole split to ``device`` if it fits the budget; otherwise keep it on the host.

    The default budget on CUDA is a quarter of the free device memory (the rest is for the model's
    activations). On the host a CUDA-bound split is pinned so batch copies can overlap compute.
    """
    if device.type != "cuda":
        return x if x.device == device else x.to(device)
    if budget_bytes is None:
        free, _total = torch.cuda.mem_get_info(device)
        budget_bytes = free // 4
    nbytes = x.numel() * x.element_size()
    if nbytes <= budget_bytes:
        return x.to(device, non_blocking=False)
    return x.contiguous().pin_memory()


# ------------------------------------------------------------------------------------ the model


def split_output(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits, aux_logits or None)`` from a network's output (a tensor or a tuple)."""
    if isinstance(output, tuple | list):
        logits = output[0]
        aux = output[1] if len(output) > 1 else None
        return logits, aux
    return output, None


def forward_train(model: nn.Module, x: torch.Tensor) -> Any:
    """The training-mode output: ``(logits, aux_logits)`` for networks with an auxiliary head.

    DARTS networks keep ``forward`` logits-only (what inference and export see) and expose
    ``forward_with_aux`` for training; other networks may return a tuple from ``forward``.
    """
    with_aux = getattr(model, "forward_with_aux", None)
    return with_aux(x) if callable(with_aux) else model(x)


def count_parameters(model: nn.Module) -> int:
    """Parameters of the deployed network: the auxiliary head is dropped after training (DARTS)."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)


def network_options(train_cfg: TrainSection) -> dict[str, Any]:
    """Size knobs handed to ``SearchSpace.network`` (stored with the checkpoint to rebuild it)."""
    return {
        "init_channels": train_cfg.init_channels,
        "layers": train_cfg.layers,
        "auxiliary": train_cfg.auxiliary_weight > 0,
    }


def build_network(
    genotype: dict[str, Any],
    *,
    in_channels: int,
    num_outputs: int,
    image_size: int,
    options: dict[str, Any],
    allow_user_code: AllowUserCode = False,
) -> tuple[nn.Module, Any]:
    """The stand-alone network of ``genotype`` and its search space (bad genotypes -> UserError).

    A genotype whose space is a user's module (``nni:...``) is built only when ``allow_user_code``
    is that space, the user's explicit choice (:func:`search_spaces.registry.check_user_code`).
    """
    from search_spaces import UserCodeRefusedError, create_space
    from search_spaces.registry import SpaceUnavailableError

    if not isinstance(genotype, dict) or "space" not in genotype:
        raise UserError('the genotype must be a JSON object with a \'space\' key (e.g. "space": "darts")')
    try:
        space = create_space(genotype["space"], allow_user_code=allow_user_code)
        genotype = space.validate_genotype(genotype)
        model = space.network(
            genotype, in_channels=in_channels, num_outputs=num_outputs, image_size=image_size, **options
        )
    except UserError:
        raise
    except (UserCodeRefusedError, SpaceUnavailableError) as exc:
        raise UserError(str(exc), argument=getattr(exc, "argument", None)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot build the network from the genotype: {exc}") from None
    return model, space


def network_cost(
    space: Any, genotype: dict[str, Any], model: nn.Module, **sizes: Any
) -> dict[str, float | None]:
    """Parameter count of ``model`` and the space's MFLOPs estimate when it offers one."""
    cost: dict[str, float | None] = {"params": count_parameters(model), "mflops": None}
    try:
        reported = space.cost(genotype, **sizes)
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return cost
    if reported.get("mflops") is not None:
        cost["mflops"] = float(reported["mflops"])
    return cost


# ------------------------------------------------------------------------------------- the loop


@dataclass
class SplitOutputs:
    """A network's outputs over a whole split (CPU, float32): the logits and, when asked for, the
    penultimate features (what the final linear classifier sees, as the export's ``embed``)."""

    logits: torch.Tensor
    embeddings: torch.Tensor | None = None


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    wall_time: float
    outputs: SplitOutputs | None = None  # the test split after the last epoch (with embeddings)


EmbeddingForward = Callable[[torch.Tensor], tuple[Any, torch.Tensor]]


def _embedding_forward(model: nn.Module) -> tuple[EmbeddingForward | None, Callable[[], None]]:
    """(``x -> (output, embedding)``, a clean-up to call afterwards); ``(None, ...)`` when the
    network has no embedding to read.

    The embedding is the export's (:mod:`automl.exporting`): the network's own
    ``forward_with_embedding`` / ``embed`` when it has them, else the input of its final linear
    classifier, read by a forward hook (:class:`automl.distill.EmbeddingTap`) during the ordinary
    forward, so the checked features are those of the very pass that gave the logits.
    """
    both = getattr(model, "forward_with_embedding", None)
    if callable(both):
        return both, lambda: None
    embed = getattr(model, "embed", None)
    if callable(embed):
        return (lambda x: (model(x), embed(x))), lambda: None
    from automl.distill import EmbeddingTap

    try:
        tap = EmbeddingTap(model)
    except UserError:
        return None, lambda: None

    def forward(x: torch.Tensor) -> tuple[Any, torch.Tensor]:
        output = model(x)
        assert tap.embedding is not None
        return output, tap.embedding

    return forward, tap.remove


def predict_split(
    model: nn.Module,
    x: torch.Tensor,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    amp: bool = True,
    transform: TransformFn | None = None,
    embeddings: bool = False,
) -> SplitOutputs:
    """``model``'s logits (and penultimate features with ``embeddings``) in eval mode over a split."""
    device = resolve_device(device)
    amp_dtype = _amp_dtype(device, amp)
    channels_last = device.type == "cuda"
    was_training = model.training
    model.eval()
    both, cleanup = _embedding_forward(model) if embeddings else (None, lambda: None)
    chunks, feats = [], []
    try:
        with torch.inference_mode():
            for start in range(0, x.shape[0], batch_size):
                xb = to_float(x[start : start + batch_size].to(device, non_blocking=True))
                if transform is not None:
                    xb = transform(xb)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with _autocast(device, amp_dtype):
                    if both is not None:
                        output, emb = both(xb)
                        feats.append(emb.float().flatten(1).cpu())
                    else:
                        output = model(xb)
                    logits, _ = split_output(output)
                chunks.append(logits.float().cpu())
    finally:
        cleanup()
        model.train(was_training)
    if not chunks:
        raise UserError("the evaluation split is empty (check the data spec and the fold / sample limits)",
                        argument="data")
    return SplitOutputs(torch.cat(chunks), torch.cat(feats) if feats else None)


def split_signal(
    task: Any, outputs: SplitOutputs | None, y: torch.Tensor, *, split: str = "test"
) -> dict[str, Any] | None:
    """Did the network learn anything? :func:`automl.learning_checks.check_classifier` on its
    outputs over a split: metric vs chance, prediction collapse, embedding collapse."""
    if outputs is None:
        return None
    from automl.learning_checks import check_classifier

    return check_classifier(
        task.kind,
        outputs.logits.numpy(),
        y.detach().cpu().float().numpy(),
        embeddings=None if outputs.embeddings is None else outputs.embeddings.numpy(),
        class_names=list(getattr(task, "class_names", []) or []),
        split=split,
    )


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Any,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    amp: bool = True,
    transform: TransformFn | None = None,
) -> dict[str, Any]:
    """The task's metrics (``task.evaluate``) of ``model`` in eval mode over a whole split."""
    outputs = predict_split(
        model, x, device=device, batch_size=batch_size, amp=amp, transform=transform
    )
    return task.evaluate(outputs.logits, y.cpu())


@dataclass
class _Trainer:
    """What every training step needs, gathered once by :func:`_setup_training` so that the epoch
    and step helpers of :func:`fit` share one set of objects instead of a dozen arguments."""

    model: nn.Module
    task: Any
    train_cfg: TrainSection
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    prepare: TransformFn
    transform: TransformFn | None
    extra_loss: ExtraLossFn | None
    on_device: bool = True

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def _fit_lengths(
    train_x: torch.Tensor,
    test_x: torch.Tensor | None,
    test_y: torch.Tensor | None,
    train_cfg: TrainSection,
    epochs: int | None,
    eval_every: int | None,
) -> tuple[int, int, int]:
    """``(epochs, eval_every, n)`` with the config's defaults, refusing sizes the loop cannot run:
    checked before anything is seeded or moved, so a bad call leaves the model untouched."""
    eval_every = int(eval_every if eval_every is not None else train_cfg.eval_every)
    epochs = int(epochs if epochs is not None else train_cfg.epochs)
    if epochs < 1:
        raise UserError(f"the number of epochs must be at least 1 (got {epochs})", argument="epochs")
    n = int(train_x.shape[0])
    if n < 2:
        raise UserError(f"the training split has {n} samples; training needs at least 2")
    if test_x is not None and test_y is None:
        raise ValueError("test_x given without test_y")
    return epochs, eval_every, n


def _seeded_augment(augment: TransformFn | None, seed: int) -> TransformFn:
    """The batch preparation: an :class:`Augment` draws from its own generator seeded with
    ``seed + 1`` (so runs are reproducible and the shuffling generator is not disturbed); a custom
    callable is used as given; without one the batch is only scaled to float."""
    if isinstance(augment, Augment):
        aug_generator = torch.Generator().manual_seed(seed + 1)
        aug = augment

        def augment(x: torch.Tensor) -> torch.Tensor:
            return aug(x, generator=aug_generator)

    return augment or to_float


def _setup_training(
    model: nn.Module,
    train_cfg: TrainSection,
    task: Any,
    device: torch.device,
    *,
    epochs: int,
    seed: int,
    augment: TransformFn | None,
    transform: TransformFn | None,
    extra_loss: ExtraLossFn | None,
) -> _Trainer:
    """Device settings, the model on the device, optimiser, cosine schedule and batch preparation.

    On CUDA this switches on ``cudnn.benchmark`` and channels-last; the gradient scaler is only
    active for fp16 autocast (bf16 needs none).
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp_dtype = _amp_dtype(device, train_cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=train_cfg.lr, momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    return _Trainer(
        model=model,
        task=task,
        train_cfg=train_cfg,
        device=device,
        amp_dtype=amp_dtype,
        scaler=scaler,
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        prepare=_seeded_augment(augment, seed),
        transform=transform,
        extra_loss=extra_loss,
    )


def _train_step(
    tr: _Trainer, xs: torch.Tensor, ys: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step on the samples ``idx``: ``(loss, logits, labels)`` of that batch.

    The loss is the task's on the logits, plus the weighted auxiliary head's and ``extra_loss``
    (e.g. distillation); gradients are unscaled before norm clipping so the clip sees true norms.
    """
    xb = xs[idx]
    yb = ys[idx]
    if not tr.on_device:
        xb = xb.to(tr.device, non_blocking=True)
        yb = yb.to(tr.device, non_blocking=True)
    xb = tr.prepare(xb)
    if tr.transform is not None:
        xb = tr.transform(xb)
    if tr.cuda:
        xb = xb.contiguous(memory_format=torch.channels_last)
    cfg = tr.train_cfg
    with _autocast(tr.device, tr.amp_dtype):
        output = forward_train(tr.model, xb)
        logits, aux = split_output(output)
        loss = tr.task.loss(logits.float(), yb)
        if aux is not None and cfg.auxiliary_weight > 0:
            loss = loss + cfg.auxiliary_weight * tr.task.loss(aux.float(), yb)
        if tr.extra_loss is not None:
            loss = loss + tr.extra_loss(xb, yb, output)
    tr.optimizer.zero_grad(set_to_none=True)
    tr.scaler.scale(loss).backward()
    tr.scaler.unscale_(tr.optimizer)
    nn.utils.clip_grad_norm_(tr.params, cfg.grad_clip)
    tr.scaler.step(tr.optimizer)
    tr.scaler.update()
    return loss, logits, yb


def _train_epoch(
    tr: _Trainer,
    xs: torch.Tensor,
    ys: torch.Tensor,
    generator: torch.Generator,
    *,
    epoch: int,
    epochs: int,
    batch_size: int,
    step: int,
    total_steps: int,
    progress: ProgressFn | None,
) -> tuple[dict[str, Any], int]:
    """One pass over a fresh permutation of the training split: ``(record, step)``.

    Drop-path grows linearly with the epoch; the record holds the epoch's mean training loss,
    its metric over every batch's logits and the learning rate used. A non-finite loss stops
    here as a user error, since later epochs could only carry NaNs.
    """
    model = tr.model
    n = int(xs.shape[0])
    model.train()
    if hasattr(model, "drop_path_prob"):
        model.drop_path_prob = tr.train_cfg.drop_path * epoch / epochs
    lr = tr.optimizer.param_groups[0]["lr"]
    perm = torch.randperm(n, generator=generator)
    if tr.on_device:
        perm = perm.to(tr.device)
    loss_sum = torch.zeros((), device=tr.device)
    seen = 0
    logit_chunks: list[torch.Tensor] = []
    label_chunks: list[torch.Tensor] = []
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        if idx.numel() < 2:  # a lone sample breaks BatchNorm statistics; skip the remainder
            continue
        loss, logits, yb = _train_step(tr, xs, ys, idx)
        loss_sum += loss.detach().float() * idx.numel()
        seen += idx.numel()
        logit_chunks.append(logits.detach().float())
        label_chunks.append(yb)
        step += 1
        if progress is not None:
            progress(step, total_steps, {"epoch": epoch, "epochs": epochs})
    tr.scheduler.step()
    train_loss = float(loss_sum) / max(seen, 1)
    if not math.isfinite(train_loss):
        raise UserError(
            f"training diverged (loss is {train_loss} in epoch {epoch}); lower the learning rate "
            "(train.lr in the config file) or check the labels",
            argument="config_file",
        )
    train_metric = float(tr.task.score(torch.cat(logit_chunks).cpu(), torch.cat(label_chunks).cpu()))
    record: dict[str, Any] = {
        "phase": "train",
        "train_loss": train_loss,
        "train_metric": train_metric,
        "lr": lr,
        "drop_path_prob": float(getattr(model, "drop_path_prob", 0.0)),
    }
    return record, step


def _due_for_eval(epoch: int, epochs: int, eval_every: int) -> bool:
    """The test split is evaluated every ``eval_every`` epochs (never when 0) and after the last."""
    return epoch == epochs - 1 or (eval_every > 0 and (epoch + 1) % eval_every == 0)


def fit(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    task: Any,
    train_cfg: TrainSection,
    *,
    test_x: torch.Tensor | None = None,
    test_y: torch.Tensor | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    epochs: int | None = None,
    augment: TransformFn | None = None,
    transform: TransformFn | None = None,
    extra_loss: ExtraLossFn | None = None,
    progress: ProgressFn | None = None,
    on_epoch: EpochFn | None = None,
    eval_every: int | None = None,
) -> FitResult:
    """Train ``model`` in place on uint8 images ``train_x`` and evaluate on the test split.

    ``augment`` maps a uint8 batch on the device to float32 in [0, 1] (default: plain scaling).
    Every ``eval_every`` epochs (default ``train_cfg.eval_every``) and after the last one the test
    split is evaluated; its primary metric is recorded as ``val_metric`` next to ``train_loss`` /
    ``train_metric``.
    Returns the per-epoch history and the final test metrics (empty if no test split is given).
    """
    device = resolve_device(device)
    epochs, eval_every, n = _fit_lengths(train_x, test_x, test_y, train_cfg, epochs, eval_every)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tr = _setup_training(
        model, train_cfg, task, device, epochs=epochs, seed=seed,
        augment=augment, transform=transform, extra_loss=extra_loss,
    )  # fmt: skip
    xs = place_split(train_x, device)
    ys = place_split(train_y, device)
    tr.on_device = xs.device == device
    if test_x is not None:  # evaluated every epoch: keep it on the device as well when it fits
        test_x = place_split(test_x, device)
    batch_size = min(train_cfg.batch_size, n)
    total_steps = math.ceil(n / batch_size) * epochs
    history: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    final_outputs: SplitOutputs | None = None
    step = 0
    start_all = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        record, step = _train_epoch(
            tr, xs, ys, generator, epoch=epoch, epochs=epochs, batch_size=batch_size,
            step=step, total_steps=total_steps, progress=progress,
        )  # fmt: skip
        last = epoch == epochs - 1
        if test_x is not None and _due_for_eval(epoch, epochs, eval_every):
            outputs = predict_split(  # the last epoch's also feeds the learning checks
                model, test_x, device=device, batch_size=max(batch_size, 256),
                amp=train_cfg.amp, transform=transform, embeddings=last,
            )  # fmt: skip
            metrics = task.evaluate(outputs.logits, test_y.cpu())
            if last:
                final_outputs = outputs
            record["val_loss"] = float(metrics.get("loss", float("nan")))
            record["val_metric"] = float(metrics[task.primary_metric])
        record["wall_time"] = time.perf_counter() - t0
        history.append({"epoch": epoch, **record})
        if on_epoch is not None:
            on_epoch(epoch, record)
    model.eval()
    return FitResult(
        history=history, metrics=metrics, wall_time=time.perf_counter() - start_all, outputs=final_outputs
    )


# ----------------------------------------------------------------------------- genotype -> model


def _augment_settings(augment: TransformFn | None) -> dict[str, Any] | str | None:
    """What is recorded about the training augmentation: its settings, ``custom`` or None."""
    if augment is None:
        return None
    return augment.settings() if isinstance(augment, Augment) else "custom"


@dataclass
class TrainResult:
    """A trained network and what was measured about it."""

    model: nn.Module
    genotype: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    params: int = 0
    mflops: float | None = None
    network_options: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    checkpoint: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    signal: dict[str, Any] | None = None  # automl.learning_checks' verdict on the evaluated split


@dataclass
class _BuiltNetwork:
    """A freshly initialised network for a data set, with what its checkpoint must record."""

    model: nn.Module
    genotype: dict[str, Any]  # validated by the space (canonical form)
    options: dict[str, Any]
    sizes: dict[str, Any]
    cost: dict[str, float | None]


def _build_for_data(
    genotype: dict[str, Any],
    data: Any,
    train_cfg: TrainSection,
    *,
    seed: int,
    allow_user_code: AllowUserCode,
) -> _BuiltNetwork:
    """``genotype``'s network sized for ``data``, with its cost. The global seed is set just
    before construction because the weight initialisation is part of the seeded run."""
    options = network_options(train_cfg)
    sizes = {"in_channels": data.in_channels, "num_outputs": data.num_outputs, "image_size": data.image_size}
    torch.manual_seed(seed)
    model, space = build_network(genotype, options=options, allow_user_code=allow_user_code, **sizes)
    genotype = space.validate_genotype(genotype)
    cost = network_cost(space, genotype, model, **sizes, **options)
    return _BuiltNetwork(model=model, genotype=genotype, options=options, sizes=sizes, cost=cost)


def _default_augment(
    augment: TransformFn | None, train_cfg: TrainSection, augment_cfg: AugmentSection | None, data: Any
) -> TransformFn | None:
    """The caller's ``augment``, else (when ``train_cfg.augment`` is on) the ``[augment]`` section's
    at the data's size; flips only where the data allows them (``hflip_ok``), since some face
    labels (e.g. left/right action units) are not mirror-symmetric."""
    if augment is None and train_cfg.augment:
        augment = build_augment(
            augment_cfg if augment_cfg is not None else AugmentSection(),
            image_size=data.image_size,
            hflip_ok=bool(getattr(data, "hflip_ok", True)),
        )
    return augment


def _checkpoint_meta(
    built: _BuiltNetwork,
    data: Any,
    task: Any,
    metrics: dict[str, Any],
    *,
    epochs_run: int,
    seed: int,
    augment: TransformFn | None,
    extra_meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """The checkpoint's description: enough to rebuild the network (genotype, sizes, options) and
    to tell later what it was trained on and how well it did; ``extra_meta`` wins on conflicts."""
    return {
        "genotype": built.genotype,
        "space": built.genotype["space"],
        **built.sizes,
        "class_names": list(data.class_names),
        "task": data.task,
        "data": data.name,
        "primary_metric": task.primary_metric,
        "metrics": metrics,
        "network_options": built.options,
        "params": built.cost["params"],
        "mflops": built.cost["mflops"],
        "epochs": epochs_run,
        "seed": seed,
        "augment": _augment_settings(augment),
        **(extra_meta or {}),
    }


def train_genotype(
    genotype: dict[str, Any],
    data: Any,
    task: Any,
    train_cfg: TrainSection,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    epochs: int | None = None,
    progress: ProgressFn | None = None,
    on_epoch: EpochFn | None = None,
    run_dir: str | Path | None = None,
    extra_loss: ExtraLossFn | None = None,
    transform: TransformFn | None = None,
    augment: TransformFn | None = None,
    extra_meta: dict[str, Any] | None = None,
    prepare_model: Callable[[nn.Module], None] | None = None,
    augment_cfg: AugmentSection | None = None,
    eval_split: str = "test",
    allow_user_code: AllowUserCode = False,
) -> TrainResult:
    """Build ``genotype``'s network for ``data`` (a :class:`automl.data.FaceData`), train, evaluate.

    With ``run_dir`` the trained weights are saved there as ``model.safetensors`` plus its JSON
    sidecar (:mod:`automl.checkpoint`), and ``TrainResult.checkpoint`` is that path.
    When ``train_cfg.augment`` is on, ``augment`` defaults to
    :func:`automl.data.augment.build_augment` of ``augment_cfg`` (default: the ``[augment]``
    defaults) at the data's image size, flipping only when ``data.hflip_ok`` (or ``augment.flip``)
    allows; the settings used are recorded as ``augment`` in the checkpoint's description.
    ``extra_meta`` is merged into the checkpoint's description. ``prepare_model(model)`` runs
    once the network is built and before training: distillation uses it to start the student from
    the teacher's weights and to tap the student's embedding.
    ``TrainResult.signal`` says whether the network learned anything, judged on its outputs over
    ``data``'s test split (named ``eval_split`` in the warnings; see :func:`split_signal`).
    ``allow_user_code``: the ``nni:`` space the user chose explicitly (see :func:`build_network`).
    """
    built = _build_for_data(genotype, data, train_cfg, seed=seed, allow_user_code=allow_user_code)
    model = built.model
    if prepare_model is not None:
        prepare_model(model)
    augment = _default_augment(augment, train_cfg, augment_cfg, data)
    result = fit(
        model, data.train_x, data.train_y, task, train_cfg,
        test_x=data.test_x, test_y=data.test_y, device=device, seed=seed, epochs=epochs,
        augment=augment, transform=transform, extra_loss=extra_loss, progress=progress, on_epoch=on_epoch,
    )  # fmt: skip
    metrics = dict(result.metrics)
    signal = split_signal(task, result.outputs, data.test_y, split=eval_split)
    meta = _checkpoint_meta(
        built, data, task, metrics, epochs_run=len(result.history), seed=seed, augment=augment,
        extra_meta=extra_meta,
    )  # fmt: skip
    meta.setdefault("signal", signal)  # exported with the model: `automl predict` repeats the verdict
    if "face_crop" not in meta:  # where the detector's box falls on these faces: predict's crop
        from automl.face_calibration import crop_calibration

        meta["face_crop"] = crop_calibration(data.train_x, seed=seed)
    model.cpu()
    checkpoint = None
    if run_dir is not None:
        from automl.checkpoint import save_checkpoint

        checkpoint = save_checkpoint(Path(run_dir) / "model.safetensors", model, meta).path
    return TrainResult(
        model=model,
        genotype=built.genotype,
        metrics=metrics,
        history=result.history,
        params=int(built.cost["params"] or 0),
        mflops=built.cost["mflops"],
        network_options=built.options,
        wall_time=result.wall_time,
        checkpoint=checkpoint,
        meta=meta,
        signal=signal,
    )
