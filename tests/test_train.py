"""Final training: the loop (fit), its schedules and determinism, and genotype -> trained network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl.config import TrainSection
from automl.data.augment import Augment, occlude
from automl.data.spec import load_data
from automl.data.tasks import make_task
from automl.errors import UserError
from automl.training import evaluate, fit, place_split, resolve_device, train_genotype

GENOTYPE = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip
TINY = TrainSection(epochs=1, batch_size=32, init_channels=4, layers=3, lr=0.05)


def _bright_half_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class = which half of an 8x8 image is bright (0 left, 1 right, 2 top): learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g)
    x[y == 0, :, :, :4] += 180
    x[y == 1, :, :, 4:] += 180
    x[y == 2, :, :4, :] += 180
    return x.clamp(0, 255).to(torch.uint8), y


class SmallNet(nn.Module):
    """A DARTS-like network: auxiliary head used only through forward_with_aux, drop_path_prob."""

    def __init__(self, num_outputs: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.auxiliary = nn.Linear(8 * 4, num_outputs)
        self.classifier = nn.Linear(8 * 4, num_outputs)
        self.drop_path_prob = 0.0
        self.seen_drop_path: list[float] = []

    def forward_with_aux(self, x):
        self.seen_drop_path.append(self.drop_path_prob)
        h = self.pool(self.features(x)).flatten(1)
        return self.classifier(h), (self.auxiliary(h) if self.training else None)

    def forward(self, x):
        return self.forward_with_aux(x)[0]


def test_fit_learns_and_evaluates_with_the_task_metrics():
    x, y = _bright_half_data(192, seed=0)
    xt, yt = _bright_half_data(96, seed=1)
    task = make_task("fer", num_classes=3)
    torch.manual_seed(0)
    model = SmallNet()
    cfg = TrainSection(epochs=6, batch_size=32, lr=0.1, auxiliary_weight=0.4, drop_path=0.0)
    result = fit(model, x, y, task, cfg, test_x=xt, test_y=yt, device="cpu", seed=0)
    assert len(result.history) == 6
    assert result.metrics["accuracy"] > 0.9, result.history
    assert result.history[-1]["val_metric"] == pytest.approx(result.metrics["accuracy"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert sum(map(sum, result.metrics["confusion"])) == 96
    # cosine schedule per epoch, from the base lr towards 0
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] == pytest.approx(0.1) and all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert not model.training  # left in eval mode


def test_drop_path_schedule_and_auxiliary_weight():
    x, y = _bright_half_data(64, seed=0)
    task = make_task("fer", num_classes=3)
    torch.manual_seed(0)
    model = SmallNet()
    aux_before = model.auxiliary.weight.detach().clone()
    cfg = TrainSection(epochs=4, batch_size=32, drop_path=0.2, auxiliary_weight=0.0)
    result = fit(model, x, y, task, cfg, device="cpu", seed=0)
    assert [h["drop_path_prob"] for h in result.history] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert sorted(set(model.seen_drop_path)) == pytest.approx([0.0, 0.05, 0.1, 0.15])
    # weight 0: the auxiliary head gets no gradient (only weight decay would move it: it has none here)
    assert torch.equal(model.auxiliary.weight, aux_before) or model.auxiliary.weight.grad is None
    torch.manual_seed(0)
    model = SmallNet()
    fit(model, x, y, task, cfg.model_copy(update={"auxiliary_weight": 0.4}), device="cpu", seed=0)
    assert not torch.equal(model.auxiliary.weight, aux_before)


def test_cpu_training_is_deterministic_for_a_seed():
    x, y = _bright_half_data(80, seed=0)
    task = make_task("fer", num_classes=3)
    cfg = TrainSection(epochs=2, batch_size=16, drop_path=0.0)

    def run(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        model = SmallNet()
        fit(model, x, y, task, cfg, device="cpu", seed=seed, augment=Augment.default())
        return model.state_dict()

    a, b, c = run(3), run(3), run(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_extra_loss_and_transform_hooks_are_used():
    x, y = _bright_half_data(64, seed=0)
    task = make_task("fer", num_classes=3)
    seen = []

    def extra(xb, yb, output):
        seen.append(float(xb[:, :, 4:, :].std()))  # lower half occluded: constant grey
        return output[0].pow(2).mean() * 0.0

    cfg = TrainSection(epochs=1, batch_size=32)
    fit(SmallNet(), x, y, task, cfg, device="cpu", transform=lambda b: occlude(b, "lower"), extra_loss=extra)
    assert len(seen) == 2 and max(seen) == 0.0


def test_divergence_and_bad_sizes_are_user_errors():
    x, y = _bright_half_data(32, seed=0)
    task = make_task("fer", num_classes=3)
    model = SmallNet()
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    with pytest.raises(UserError, match="diverged"):
        fit(model, x, y, task, TrainSection(epochs=1, batch_size=16), device="cpu")
    with pytest.raises(UserError, match="at least 2"):
        fit(SmallNet(), x[:1], y[:1], task, TrainSection(epochs=1), device="cpu")
    with pytest.raises(UserError, match="at least 1"):
        fit(SmallNet(), x, y, task, TrainSection(epochs=1), device="cpu", epochs=0)


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    assert place_split(x, torch.device("cpu")) is x
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu9")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_with_amp_channels_last_and_data_on_device():
    x, y = _bright_half_data(256, seed=0)
    task = make_task("fer", num_classes=3)
    model = SmallNet()
    cfg = TrainSection(epochs=5, batch_size=64, lr=0.1, amp=True)
    result = fit(model, x, y, task, cfg, test_x=x, test_y=y, device="cuda", seed=0)
    assert result.metrics["accuracy"] > 0.9
    assert place_split(x, torch.device("cuda")).is_cuda
    assert not place_split(x, torch.device("cuda"), budget_bytes=10).is_cuda


def test_train_genotype_builds_trains_and_checkpoints_a_darts_network(tmp_path):
    data = load_data("synth:fer", image_size=16, n=96, seed=0)
    task = make_task(data)
    epochs_seen = []
    result = train_genotype(
        GENOTYPE, data, task, TINY, device="cpu", seed=0, run_dir=tmp_path,
        on_epoch=lambda e, r: epochs_seen.append((e, r["val_metric"])),
    )  # fmt: skip
    assert epochs_seen == [(0, result.metrics["accuracy"])]
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and "confusion" in result.metrics
    assert result.params > 0 and result.mflops and result.mflops > 0
    # the auxiliary head is trained but not counted (DARTS convention)
    total = sum(p.numel() for p in result.model.parameters())
    assert total > result.params
    assert result.checkpoint == tmp_path / "model.safetensors" and result.checkpoint.is_file()
    assert result.meta["num_outputs"] == 7 and result.meta["network_options"]["layers"] == 3
    # evaluation is reproducible from the returned model
    again = evaluate(result.model, data.test_x, data.test_y, task, device="cpu")
    assert again["accuracy"] == pytest.approx(result.metrics["accuracy"])


def test_train_genotype_on_au_reports_per_au_f1():
    data = load_data("synth:au", image_size=16, n=64, seed=0)
    result = train_genotype(
        GENOTYPE, data, make_task(data), TINY.model_copy(update={"augment": False}), device="cpu"
    )
    assert set(result.metrics["per_au_f1"]) == set(data.class_names)
    assert 0.0 <= result.metrics["mean_f1"] <= 1.0


def test_bad_genotypes_are_user_errors():
    data = load_data("synth:fer", image_size=16, n=24, seed=0)
    task = make_task(data)
    bad_op = {**GENOTYPE, "normal": [["conv_9x9", 0]] + GENOTYPE["normal"][1:]}
    with pytest.raises(UserError, match="unknown op 'conv_9x9'"):
        train_genotype(bad_op, data, task, TINY, device="cpu")
    with pytest.raises(UserError, match="'space'"):
        train_genotype({"normal": []}, data, task, TINY, device="cpu")
    with pytest.raises(UserError, match="unknown search space"):
        train_genotype({**GENOTYPE, "space": "nope"}, data, task, TINY, device="cpu")
