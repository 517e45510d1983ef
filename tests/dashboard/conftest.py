"""A seeded store for the dashboard tests, written through the real Store API and StoreRecorder.

One SQLite file holds: a completed DDPNAS run on the DARTS space (warm-up + search epochs with
their sampled architectures, one distribution snapshot per update from the real
``DDPNASDistribution`` with its pruning, a final genotype with costs and skip-capped variants,
a checkpoint and an export on disk), a running random-search run, a failed run, a training run,
and two Optuna studies in the same database (single-objective with pruned trials and intermediate
values, and a two-objective one).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from automl.nas.distribution import DDPNASDistribution
from automl.store import file_sha256, open_store
from automl.store.recorder import StoreRecorder
from search_spaces.darts import DartsSpace
from search_spaces.genotypes import derive_genotype, skip_capped_genotype

# pytest puts tests/ on sys.path, where tests/hashing and tests/dashboard would shadow the real
# packages as empty namespace packages: put the repository root first and drop such imports.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
for _name in [m for m in sys.modules if m.split(".")[0] in ("hashing", "dashboard")]:
    if getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]

STUDY = "seeded-lr"
MO_STUDY = "seeded-acc-latency"


@dataclass(frozen=True)
class Seeded:
    url: str
    root: Path
    ddpnas_run: int
    running_run: int
    failed_run: int
    train_run: int
    hpo_run: int
    n_updates: int
    n_epochs: int
    genotype: dict
    index_dirs: tuple[Path, ...]
    index_images: tuple[Path, ...]
    index_labels: tuple[int, ...]


def _seed_ddpnas(store, rng: np.random.Generator) -> tuple[int, int, int, dict]:
    space = DartsSpace(nodes=4)
    decisions = space.decisions()
    run_id = store.create_run(
        kind="search",
        config={"preset": "quick", "epochs_scale": 1.0},
        seed=0,
        space="darts",
        task="fer",
        strategy="ddpnas",
        data="synth:fer",
    )
    rec = StoreRecorder(store, run_id)
    dist = DDPNASDistribution(len(decisions), len(decisions[0].candidates), pruning_step=1, seed=0)
    plan = {
        "strategy": "ddpnas",
        "search_epochs": 8 + dist.total_epochs(),
        "warmup_passes": 8,
        "pruning_step": 1,
        "decisions": [d.name for d in decisions],
        "candidates": [list(d.candidates) for d in decisions],
    }
    rec.on_start(plan)
    store.claim_run(run_id)
    quality = rng.normal(size=(len(decisions), len(decisions[0].candidates)))
    epoch = 0
    for sample in dist.warmup_samples():
        rec.on_epoch(
            epoch,
            {
                "phase": "warmup",
                "round": 0,
                "sample": sample.tolist(),
                "train_loss": 2.0 - 0.05 * epoch,
                "train_metric": 0.2 + 0.01 * epoch,
                "val_loss": 2.05 - 0.04 * epoch,
                "val_metric": 0.18 + 0.01 * epoch,
                "lr": 0.025,
                "wall_time": 1.5,
            },
        )
        epoch += 1
    n_updates = 0
    while not dist.finished:
        sample = dist.sample()
        acc = float(1 / (1 + math.exp(-quality[np.arange(len(sample)), sample].mean() - 0.02 * epoch)))
        rec.on_epoch(
            epoch,
            {
                "phase": "search",
                "round": n_updates,
                "sample": sample.tolist(),
                "train_loss": 1.6 - 0.02 * epoch,
                "train_metric": acc + 0.05,
                "val_loss": 1.7 - 0.02 * epoch,
                "val_metric": acc,
                "lr": 0.025 * 0.97**epoch,
                "wall_time": 1.2,
                "arch_hash": f"h{epoch}",
            },
        )
        update = dist.tell(sample, acc)
        if update is not None:
            n_updates = update["update"]
            rec.on_distribution(
                n_updates,
                epoch,
                update["theta"],
                update["alive"],
                {"pruned": [None if p is None else int(p) for p in update["pruned"]]},
            )
        epoch += 1
    theta = dist.theta
    genotype = derive_genotype(theta, nodes=4)
    variants = {f"skip_cap_{c}": skip_capped_genotype(theta, nodes=4, cap=c) for c in (2, 3)}
    ckpt = store.run_dir(run_id) / "supernet.safetensors"
    ckpt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    store.add_checkpoint(run_id, ckpt, kind="supernet", metrics={"val_metric": 0.61})
    exports = store.run_dir(run_id) / "exports"
    exports.mkdir()
    (exports / "genotype.json").write_text('{"space": "darts"}')
    rec.on_finish(
        genotype,
        {
            "metric_name": "accuracy",
            "test_metric": 0.6321,
            "variants": variants,
            "cost": {"params": 2.9e6, "mflops": 512.5, "latency_ms": 7.25},
        },
    )
    store.set_state(run_id, "completed")
    return run_id, n_updates, epoch, genotype


def _seed_other_runs(store) -> tuple[int, int, int]:
    running = store.create_run(
        kind="search", config={}, seed=1, space="darts", task="au", strategy="random", data="synth:au"
    )
    rec = StoreRecorder(store, running)
    rec.on_start({"strategy": "random", "search_epochs": 50})
    store.claim_run(running)
    for e in range(6):
        rec.on_epoch(
            e,
            {
                "phase": "search",
                "sample": [e % 7] * 28,
                "train_loss": 0.7 - 0.02 * e,
                "train_metric": 0.3 + 0.02 * e,
                "val_loss": 0.72 - 0.02 * e,
                "val_metric": 0.28 + 0.02 * e,
                "lr": 0.01,
                "wall_time": 2.0,
            },
        )
    failed = store.create_run(
        kind="search",
        config={},
        seed=2,
        space="mobilenet",
        task="fer",
        strategy="darts",
        data="fer2013:/data/fer2013.csv",
    )
    store.set_state(failed, "running")
    store.set_state(failed, "failed", error="UserError: fer2013.csv has no 'pixels' column")
    train = store.create_run(
        kind="train", config={"epochs": 3}, seed=0, space="darts", task="fer", data="synth:fer"
    )
    store.set_state(train, "running")
    for e in range(3):
        store.record_epoch(
            train,
            e,
            {
                "train_loss": 1.2 - 0.1 * e,
                "train_metric": 0.5 + 0.05 * e,
                "val_loss": 1.3 - 0.1 * e,
                "val_metric": 0.45 + 0.05 * e,
                "wall_time": 3.0,
            },
        )
    store.set_summary(train, {"best_val_metric": 0.55, "test_metric": 0.53})
    store.set_state(train, "completed")
    return running, failed, train


def _seed_hpo_run(store, parent: int, url: str) -> int:
    hpo = store.create_run(kind="hpo", config={"trials": 8}, seed=0, space="darts", task="fer",
                           data="synth:fer", parent_run_id=parent)  # fmt: skip
    store.set_state(hpo, "running")
    store.set_summary(hpo, {"study": STUDY, "storage": url, "objectives": ["val_metric"]})
    store.set_state(hpo, "completed")
    return hpo


def _seed_optuna(url: str) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=url, study_name=STUDY, direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        wd = trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True)
        opt = trial.suggest_categorical("optimizer", ["sgd", "adamw"])
        value = 0.0
        for step in range(5):
            value = 0.5 + 0.08 * step - abs(math.log10(lr) + 2) * 0.1 + (0.02 if opt == "sgd" else 0) - wd
            trial.report(value, step)
            if step == 2 and trial.number in (2, 5):
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=8)
    mo = optuna.create_study(
        storage=url,
        study_name=MO_STUDY,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    mo.optimize(
        lambda t: (t.suggest_float("width", 0.5, 2.0), t.suggest_int("layers", 4, 20) * 0.8), n_trials=6
    )


CLASSES = ["anger", "happiness", "neutral"]
COLOURS = [(200, 40, 40), (240, 200, 40), (80, 120, 220)]


def _seed_index(store, root: Path) -> tuple[Path, list[Path], list[int]]:
    """A real BSODH + FAISS index over 36 small face-like images embedded by a TorchScript model."""
    import torch
    from PIL import Image, ImageDraw

    from hashing import BSODH
    from hashing.index import HashIndex
    from hashing.stream import embed_images, load_model

    class Embed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.embed(x)

        @torch.jit.export
        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)

    model_file = root / "model.pt"
    with warnings.catch_warnings():  # TorchScript is the export format the index side loads
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Embed()).save(str(model_file))
    sidecar = {"in_channels": 3, "image_size": 32, "task": "fer", "class_names": CLASSES, "embedding_dim": 48}
    (root / "model.pt.json").write_text(json.dumps(sidecar))
    rng = np.random.default_rng(3)
    images_dir = root / "faces"
    images_dir.mkdir()
    paths, labels = [], []
    for i in range(36):
        label = i % 3
        img = Image.new(
            "RGB",
            (48, 48),
            tuple(int(c) for c in np.clip(np.array(COLOURS[label]) + rng.normal(0, 25, 3), 0, 255)),
        )
        draw = ImageDraw.Draw(img)
        draw.ellipse((10, 8, 38, 42), fill=(230, 190, 160))
        draw.ellipse((16, 18, 20, 22), fill=(20, 20, 20))
        draw.ellipse((28, 18, 32, 22), fill=(20, 20, 20))
        mouth = (16, 30, 32, 36) if label == 1 else (16, 32, 32, 34)
        draw.rectangle(mouth, fill=(120, 30, 30))
        path = images_dir / f"face_{i:02d}_{CLASSES[label]}.png"
        img.save(path)
        paths.append(path)
        labels.append(label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_model(model_file)
    batch = embed_images(model, paths, detect=False)
    index = HashIndex(BSODH(32, seed=0), model.embedding_dim)
    y = np.asarray(labels)
    for part in (slice(0, 18), slice(18, 36)):
        index.add(batch.embeddings[part], labels=y[part], sources=batch.paths[part])
    index.extra = {
        "model": model.describe(),
        "stream_map": [{"update": 1, "mAP": 0.41}, {"update": 2, "mAP": 0.57}],
    }
    out = index.save(root / "index")
    store.add_index(out, sha256=file_sha256(out / "manifest.json"), bits=32, size=len(index))
    return out, paths, labels


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("dash")
    url = f"sqlite:///{root / 'automl.db'}"
    store = open_store(url)
    rng = np.random.default_rng(0)
    ddpnas, n_updates, n_epochs, genotype = _seed_ddpnas(store, rng)
    running, failed, train = _seed_other_runs(store)
    hpo = _seed_hpo_run(store, ddpnas, url)
    index_dir, images, labels = _seed_index(store, root)
    store.close()
    _seed_optuna(url)
    yield Seeded(
        url=url,
        root=root,
        ddpnas_run=ddpnas,
        running_run=running,
        failed_run=failed,
        train_run=train,
        hpo_run=hpo,
        n_updates=n_updates,
        n_epochs=n_epochs,
        genotype=genotype,
        index_dirs=(index_dir,),
        index_images=tuple(images),
        index_labels=tuple(labels),
    )
