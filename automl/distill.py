"""Teacher-student distillation for expression recognition under occlusion (docs/algorithms.md;
Georgescu & Ionescu, "Teacher-Student Training and Triplet Loss for Facial Expression Recognition
under Occlusion").

A *teacher* trained on full faces guides a *student* that only sees occluded faces (the lower or
upper half hidden, e.g. by a VR headset), through two terms added to the student's usual
cross-entropy:

* **soft targets** (Hinton et al.): ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``,
  the teacher's view of the full face, class similarities included;
* **triplet loss on embeddings**: the *anchor* is the student's embedding of an occluded face,
  the *positive* the teacher's embedding of a full face of the same class, the *negative* the
  student's embedding of an occluded face of another class:
  ``max(0, d(anchor, positive) - d(anchor, negative) + margin)``, mined in the batch.

The paper trains one student per term and finally **concatenates** the two students' embeddings
under a new classifier: :class:`ConcatenatedStudents`.

How the training loop (:func:`automl.training.fit`) uses it::

    distiller = OcclusionDistiller(teacher, occlude="lower", config=DistillConfig(temperature=4.0))
    model = ...build the student network (same genotype: load the teacher's weights first)...
    distiller.attach(model)                        # taps the student's embedding (no second pass)
    fit(model, ..., transform=distiller.transform, extra_loss=distiller.extra_loss)

``transform`` occludes every batch (training and evaluation) and remembers the full faces of the
last batch for the teacher; ``extra_loss(x, y, output)`` returns ``kd_weight * soft-target +
triplet_weight * triplet`` (the loop adds it to the task loss; the last values are in
``distiller.last_parts`` for logging). With the ``(1 - lambda) * CE + lambda * KD`` weighting of
the paper, use ``kd_weight = lambda / (1 - lambda)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from automl.data.augment import occlude as occlude_batch
from automl.errors import UserError

Mining = Literal["batch_hard", "random"]


@dataclass(frozen=True)
class DistillConfig:
    """``temperature`` T of the soft targets; ``kd_weight`` / ``triplet_weight`` (0 turns a term
    off); ``margin`` of the triplet loss on L2-normalised embeddings (squared distances lie in
    [0, 4]); ``mining``: ``batch_hard`` (farthest positive, closest negative per anchor) or
    ``random`` (a random valid pair per anchor).

    The default is the soft-target student. As in the paper, the triplet student is a second
    student (``DistillConfig(kd_weight=0, triplet_weight=1)``) whose embedding is concatenated
    with the first (:class:`ConcatenatedStudents`). Why not both terms in one student by default:
    on synthface FER (32x32, 8 epochs, lower half hidden) soft targets alone took the occluded
    student from 0.314 to 0.449 accuracy (teacher 0.532), adding the triplet term at weight 1 or
    0.3 lowered it (0.386 / 0.400) and the triplet term alone gave 0.286; initialising the
    student from the teacher's weights lifted soft targets to 0.494.
    """

    temperature: float = 4.0
    kd_weight: float = 1.0
    triplet_weight: float = 0.0
    margin: float = 0.2
    mining: Mining = "batch_hard"
    normalize: bool = True

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UserError(f"distillation temperature must be positive, got {self.temperature}")
        if self.kd_weight < 0 or self.triplet_weight < 0:
            raise UserError("distillation weights must be >= 0")
        if self.kd_weight == 0 and self.triplet_weight == 0:
            raise UserError("both distillation weights are 0: set kd_weight or triplet_weight above 0")
        if self.margin < 0:
            raise UserError(f"triplet margin must be >= 0, got {self.margin}")
        if self.mining not in ("batch_hard", "random"):
            raise UserError(f"triplet mining must be 'batch_hard' or 'random', got {self.mining!r}")


def class_ids(y: torch.Tensor) -> torch.Tensor:
    """Class index per sample: ``y`` itself (int labels) or the arg-max of soft (FER+) labels."""
    if y.dim() == 2 and y.is_floating_point():
        return y.argmax(dim=1)
    if y.dim() != 1:
        raise UserError(f"distillation needs one class label per face, got labels of shape {tuple(y.shape)}")
    return y.long()


def soft_target_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(p_teacher^T || p_student^T)`` averaged over the batch (the T^2 keeps gradient
    magnitudes comparable across temperatures, as in Hinton et al.)."""
    if student_logits.shape != teacher_logits.shape:
        raise UserError(
            f"teacher predicts {teacher_logits.shape[-1]} classes but the student "
            f"{student_logits.shape[-1]}; distill from a teacher trained on the same classes"
        )
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
    p_teacher = F.softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * (t * t)


def triplet_distillation_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float = 0.2,
    mining: Mining = "batch_hard",
    normalize: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Triplet loss with in-batch mining; row ``i`` of each tensor is sample ``i`` of the batch.

    ``anchor``: student embeddings of the occluded faces (N, D); ``positive``: teacher embeddings
    of the full faces (N, D), candidates for anchors of the same class (including the anchor's own
    face); ``negative``: student embeddings of the occluded faces (N, D), candidates for anchors of
    another class. Anchors with no other class in the batch are left out; 0 if none is left.
    """
    if anchor.shape != positive.shape or anchor.shape != negative.shape:
        raise UserError(
            f"student embeddings {tuple(anchor.shape)} and teacher embeddings {tuple(positive.shape)} "
            "differ in size; distill from a teacher of the same architecture"
        )
    a, p, n = anchor.float(), positive.float(), negative.float()
    if normalize:
        a, p, n = F.normalize(a, dim=1), F.normalize(p, dim=1), F.normalize(n, dim=1)
    labels = class_ids(labels)
    same = labels[:, None] == labels[None, :]
    d_pos = torch.cdist(a, p).pow(2)  # (anchor, positive candidate)
    d_neg = torch.cdist(a, n).pow(2)
    valid = (~same).any(dim=1)
    if not valid.any():
        return anchor.sum() * 0.0
    if mining == "batch_hard":
        hardest_pos = d_pos.masked_fill(~same, float("-inf")).amax(dim=1)
        hardest_neg = d_neg.masked_fill(same, float("inf")).amin(dim=1)
    elif mining == "random":
        pick_p = _random_index(same, generator)
        pick_n = _random_index(~same, generator)
        rows = torch.arange(len(labels), device=labels.device)
        hardest_pos, hardest_neg = d_pos[rows, pick_p], d_neg[rows, pick_n]
    else:
        raise UserError(f"triplet mining must be 'batch_hard' or 'random', got {mining!r}")
    losses = F.relu(hardest_pos - hardest_neg + margin)
    return losses[valid].mean()


def _random_index(mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A uniformly random True column per row (any column where a row has none; masked later)."""
    scores = torch.rand(mask.shape, generator=generator, device="cpu").to(mask.device)
    return scores.masked_fill(~mask, -1.0).argmax(dim=1)


def find_classifier(model: nn.Module) -> nn.Linear:
    """The final linear classifier of a network: its input is the embedding (as in the export)."""
    for path in ("classifier", "fc", "linear", "head", "head.fc"):
        module: Any = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.Linear):
            return module
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError(f"{type(model).__name__} has no linear classifier to read an embedding from")
    return linears[-1]


class EmbeddingTap:
    """Records the input (embedding) and output (logits) of a network's final classifier on every
    forward, so the loss can use the embedding of the very pass the training loop ran."""

    def __init__(self, model: nn.Module) -> None:
        self.classifier = find_classifier(model)
        self.embedding: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self._handle = self.classifier.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.embedding = inputs[0].flatten(1)
        self.logits = output

    def remove(self) -> None:
        self._handle.remove()


def teacher_outputs(teacher: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, embedding) of the frozen teacher on full faces ``x``, in one eval-mode pass."""
    teacher.eval()
    with torch.no_grad():
        both = getattr(teacher, "forward_with_embedding", None)
        if callable(both):
            logits, emb = both(x)
            return logits.float(), emb.float().flatten(1)
        tap = EmbeddingTap(teacher)
        try:
            logits = teacher(x)
        finally:
            tap.remove()
        assert tap.embedding is not None
        return logits.float(), tap.embedding.float()


def init_from_teacher(student: nn.Module, teacher: nn.Module) -> bool:
    """Start the student from the teacher's weights when both are the same network (same
    genotype, sizes and width); returns whether it did. Pre-training on full faces helps the
    occluded student (the paper's starting point; +4.5 points on synthface, see DistillConfig)."""
    s, t = student.state_dict(), teacher.state_dict()
    if s.keys() != t.keys() or any(s[k].shape != t[k].shape for k in s):
        return False
    student.load_state_dict(t)
    return True


class OcclusionDistiller:
    """Glue between a frozen teacher and the training loop's ``transform`` / ``extra_loss`` hooks.

    ``occlude``: ``"lower"`` or ``"upper"`` (the half hidden from the student; see
    :func:`automl.data.augment.occlude`). The teacher is frozen, kept in eval mode and moved to
    the batch's device on first use.
    """

    def __init__(
        self, teacher: nn.Module, *, occlude: str, config: DistillConfig | None = None, seed: int = 0
    ) -> None:
        if occlude not in ("lower", "upper"):
            raise UserError(
                f"distillation needs occlude 'lower' or 'upper', got {occlude!r}", argument="occlude"
            )
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.occlude = occlude
        self.config = config or DistillConfig()
        self._full: torch.Tensor | None = None
        self._tap: EmbeddingTap | None = None
        self._generator = torch.Generator().manual_seed(seed)
        self.last_parts: dict[str, float] = {}

    def attach(self, student: nn.Module) -> None:
        """Tap the student's final classifier (call once the student network exists)."""
        if self._tap is not None:
            self._tap.remove()
        self._tap = EmbeddingTap(student)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Occlude a float batch; the full faces are kept for the teacher (training batches)."""
        self._full = x
        return occlude_batch(x, self.occlude)

    def extra_loss(self, x: torch.Tensor, y: torch.Tensor, output: Any) -> torch.Tensor:
        """``kd_weight * soft-target + triplet_weight * triplet`` for the batch just trained on."""
        if self._tap is None:
            raise RuntimeError("OcclusionDistiller.attach(student) must be called before training")
        if self._full is None or self._full.shape[0] != x.shape[0]:
            raise RuntimeError("OcclusionDistiller.transform must occlude the batch before extra_loss")
        logits = output[0] if isinstance(output, tuple) else output
        tap_logits, embedding = self._tap.logits, self._tap.embedding
        if tap_logits is None or embedding is None or tap_logits.shape != logits.shape:
            raise UserError(
                "cannot read the student's embedding: its last linear layer does not produce the logits "
                "(distillation supports softmax (FER) networks)"
            )
        if self.teacher_device != x.device:
            self.teacher.to(x.device)
        t_logits, t_emb = teacher_outputs(self.teacher, self._full)
        cfg = self.config
        loss = logits.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        if cfg.kd_weight > 0:
            kd = soft_target_loss(logits, t_logits, cfg.temperature)
            loss = loss + cfg.kd_weight * kd
            parts["kd"] = float(kd.detach())
        if cfg.triplet_weight > 0:
            tri = triplet_distillation_loss(
                embedding,
                t_emb,
                embedding,
                y,
                margin=cfg.margin,
                mining=cfg.mining,
                normalize=cfg.normalize,
                generator=self._generator,
            )
            loss = loss + cfg.triplet_weight * tri
            parts["triplet"] = float(tri.detach())
        self.last_parts = parts
        self._full = None
        return loss

    @property
    def teacher_device(self) -> torch.device:
        return next((p.device for p in self.teacher.parameters()), torch.device("cpu"))


class ConcatenatedStudents(nn.Module):
    """Two frozen distilled students (e.g. soft-target and triplet) whose L2-normalised embeddings
    are concatenated under a new linear classifier, the paper's final model.

    Only ``classifier`` trains (students stay in eval mode even in ``train()``), so the usual
    training loop fits it: ``fit(ConcatenatedStudents(a, b, num_classes), ...)``. ``embed`` is the
    concatenated vector (what a retrieval index hashes).
    """

    def __init__(self, first: nn.Module, second: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.first = first
        self.second = second
        for p in list(first.parameters()) + list(second.parameters()):
            p.requires_grad_(False)
        dim = self._embedding_dim()
        self.classifier = nn.Linear(dim, num_classes)

    def _student_embedding(self, student: nn.Module, x: torch.Tensor) -> torch.Tensor:
        both = getattr(student, "forward_with_embedding", None)
        if callable(both):
            return both(x)[1].flatten(1)
        tap = EmbeddingTap(student)
        try:
            student(x)
        finally:
            tap.remove()
        assert tap.embedding is not None
        return tap.embedding

    def _embedding_dim(self) -> int:
        dims = []
        for student in (self.first, self.second):
            dim = getattr(student, "embed_dim", None)
            if dim is None:
                dim = find_classifier(student).in_features
            dims.append(int(dim))
        return sum(dims)

    def train(self, mode: bool = True) -> ConcatenatedStudents:
        super().train(mode)
        self.first.eval()
        self.second.eval()
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            a = F.normalize(self._student_embedding(self.first, x).float(), dim=1)
            b = F.normalize(self._student_embedding(self.second, x).float(), dim=1)
        return torch.cat([a, b], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
