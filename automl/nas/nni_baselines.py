"""NNI's own one-shot DARTS and RandomOneShot on our DARTS space and data (``bench nas --with-nni``).

Why: a reference point that is not our code. ``automl bench nas --with-nni`` runs NNI 3.0's
``DARTS`` and ``RandomOneShot`` strategies on :class:`~search_spaces.nni_darts.NNIDartsSpace` --
our supernet layout and ops as an NNI model space -- in the same process, right after our three
strategies, on the same train/val split, device and seed, and retrains what they find with the same
recipe. NNI runs in-process through ``SequentialExecutionEngine``: no ``NasExperiment``, so no NNI
web server is ever started (nothing listens on any port).

What matches our :class:`~automl.nas.search.SearchLoop`:

* data: :func:`~automl.nas.search.split_data` with ``data.val_fraction`` and the search seed (the
  same train/val split), resident on the device as uint8; the same crop/flip augmentation of the
  training batches (and of DARTS' architecture batches, which come from the val split) when
  ``data.augment`` is on; a fresh random order per epoch; a trailing batch of one is dropped as in
  our loop; ``data.batch_size`` for training and architecture batches;
* supernet: ``supernet.init_channels / layers / nodes / stem_multiplier``;
* budgets: ``darts.epochs`` resp. ``random.epochs``, times ``search.epochs_scale``, rounded as
  :func:`~automl.nas.search.build_strategy` rounds;
* weights: SGD with the baseline's ``weight_lr`` (``darts.weight_lr`` / ``random.weight_lr``),
  ``optim.momentum`` and ``optim.weight_decay`` (NNI's ``Classification`` evaluator takes the
  optimizer class, lr and weight decay; the momentum goes in through ``functools.partial``),
  gradient norm clipped at ``optim.grad_clip``;
* DARTS' architecture step: Adam at ``darts.arch_lr``, betas (0.5, 0.999), first order;
* threads: ``search.cpu_threads`` on CPU; torch seeded with ``search.seed``.

Honest differences (NNI's own behaviour, not changed here):

* **learning rate**: NNI's ``Classification`` evaluator has no scheduler, so the weight lr stays
  constant; our DARTS and random WS anneal it (cosine down to 1e-3).
* **architecture weight decay**: NNI's DARTS fixes it at 1e-3 (``darts.arch_weight_decay`` is not
  passed on; it is 1e-3 by default in our config too).
* **validation during the search**: NNI's DARTS does not validate (its val split only feeds the
  architecture steps); RandomOneShot validates a fresh random path per val batch every epoch. Ours
  validate every epoch. Each strategy's search time is what it does.
* **loss / labels**: ``nn.CrossEntropyLoss`` on class indices; FER+ probability labels are turned
  into their argmax for NNI (our loop trains on the soft targets). Multi-label AU data is refused.
* **sampling seed**: NNI draws RandomOneShot's paths from a fresh, unseeded numpy ``RandomState``
  per draw; for the duration of the run we hand it one ``RandomState(search.seed)`` so the run is
  reproducible (if NNI's internals change, the run still works, unseeded).
* **what comes out**: NNI's RandomOneShot exports *one more random sample* of the space (NNI says
  so itself); unlike our random WS it ranks no candidates on the trained supernet. We report
  exactly that export.

Genotypes, by the DARTS rule of :func:`search_spaces.genotypes.derive_genotype` (per edge the best
non-``none`` op, per node the two incoming edges whose best op weighs most):

* ``nni-darts``: NNI's ``export_probs()`` (softmax of its alphas) -> (edges x ops) matrix -> rule;
* ``nni-random``: NNI's exported ``{label: op}`` -> one-hot matrix -> rule. NNI's path keeps an
  op on every edge, a DARTS cell two inputs per node, and in a one-hot matrix every non-``none``
  edge weighs the same: the rule's own tie-break (lower input index) would give every node the
  inputs 0 and 1, always the same shallow topology. So each edge's weight is first raised by a
  number drawn uniformly from [0, 0.5) (``search.seed``; the edge's op is unchanged): per node the
  two kept inputs are a uniform draw among those whose sampled op is not ``none``. A node with
  fewer than two such inputs gets ``none`` edges back as the first op (``max_pool_3x3``), as
  :func:`~search_spaces.genotypes.genotype_from_choice` does for our single paths.

``final_val_metric`` is measured after the search (outside the timed part), as our loop measures it:
on the val split with batch statistics -- the softmax-mixed supernet for ``nni-darts``, the exported
path on the shared weights for ``nni-random``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from automl.config import Config
from automl.data import Augment, FaceData, make_task, to_float
from automl.data.augment import augment_for
from automl.errors import UserError
from automl.nas.search import SearchData, _scaled, build_space, split_data
from automl.threads import cpu_threads

NNI_STRATEGIES = ("nni-darts", "nni-random")

Progress = Callable[[dict[str, Any]], None]

# Loggers whose INFO lines ("GPU available: ...", "Tip: ...", "`Trainer.fit` stopped") and NNI
# warnings ("Validation dataloaders are missing") would only clutter the bench's table.
_NOISY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric", "nni")


def _import_nni() -> dict[str, Any]:
    """NNI and Lightning on demand: the extra is optional, and a missing one is a user's fix."""
    try:
        with warnings.catch_warnings():
            # NNI 3.0 warns at import about torch classes it does not know (harmless here).
            warnings.simplefilter("ignore")
            import pytorch_lightning as pl
            from nni.nas.evaluator.pytorch import Classification
            from nni.nas.execution import SequentialExecutionEngine
            from nni.nas.space import RawFormatModelSpace
            from nni.nas.strategy import DARTS, RandomOneShot

            from search_spaces import nni_darts
    except ImportError as exc:
        raise UserError(
            "the NNI baselines need the optional NNI extra: pip install -e '.[nni]' "
            f"(cannot import {exc.name})",
            argument="with_nni",
        ) from None
    return {
        "pl": pl,
        "Classification": Classification,
        "SequentialExecutionEngine": SequentialExecutionEngine,
        "RawFormatModelSpace": RawFormatModelSpace,
        "DARTS": DARTS,
        "RandomOneShot": RandomOneShot,
        "nni_darts": nni_darts,
    }


# --- data -------------------------------------------------------------------------------------


class _Batches(Sampler):
    """Index batches of one split: a new random order per epoch (global torch RNG, on the data's
    device, like our loop), a trailing batch of one dropped (batch norm cannot train on it)."""

    def __init__(self, n: int, batch_size: int, device: torch.device, shuffle: bool = True):
        self.n, self.batch_size, self.device, self.shuffle = n, batch_size, device, shuffle

    def _skips_last(self) -> bool:
        return self.shuffle and self.n >= 2 and self.n % self.batch_size == 1

    def __len__(self) -> int:
        return -(-self.n // self.batch_size) - int(self._skips_last())

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, device=self.device) if self.shuffle else torch.arange(
            self.n, device=self.device
        )
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.shuffle and idx.numel() < 2 and self.n >= 2:
                continue
            yield idx


class _Split(Dataset):
    """A whole split indexed by a batch of indices: one gather per batch, no per-sample work."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: Augment | None):
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[idx]
        return (self.augment(x) if self.augment is not None else to_float(x)), self.y[idx]


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, augment: Augment | None, shuffle: bool):
    batches = _Batches(int(x.shape[0]), batch_size, x.device, shuffle=shuffle)
    # batch_size=None: the sampler already yields whole batches, the dataset gathers them.
    return DataLoader(_Split(x, y, augment), sampler=batches, batch_size=None)


def _class_indices(y: torch.Tensor) -> torch.Tensor:
    """NNI's classifier wants class indices; FER+ probability rows become their argmax."""
    return y.argmax(dim=1) if y.is_floating_point() else y.long()


# --- quiet, seeded, self-contained runs -------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's and NNI's chatter and warnings for the run, then restore the levels."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # num_workers hints, "export returns an arbitrary architecture", deprecations: known.
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _seeded_nni_sampling(seed: int) -> Iterator[None]:
    """NNI's ``Categorical.random`` builds a fresh unseeded ``RandomState`` per draw; hand it one
    seeded generator for the run so RandomOneShot's paths and export are reproducible."""
    try:
        import nni.mutable.mutable as mutable_module
    except ImportError:  # pragma: no cover - the extra is checked before
        yield
        return
    original = getattr(mutable_module, "RandomState", None)
    if original is None:
        yield
        return
    shared = np.random.RandomState(seed)

    def seeded(*args: Any, **kwargs: Any) -> np.random.RandomState:
        return shared if not (args or kwargs) else original(*args, **kwargs)

    mutable_module.RandomState = seeded
    try:
        yield
    finally:
        mutable_module.RandomState = original


def _trainer_device(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index] if device.index is not None else 1}
    return {"accelerator": "cpu", "devices": 1}


@torch.no_grad()
def _val_metric(net: nn.Module, split: SearchData, score: Callable, batch_size: int) -> float:
    """Metric on the val split with batch statistics, as our loop validates."""
    net.train()
    n = int(split.val_x.shape[0])
    outs = [net(to_float(split.val_x[s : s + batch_size])) for s in range(0, n, batch_size)]
    return float(score(torch.cat(outs), split.val_y))


# --- the entry point --------------------------------------------------------------------------


def check_nni(cfg: Config, task: str) -> dict[str, Any]:
    """Everything that can refuse a run, checked before any search starts; returns NNI's modules."""
    if cfg.search.space != "darts":
        raise UserError(
            f"the NNI baselines compare on the darts space, not '{cfg.search.space}' "
            "(set search.space = 'darts')",
            argument="with_nni",
        )
    if task != "fer":
        raise UserError(
            f"the NNI baselines compare on single-label expression data (task 'fer'), not '{task}'",
            argument="with_nni",
        )
    return _import_nni()


def nni_epochs(name: str, cfg: Config) -> int:
    """Search epochs of an NNI strategy: the same budget as our baseline of the same kind."""
    base = cfg.darts.epochs if name == "nni-darts" else cfg.random.epochs
    return _scaled(base, cfg.search.epochs_scale)


def run_nni_strategy(
    name: str, cfg: Config, data: FaceData, device: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Search with NNI's ``DARTS`` (``name="nni-darts"``) or ``RandomOneShot`` (``"nni-random"``);
    returns the same keys as ``bench nas``'s own searches, plus ``nni`` (the settings used)."""
    if name not in NNI_STRATEGIES:
        raise UserError(f"unknown NNI strategy '{name}' (choose {' or '.join(NNI_STRATEGIES)})")
    mods = check_nni(cfg, data.task)
    dev = torch.device(device)
    with cpu_threads(dev, cfg.search.cpu_threads), _quiet(), _seeded_nni_sampling(
        cfg.search.seed
    ), tempfile.TemporaryDirectory(prefix="automl-nni-") as scratch:
        return _run(name, cfg, data, dev, mods, scratch, progress)


def _run(
    name: str,
    cfg: Config,
    data: FaceData,
    dev: torch.device,
    mods: Mapping[str, Any],
    scratch: str,
    progress: Progress | None,
) -> dict[str, Any]:
    pl, nd = mods["pl"], mods["nni_darts"]
    darts = name == "nni-darts"
    seed = cfg.search.seed
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    epochs = nni_epochs(name, cfg)
    lr = cfg.darts.weight_lr if darts else cfg.random.weight_lr
    task = make_task(data)
    bs = cfg.data.batch_size
    epoch_starts: list[float] = []

    class _Clock(pl.Callback):
        """Per-epoch wall times (train + any validation) and the bench's progress line."""

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            epoch_starts.append(time.perf_counter())

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if progress is not None:
                progress({"strategy": name, "epoch": trainer.current_epoch + 1, "total": epochs})

    cpu_started = time.process_time()
    started = time.perf_counter()
    split = split_data(data, cfg.data.val_fraction, seed, dev)
    train_y, val_y = _class_indices(split.train_y), _class_indices(split.val_y)
    augment = augment_for(cfg, data, purpose="search")  # as the own search loop: crop + allowed flip
    train_loader = _loader(split.train_x, train_y, bs, augment, shuffle=True)
    if darts:  # DARTS' architecture batches: random val batches of the training batch size, augmented
        val_loader = _loader(split.val_x, val_y, bs, augment, shuffle=True)
    else:  # RandomOneShot validates: the whole val split, unaugmented, as our loop evaluates
        val_loader = _loader(split.val_x, val_y, cfg.data.eval_batch_size, None, shuffle=False)
    s = cfg.supernet
    space = nd.NNIDartsSpace(
        in_channels=split.in_channels,
        num_outputs=split.num_outputs,
        init_channels=s.init_channels,
        layers=s.layers,
        nodes=s.nodes,
        stem_multiplier=s.stem_multiplier,
    )
    trainer_kwargs: dict[str, Any] = {
        "max_epochs": epochs,
        **_trainer_device(dev),
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "use_distributed_sampler": False,
        "default_root_dir": scratch,  # nothing is written; if Lightning ever does, not in the cwd
        "callbacks": [_Clock()],
    }
    if not darts:  # automatic optimisation: Lightning clips; NNI's DARTS clips in its manual step
        trainer_kwargs["gradient_clip_val"] = cfg.optim.grad_clip
    evaluator = mods["Classification"](
        learning_rate=lr,
        weight_decay=cfg.optim.weight_decay,
        optimizer=functools.partial(torch.optim.SGD, momentum=cfg.optim.momentum),
        train_dataloaders=train_loader,
        val_dataloaders=val_loader,
        num_classes=split.num_outputs,
        export_onnx=False,
        **trainer_kwargs,
    )
    if darts:
        strategy = mods["DARTS"](arc_learning_rate=cfg.darts.arch_lr, gradient_clip_val=cfg.optim.grad_clip)
    else:
        strategy = mods["RandomOneShot"]()
    strategy(mods["RawFormatModelSpace"](space, evaluator), mods["SequentialExecutionEngine"]())
    arch = dict(next(strategy.list_models()).sample)
    if darts:
        weights = nd.probs_to_weights(strategy.oneshot_module.export_probs(), s.nodes)
    else:
        weights = _path_weights(nd.arch_to_weights(arch, s.nodes), seed)
    genotype = build_space(cfg, data.task).derive_genotype(weights)
    fit_end = time.perf_counter()
    total = fit_end - started
    cpu_total = time.process_time() - cpu_started

    # Reporting, outside the timed search: the val metric and the genotype's cost at train size.
    supernet = strategy.supernet.to(dev)
    if not darts:  # put the exported path on the shared weights
        for module in strategy.oneshot_module.supernet_modules():
            module.resample(memo=arch)
    final_val = _val_metric(supernet, split, task.score, cfg.data.eval_batch_size)
    epoch_times = list(np.diff([*epoch_starts, fit_end])) if epoch_starts else []
    return {
        "strategy": name,
        "search_seconds": total,
        "search_cpu_seconds": cpu_total,
        "epochs": len(epoch_starts),
        "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else None,
        "genotype": genotype,
        "search_cost": _cost(cfg, split, genotype),
        "final_val_metric": final_val,
        "nni": {
            "architecture": arch,
            "weight_lr": lr,
            "lr_schedule": "constant (NNI's Classification evaluator has no scheduler)",
            "momentum": cfg.optim.momentum,
            "weight_decay": cfg.optim.weight_decay,
            "grad_clip": cfg.optim.grad_clip,
            "batch_size": bs,
            "augment": bool(cfg.data.augment),
            **({"arch_lr": cfg.darts.arch_lr, "arch_weight_decay": 1e-3} if darts else {}),
        },
    }


def _path_weights(one_hot: np.ndarray, seed: int) -> np.ndarray:
    """One-hot path -> weights whose DARTS derivation keeps a uniformly drawn pair of inputs per
    node among the non-``none`` edges (see the module docstring), seeded, op per edge unchanged."""
    from search_spaces.genotypes import NONE_INDEX

    w = one_hot.copy()
    live = w[:, NONE_INDEX] == 0  # edges whose sampled op is a real op
    w[live] *= 1.0 + np.random.default_rng(seed).uniform(0.0, 0.5, size=int(live.sum()))[:, None]
    return w


def _cost(cfg: Config, split: SearchData, genotype: dict[str, Any]) -> dict[str, Any]:
    """Params and MFLOPs at the final-training size, as our loop's ``search_cost``."""
    t = cfg.train
    try:
        return build_space(cfg, split.task_kind).cost(
            genotype,
            in_channels=split.in_channels,
            num_outputs=split.num_outputs,
            image_size=split.image_size,
            init_channels=t.init_channels,
            layers=t.layers,
        )
    except ValueError as exc:  # e.g. a network too deep for the image size: report, don't fail
        return {"error": str(exc)}
