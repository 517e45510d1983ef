"""Learning tasks: what loss to train with and how to score predictions.

FER is multi-class (cross-entropy, top-1 accuracy, confusion matrix; soft probability targets from
FER+ are accepted). AU detection is multi-label (BCE-with-logits with a positive weight per AU so
rare AUs are not ignored, F1 per AU at probability 0.5 and their mean: the BP4D/DISFA protocol).
Metric code is plain torch so it runs on whatever device the logits are on; tests cross-check it
against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from automl.data.facedata import FaceData

POS_WEIGHT_CLIP = (0.1, 20.0)
BP4D_AU_NAMES = [f"AU{a}" for a in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)]
DISFA_AU_NAMES = [f"AU{a}" for a in (1, 2, 4, 6, 9, 12, 25, 26)]


_FER7 = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy; ``y`` is class indices or probability rows (argmax taken)."""
    if logits.shape[0] == 0:
        return 0.0
    target = _hard(y).to(logits.device)
    return float((logits.argmax(dim=1) == target).float().mean().item())


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (K, K): row = true class, column = predicted class (scikit-learn's convention)."""
    idx = target.long().reshape(-1) * num_classes + pred.long().reshape(-1)
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def f1_per_label(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """F1 of every column of 0/1 matrices (N, A); 0 where a label has no positives at all
    (scikit-learn's ``zero_division`` default)."""
    p = pred.bool()
    t = target.bool()
    tp = (p & t).sum(dim=0).double()
    fp = (p & ~t).sum(dim=0).double()
    fn = (~p & t).sum(dim=0).double()
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))


def au_pos_weight(y: torch.Tensor, clip: tuple[float, float] = POS_WEIGHT_CLIP) -> torch.Tensor:
    """Per-AU positive weight neg/pos from label frequencies, clipped so an AU that is (almost)
    never present cannot blow the loss up."""
    y = y.float()
    pos = y.sum(dim=0)
    neg = y.shape[0] - pos
    w = neg / pos.clamp(min=1.0)
    return w.clamp(*clip).float()


def _loss_input(logits: torch.Tensor) -> torch.Tensor:
    """Logits as the loss sees them: half and bfloat16 widened to float32, float32 and float64 kept.

    A float64 run (``search.precision = "float64"``) must keep its loss in float64: rounding the
    logits to float32 adds errors of ~1e-8 that a 1e-16 difference upstream decides (two processes
    on half batches vs one on the whole batch), and a search amplifies them until its discrete
    choices (max-pool winners, validation argmaxes, pruning) differ.
    """
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _hard(y: torch.Tensor) -> torch.Tensor:
    return y.argmax(dim=1) if y.dim() == 2 else y.long()


class Task:
    """Common surface of the tasks. ``primary_metric`` is higher-is-better, in [0, 1]."""

    kind: str = ""
    primary_metric: str = ""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, logits: torch.Tensor, y: torch.Tensor) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, logits: torch.Tensor, y: torch.Tensor) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class FERTask(Task):
    """Multi-class expression recognition."""

    kind = "fer"
    primary_metric = "accuracy"

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.to(logits.device)
        if y.dim() == 2:  # probability targets (FER+ probability mode)
            x = _loss_input(logits)
            return F.cross_entropy(x, y.to(x.dtype))
        return F.cross_entropy(_loss_input(logits), y.long())

    def evaluate(self, logits: torch.Tensor, y: torch.Tensor) -> dict:
        with torch.no_grad():
            loss = float(self.loss(logits, y).item()) if logits.shape[0] else 0.0
            target = _hard(y).to(logits.device)
            cm = confusion_matrix(logits.argmax(dim=1), target, self.num_outputs)
        return {"accuracy": accuracy(logits, y), "loss": loss, "confusion": cm.cpu().tolist()}

    def score(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        return accuracy(logits, y)


class AUTask(Task):
    """Multi-label AU occurrence detection."""

    kind = "au"
    primary_metric = "mean_f1"

    def __init__(self, class_names: Sequence[str], pos_weight: torch.Tensor | None = None) -> None:
        super().__init__(class_names)
        if pos_weight is not None and pos_weight.numel() != len(self.class_names):
            raise ValueError(f"pos_weight has {pos_weight.numel()} entries for {len(self.class_names)} AUs")
        self.pos_weight = None if pos_weight is None else pos_weight.detach().float().cpu()

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = _loss_input(logits)
        pw = None if self.pos_weight is None else self.pos_weight.to(x.device, x.dtype)
        return F.binary_cross_entropy_with_logits(x, y.to(x.device, x.dtype), pos_weight=pw)

    def evaluate(self, logits: torch.Tensor, y: torch.Tensor) -> dict:
        with torch.no_grad():
            loss = float(self.loss(logits, y).item()) if logits.shape[0] else 0.0
            f1 = f1_per_label(logits > 0, y.to(logits.device) > 0.5).cpu()
        return {
            "mean_f1": float(f1.mean().item()) if f1.numel() else 0.0,
            "per_au_f1": {name: float(v) for name, v in zip(self.class_names, f1.tolist(), strict=True)},
            "loss": loss,
        }

    def score(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            f1 = f1_per_label(logits > 0, y.to(logits.device) > 0.5)
        return float(f1.mean().item()) if f1.numel() else 0.0


def make_task(
    data: FaceData | str,
    *,
    num_classes: int | None = None,
    pos_weight: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
) -> Task:
    """The task for a data set, or for a kind (``"fer"`` / ``"au"``) with explicit sizes.

    From a :class:`FaceData` with AU labels, positive weights come from the training labels'
    frequencies (neg/pos, clipped to :data:`POS_WEIGHT_CLIP`).
    """
    if not isinstance(data, str):
        if data.task == "fer":
            return FERTask(data.class_names)
        if data.task == "au":
            return AUTask(data.class_names, au_pos_weight(data.train_y) if pos_weight is None else pos_weight)
        raise ValueError(f"unknown task {data.task!r}")
    if data == "fer":
        k = num_classes or 7
        if class_names:
            names = list(class_names)
        else:  # FER2013's classes for the usual 7, numbered classes otherwise
            names = list(_FER7) if k == 7 else [f"class{i}" for i in range(k)]
        return FERTask(names)
    if data == "au":
        n = num_classes or (pos_weight.numel() if pos_weight is not None else None) or len(BP4D_AU_NAMES)
        if class_names:
            names = list(class_names)
        else:  # the BP4D / DISFA label sets by their size, else numbered outputs
            names = {12: BP4D_AU_NAMES, 8: DISFA_AU_NAMES}.get(n, [f"AU_{i}" for i in range(n)])
        return AUTask(names, pos_weight)
    raise ValueError(f"unknown task kind {data!r} (use 'fer' or 'au')")
