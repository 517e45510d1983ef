"""Occlusion distillation (docs/algorithms.md): soft targets, triplet loss, the training-loop glue."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from automl.config import TrainSection
from automl.data.tasks import make_task
from automl.distill import (
    ConcatenatedStudents,
    DistillConfig,
    EmbeddingTap,
    OcclusionDistiller,
    init_from_teacher,
    soft_target_loss,
    triplet_distillation_loss,
)
from automl.errors import UserError
from automl.training import fit
from search_spaces.face import FaceSpace


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fer_net(seed: int, num_classes: int = 4):
    torch.manual_seed(seed)
    space = FaceSpace(task="fer", layers=3)
    return space.network(
        space.genotype_from_choice([0, 0, 0]),
        in_channels=1,
        num_outputs=num_classes,
        image_size=32,
        init_channels=4,
    )


def test_soft_target_loss_matches_its_definition():
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    T = 3.0
    expected = (
        (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))).sum(1).mean() * T * T
    )
    torch.testing.assert_close(soft_target_loss(s, t, T), expected)
    assert soft_target_loss(t, t, T).abs() < 1e-6
    with pytest.raises(UserError, match="teacher predicts 6 classes"):
        soft_target_loss(s, torch.randn(5, 6), T)


def reference_batch_hard(anchor, positive, negative, labels, margin):
    """Per-anchor loop: farthest same-class teacher embedding, closest other-class student one."""
    a, p, n = (F.normalize(t, dim=1) for t in (anchor, positive, negative))
    losses = []
    for i in range(len(labels)):
        same = [j for j in range(len(labels)) if labels[j] == labels[i]]
        other = [k for k in range(len(labels)) if labels[k] != labels[i]]
        if not other:
            continue
        d_ap = max(float((a[i] - p[j]).pow(2).sum()) for j in same)
        d_an = min(float((a[i] - n[k]).pow(2).sum()) for k in other)
        losses.append(max(0.0, d_ap - d_an + margin))
    return torch.tensor(sum(losses) / len(losses))


def test_triplet_loss_roles_and_batch_hard_mining():
    labels = torch.tensor([0, 0, 1, 1])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # positives by class
    # Anchors next to their class's teacher embedding, far from the other class: no loss.
    good = teacher.clone()
    assert triplet_distillation_loss(good, teacher, good, labels, margin=0.2) == 0
    # Anchor 0 drifts towards class 1: now some anchors see a negative closer than a positive.
    drift = good.clone()
    drift[0] = torch.tensor([0.2, 1.0])
    loss = triplet_distillation_loss(drift, teacher, drift, labels, margin=0.2, mining="batch_hard")
    torch.testing.assert_close(loss, reference_batch_hard(drift, teacher, drift, labels, 0.2))
    assert loss > 0
    # Soft (FER+) labels are reduced to their arg-max class; random mining picks valid pairs.
    soft = F.one_hot(labels, 3).float() * 0.8 + 0.05
    torch.testing.assert_close(triplet_distillation_loss(drift, teacher, drift, soft, margin=0.2), loss)
    gen = torch.Generator().manual_seed(0)
    rnd = triplet_distillation_loss(drift, teacher, drift, labels, mining="random", generator=gen)
    assert 0 < rnd <= loss + 1e-6
    # A single-class batch has no negatives: zero, still differentiable.
    anchor = torch.randn(3, 2, requires_grad=True)
    zero = triplet_distillation_loss(anchor, torch.randn(3, 2), anchor, torch.zeros(3, dtype=torch.long))
    zero.backward()
    assert zero == 0 and anchor.grad is not None
    with pytest.raises(UserError, match="differ in size"):
        triplet_distillation_loss(torch.randn(4, 3), teacher, torch.randn(4, 3), labels)


def test_config_and_distiller_reject_bad_settings():
    with pytest.raises(UserError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(UserError, match="both distillation weights"):
        DistillConfig(kd_weight=0, triplet_weight=0)
    with pytest.raises(UserError, match="occlude 'lower' or 'upper'") as info:
        OcclusionDistiller(fer_net(0), occlude="none")
    assert info.value.argument == "occlude"


def test_extra_loss_uses_full_faces_for_the_teacher_and_trains_only_the_student():
    teacher, student = fer_net(0), fer_net(1)
    distiller = OcclusionDistiller(
        teacher, occlude="lower", config=DistillConfig(temperature=2.0, triplet_weight=1.0)
    )
    distiller.attach(student)
    x = torch.rand(8, 1, 32, 32)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    seen = []
    teacher.stem.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    xo = distiller.transform(x)
    assert torch.all(xo[..., 16:, :] == 0.5) and torch.equal(xo[..., :16, :], x[..., :16, :])
    student.train()
    logits = student(xo)
    loss = distiller.extra_loss(xo, y, logits)
    assert torch.equal(seen[0], x)  # the teacher saw the whole face
    assert set(distiller.last_parts) == {"kd", "triplet"} and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    with pytest.raises(RuntimeError, match="transform"):
        distiller.extra_loss(xo, y, logits)  # a second call without a new occluded batch


def test_distiller_runs_inside_the_training_loop():
    teacher, student = fer_net(0), fer_net(1)
    before = [p.clone() for p in teacher.parameters()]
    distiller = OcclusionDistiller(teacher, occlude="upper", config=DistillConfig(triplet_weight=0.5))
    distiller.attach(student)
    x = torch.randint(0, 256, (48, 1, 32, 32), dtype=torch.uint8)
    y = torch.arange(48) % 4
    cfg = TrainSection(epochs=1, batch_size=16, augment=False, auxiliary_weight=0.0, drop_path=0.0, amp=False)
    result = fit(
        student,
        x,
        y,
        make_task("fer", num_classes=4),
        cfg,
        test_x=x[:16],
        test_y=y[:16],
        device="cpu",
        transform=distiller.transform,
        extra_loss=distiller.extra_loss,
    )
    assert len(result.history) == 1 and "accuracy" in result.metrics
    assert set(distiller.last_parts) == {"kd", "triplet"}
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))


def test_concatenated_students_train_only_their_classifier():
    a, b = fer_net(0), fer_net(1)
    model = ConcatenatedStudents(a, b, num_classes=4)
    x = torch.rand(6, 1, 32, 32)
    assert model.embed(x).shape == (6, a.embed_dim + b.embed_dim)
    model.train()
    assert not a.training and not b.training
    model(x).sum().backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]
    assert model.classifier.weight.grad is not None
    tap = EmbeddingTap(model)
    model(x)
    assert tap.embedding.shape == (6, 64)


def test_init_from_teacher_copies_only_matching_networks():
    teacher, student = fer_net(0), fer_net(1)
    assert init_from_teacher(student, teacher)
    assert all(
        torch.equal(a, b)
        for a, b in zip(student.state_dict().values(), teacher.state_dict().values(), strict=True)
    )
    other = fer_net(2, num_classes=5)
    before = [p.clone() for p in other.parameters()]
    assert not init_from_teacher(other, teacher)
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters(), strict=True))
