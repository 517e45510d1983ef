"""``automl.learning_checks``: each check fires on synthetic results that learned nothing, stays
silent on ones that did, and its bounds move with the split size; wired into training, it judges a
real network's outputs on the test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from automl import learning_checks as lc
from tests.test_train import _bright_half_data

RNG = np.random.default_rng(0)
FER7 = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def _codes(findings: list[lc.Finding]) -> set[str]:
    return {f.code for f in findings}


def _balanced(n: int, k: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


# -- metric vs chance -------------------------------------------------------------------------
def test_accuracy_at_chance_on_a_47_item_split_fires_with_the_numbers():
    y = _balanced(47)
    (f,) = lc.check_accuracy(7 / 47, y)
    assert f.code == "metric_at_chance" and f.severity == lc.NO_SIGNAL
    p0 = 7 / 47  # 47 = 6 * 7 + 5: five classes hold 7 items
    assert f.values["chance"] == pytest.approx(p0)
    assert f.values["bound_correct"] == stats.binom.ppf(0.99, 47, p0)
    assert f.values["correct"] == 7 and f.values["n"] == 47
    assert "7/47" in f.message and "alpha=0.01" in f.message


def test_accuracy_well_above_chance_is_silent():
    assert lc.check_accuracy(0.8, _balanced(500)) == []
    assert lc.check_accuracy(0.5, _balanced(47)) == []


def test_the_binomial_bound_moves_with_the_split_size():
    # 25% over 7 balanced classes: noise on 47 faces, signal on 2,000.
    assert _codes(lc.check_accuracy(0.25, _balanced(47))) == {"metric_at_chance"}
    assert lc.check_accuracy(0.25, _balanced(2000)) == []
    bounds = [lc.accuracy_bound(n, 1 / 7) / n for n in (20, 47, 200, 2000, 20000)]
    assert bounds == sorted(bounds, reverse=True) and bounds[-1] == pytest.approx(1 / 7, abs=0.01)
    # Exactly at the bound is noise, one more correct answer is signal.
    n, k = 100, lc.accuracy_bound(100, 0.2)
    y = np.r_[np.zeros(20, int), np.arange(80) % 4 + 1]  # majority share 0.2
    assert lc.check_accuracy(k / n, y) and not lc.check_accuracy((k + 1) / n, y)


def test_chance_is_the_majority_share_of_the_evaluated_labels():
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    assert lc.chance_accuracy(y) == 0.6
    assert lc.chance_accuracy(np.eye(2)[y]) == 0.6  # probability rows: argmax, as the metric
    assert lc.check_accuracy(0.6, y)  # always "class 0" is no result
    (f,) = lc.check_accuracy(1.0, np.zeros(30, int))
    assert "single class" in f.message  # nothing can beat chance on a one-class split


def test_au_mean_f1_at_the_all_positive_baseline_fires_and_the_bound_shrinks_with_n():
    y = (RNG.random((200, 12)) < 0.2).astype(np.uint8)
    p = y.mean(axis=0)
    chance, sd = lc.chance_mean_f1(y)
    assert chance == pytest.approx(float(np.mean(2 * p / (1 + p))))
    expected_sd = np.sqrt(np.sum((2 / (1 + p) ** 2) ** 2 * p * (1 - p) / 200)) / 12
    assert sd == pytest.approx(expected_sd)
    (f,) = lc.check_mean_f1(chance, y)
    assert f.code == "metric_at_chance" and f.values["bound"] == pytest.approx(
        chance + stats.norm.ppf(0.99) * sd
    )
    assert lc.check_mean_f1(chance + 0.1, y) == []
    big = (RNG.random((5000, 12)) < 0.2).astype(np.uint8)
    assert lc.chance_mean_f1(big)[1] < sd / 4  # 25x the items: a fifth of the noise


# -- predictions ------------------------------------------------------------------------------
def test_constant_predictions_fire_collapse_and_chance():
    y = _balanced(47)
    logits = np.zeros((47, 7))
    logits[:, 3] = 1.0
    verdict = lc.check_classifier("fer", logits, y, class_names=FER7)
    assert not verdict["learned"]
    codes = [w["code"] for w in verdict["warnings"]]
    assert codes == ["metric_at_chance", "predictions_collapsed"]
    assert "'Happy' takes 100% of the 47 predictions" in verdict["warnings"][1]["message"].replace(
        "one class (", ""
    ).replace(")", "")


def test_a_classifier_at_080_on_500_items_with_balanced_predictions_is_silent():
    y = _balanced(500)
    pred = np.where(RNG.random(500) < 0.8, y, RNG.integers(0, 7, 500))
    verdict = lc.check_classifier("fer", np.eye(7)[pred], y, embeddings=RNG.normal(size=(500, 32)))
    assert verdict["learned"] and verdict["warnings"] == []
    assert verdict["checks"] == ["metric", "predictions", "embeddings"] and verdict["n"] == 500
    assert lc.signal_flag(verdict) == "ok" and lc.warning_lines(verdict, "x") == []


def test_collapse_is_judged_against_skewed_labels():
    y = np.r_[np.zeros(97, int), np.ones(3, int)]  # 97% one class
    assert "predictions_collapsed" not in _codes(lc.check_class_predictions(np.zeros(100, int), y))
    balanced = _balanced(100, k=2)
    assert _codes(lc.check_class_predictions(np.zeros(100, int), balanced)) == {"predictions_collapsed"}
    # 90% on one class is not "nearly every" prediction.
    pred = np.where(np.arange(100) < 90, 0, 1)
    assert lc.check_class_predictions(pred, balanced) == []


def test_only_a_few_classes_predicted_is_a_weak_finding():
    y = _balanced(700)
    pred = np.where(RNG.random(700) < 0.5, 0, 1)  # two of seven classes, neither takes 95%
    (f,) = lc.check_class_predictions(pred, y, class_names=FER7)
    assert f.code == "few_classes_predicted" and f.severity == lc.WEAK
    assert f.values["predicted_classes"] == 2 and "Fear" in f.values["never_predicted"]
    # A rare class never predicted by an otherwise varied model is not reported.
    pred = np.where(y == 1, 0, y)
    assert lc.check_class_predictions(pred, y) == []


def test_multi_label_predictions_constant_for_every_au_fire():
    y = (RNG.random((300, 8)) < 0.3).astype(np.uint8)
    verdict = lc.check_classifier("au", np.full((300, 8), -3.0), y)
    assert not verdict["learned"]
    assert [w["code"] for w in verdict["warnings"]] == ["metric_at_chance", "predictions_constant"]
    good = np.where(y > 0, 2.0, -2.0)
    flip = RNG.random(y.shape) < 0.1
    assert lc.check_classifier("au", np.where(flip, -good, good), y)["warnings"] == []
    some = good.copy()
    some[:, 0] = -5.0  # one AU never predicted
    (f,) = lc.check_label_predictions(some > 0, y, names=[f"AU{i}" for i in range(8)])
    assert f.code == "labels_predicted_constant" and f.severity == lc.WEAK and f.values["constant"] == ["AU0"]


# -- embeddings -------------------------------------------------------------------------------
def test_all_equal_embeddings_fire():
    (f,) = lc.check_embeddings(np.tile(RNG.normal(size=(1, 64)), (300, 1)))
    assert f.code == "embeddings_constant" and f.values["variance_ratio"] < 1e-20
    assert _codes(lc.check_embeddings(np.zeros((10, 4)))) == {"embeddings_constant"}
    # Spread far below float16 resolution around a large offset is constant too.
    x = 100.0 + 1e-6 * RNG.normal(size=(200, 16))
    assert _codes(lc.check_embeddings(x)) == {"embeddings_constant"}


def test_random_gaussian_embeddings_are_silent():
    assert lc.check_embeddings(RNG.normal(size=(500, 64))) == []
    assert lc.check_embeddings(RNG.normal(size=(20, 256))) == []  # fewer items than dimensions
    assert lc.check_embeddings(5.0 + RNG.normal(size=(300, 16))) == []  # an offset is no collapse


def test_one_dimensional_and_duplicated_embeddings_fire():
    t = RNG.normal(size=(400, 1))
    line = t @ RNG.normal(size=(1, 32)) + 1e-3 * RNG.normal(size=(400, 32))
    (f,) = lc.check_embeddings(line)
    assert f.code == "embeddings_rank_one" and f.severity == lc.WEAK
    assert f.values["participation_ratio"] == pytest.approx(1.0, abs=0.05)
    assert lc.participation_ratio([1, 1, 1, 1]) == 4 and lc.participation_ratio([5, 0, 0]) == 1
    few = RNG.normal(size=(5, 32))[RNG.integers(0, 5, 400)]
    assert "embeddings_duplicated" in _codes(lc.check_embeddings(few))


# -- hash codes -------------------------------------------------------------------------------
def _random_codes(n: int, bits: int = 64, seed: int = 1) -> np.ndarray:
    return np.packbits(np.random.default_rng(seed).random((n, bits)) < 0.5, axis=1)


def test_four_distinct_codes_for_3000_items_fire_with_and_without_labels():
    codes = _random_codes(4)[RNG.integers(0, 4, 3000)]
    labels = RNG.integers(0, 7, 3000)
    found = lc.check_codes(codes, labels=labels)
    assert "codes_few_distinct" in _codes(found)
    (few,) = [f for f in found if f.code == "codes_few_distinct"]
    assert few.values["distinct"] == 4 and few.values["random_distinct"] == pytest.approx(3000, rel=1e-6)
    assert "codes_duplicated" in _codes(lc.check_codes(codes))  # unlabelled: every item tied
    assert not lc.check_index(codes, n_bits=64, labels=labels)["learned"]
    one = np.repeat(_random_codes(1), 100, axis=0)
    assert "codes_mostly_shared" in _codes(lc.check_codes(one, labels=labels[:100]))
    assert _codes(lc.check_codes(one)) == {"codes_few_distinct"}


def test_random_codes_are_silent():
    codes = _random_codes(3000)
    assert lc.check_codes(codes) == []
    assert lc.check_codes(codes, labels=RNG.integers(0, 7, 3000)) == []
    assert lc.check_codes(_random_codes(3000, bits=16), n_bits=16) == []  # short codes tie by chance
    verdict = lc.check_index(codes, labels=RNG.integers(0, 7, 3000), embeddings=RNG.normal(size=(3000, 8)))
    assert verdict["learned"] and verdict["warnings"] == [] and verdict["checks"] == ["codes", "embeddings"]


def test_a_class_pure_hash_is_no_collapse_but_dead_bits_are():
    labels = np.arange(700) % 7
    class_codes = _random_codes(7, bits=32, seed=3)
    assert lc.check_codes(class_codes[labels], labels=labels) == []  # one code per class: perfect
    bits = np.unpackbits(_random_codes(700, bits=32), axis=1)
    bits[:, :20] = 1  # 20 of 32 bits never change
    (f,) = lc.check_codes(np.packbits(bits, axis=1))
    assert f.code == "codes_constant_bits" and f.values["constant_bits"] == 20
    assert f.severity == lc.NO_SIGNAL  # more than half the code is dead
    bits[:, 4:20] = np.unpackbits(_random_codes(700, bits=16, seed=9), axis=1)
    (f,) = lc.check_codes(np.packbits(bits, axis=1))
    assert f.values["constant_bits"] == 4 and f.severity == lc.WEAK


def test_index_labels_with_unlabelled_items_use_the_labelled_ones():
    codes = _random_codes(200)
    labels = np.where(np.arange(200) < 100, np.arange(200) % 4, -1)
    assert lc.check_codes(codes, labels=labels) == []
    multi = np.where(np.arange(200)[:, None] < 150, RNG.integers(0, 2, (200, 5)), -1)
    assert lc.check_codes(codes, labels=multi.astype(np.int8)) == []


# -- the stored verdict -----------------------------------------------------------------------
def test_verdicts_are_json_and_say_what_fired():
    bad = lc.check_classifier("fer", np.zeros((47, 7)), _balanced(47), embeddings=np.ones((47, 8)))
    again = json.loads(json.dumps(bad))
    assert again == bad and again["learned"] is False and again["alpha"] == lc.ALPHA
    assert {w["code"] for w in again["warnings"]} == {
        "metric_at_chance",
        "predictions_collapsed",
        "embeddings_constant",
    }
    assert all({"code", "severity", "message"} <= set(w) for w in again["warnings"])
    assert lc.signal_flag(bad) == "NO SIGNAL" and lc.signal_flag(None) == "-" and lc.signal_flag({}) == "-"
    lines = lc.warning_lines(bad, "train run 7")
    assert lines[0] == "WARNING: train run 7 shows no sign of learning; do not present it as a result."
    assert all(line.startswith("WARNING: ") for line in lines) and len(lines) == 4
    weak = lc.summarize([lc.Finding("x", "m", severity=lc.WEAK)])
    assert weak["learned"] and lc.signal_flag(weak) == "weak" and len(lc.warning_lines(weak, "y")) == 1
    merged = lc.merge(bad, weak, None)
    assert not merged["learned"] and len(merged["warnings"]) == 4


# -- wired into training ------------------------------------------------------------------------
class _TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@pytest.mark.parametrize("shuffled", [False, True])
def test_fit_judges_the_test_split_with_the_classifiers_input_as_embedding(shuffled):
    from automl.config import TrainSection
    from automl.data.tasks import make_task
    from automl.training import fit, split_signal

    x, y = _bright_half_data(240, seed=0)
    xt, yt = _bright_half_data(120, seed=1)
    if shuffled:  # labels that no image predicts: nothing can be learned
        g = torch.Generator().manual_seed(2)
        y, yt = y[torch.randperm(240, generator=g)], yt[torch.randperm(120, generator=g)]
    torch.manual_seed(0)
    model = _TinyNet()
    cfg = TrainSection(epochs=4, batch_size=32, lr=0.1, amp=False, augment=False)
    task = make_task("fer", num_classes=3)
    result = fit(model, x, y, task, cfg, test_x=xt, test_y=yt, device="cpu")
    assert result.outputs is not None and result.outputs.embeddings is not None
    assert result.outputs.embeddings.shape == (120, 32)  # what the final nn.Linear sees
    verdict = split_signal(task, result.outputs, yt)
    assert verdict["checks"] == ["metric", "predictions", "embeddings"] and verdict["n"] == 120
    assert verdict["learned"] is not shuffled, (result.metrics["accuracy"], verdict["warnings"])
    if shuffled:
        assert "metric_at_chance" in {w["code"] for w in verdict["warnings"]}
    else:
        assert result.metrics["accuracy"] > 0.8 and verdict["warnings"] == []
    assert not model.classifier._forward_hooks  # the embedding tap is removed afterwards


def test_prune_ties_are_weak_above_five_percent_and_silent_below():
    from automl.learning_checks import WEAK, check_prune_ties

    assert check_prune_ties(0, 21) == [] and check_prune_ties(1, 21) == [] and check_prune_ties(0, 0) == []
    (finding,) = check_prune_ties(8, 28)
    assert finding.code == "prunes_tied" and finding.severity == WEAK and "8 of 28" in finding.message
