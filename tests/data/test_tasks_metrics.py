"""Task losses and metrics, cross-checked against scikit-learn / torch references on random data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from automl.data import load_data, make_task
from automl.data.tasks import AUTask, FERTask, au_pos_weight


@pytest.mark.parametrize("seed", range(5))
def test_fer_metrics_match_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    n, k = int(torch.randint(1, 300, (1,), generator=g)), int(torch.randint(2, 9, (1,), generator=g))
    logits = torch.randn(n, k, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    task = make_task("fer", num_classes=k)
    ev = task.evaluate(logits, y)
    pred = logits.argmax(1).numpy()
    assert ev["accuracy"] == pytest.approx(accuracy_score(y.numpy(), pred))
    assert ev["confusion"] == confusion_matrix(y.numpy(), pred, labels=list(range(k))).tolist()
    assert ev["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert task.score(logits, y) == pytest.approx(ev["accuracy"])
    assert task.primary_metric == "accuracy"


def test_fer_soft_targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 8, generator=g)
    p = torch.softmax(torch.randn(50, 8, generator=g), 1)
    task = FERTask([f"c{i}" for i in range(8)])
    want = float(-(p * torch.log_softmax(logits, 1)).sum(1).mean())
    assert float(task.loss(logits, p)) == pytest.approx(want, rel=1e-5)
    assert task.evaluate(logits, p)["accuracy"] == pytest.approx(
        accuracy_score(p.argmax(1), logits.argmax(1))
    )


@pytest.mark.parametrize("seed", range(5))
def test_au_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, a = int(rng.integers(1, 200)), int(rng.integers(1, 13))
    y = (rng.random((n, a)) < rng.uniform(0.0, 0.6, a)).astype(np.float32)
    logits = torch.from_numpy(rng.normal(size=(n, a)).astype(np.float32))
    names = [f"AU{i}" for i in range(a)]
    task = AUTask(names, pos_weight=None)
    ev = task.evaluate(logits, torch.from_numpy(y))
    pred = (logits.numpy() > 0).astype(int)
    want = f1_score(y.astype(int), pred, average=None, zero_division=0, labels=list(range(a)))
    assert [ev["per_au_f1"][nm] for nm in names] == pytest.approx(want.tolist())
    assert ev["mean_f1"] == pytest.approx(float(np.mean(want)))
    assert task.score(logits, torch.from_numpy(y)) == pytest.approx(ev["mean_f1"])
    assert ev["loss"] == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))), rel=1e-5
    )


def test_au_pos_weight_from_frequencies():
    y = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.float32)
    w = au_pos_weight(y)
    assert w.tolist() == pytest.approx([3.0, 4.0, 1 / 3])  # neg/pos (pos counted as at least 1)
    rare = torch.zeros(100, 1)
    rare[0] = 1
    assert float(au_pos_weight(rare)[0]) == pytest.approx(20.0)  # 99 clipped
    assert float(au_pos_weight(torch.ones(10, 1))[0]) == pytest.approx(0.1)  # clipped below too
    logits = torch.zeros(4, 3)
    task = AUTask(["a", "b", "c"], pos_weight=w)
    want = F.binary_cross_entropy_with_logits(logits, y, pos_weight=w)
    assert float(task.loss(logits, y)) == pytest.approx(float(want))


def test_make_task_from_data():
    d = load_data("synth:au", n=120)
    t = make_task(d)
    assert t.primary_metric == "mean_f1" and t.num_outputs == 12
    assert torch.allclose(t.pos_weight, au_pos_weight(d.train_y))
    assert list(t.evaluate(torch.zeros(len(d.test_y), 12), d.test_y)["per_au_f1"]) == d.class_names
    assert make_task(load_data("synth:fer", n=60)).primary_metric == "accuracy"
    with pytest.raises(ValueError):
        make_task("regression")
