"""Search epochs as a fixed number of optimiser steps, and what ``--epochs-scale`` scales."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from automl.nas.recorder import MemoryRecorder
from automl.nas.search import SearchLoop, dry_run_plan, epoch_steps
from tests.nas.tiny import TINY, tiny_config

SMALL = {
    **TINY,
    "data": {"image_size": 8, "n": 60, "batch_size": 8, "val_fraction": 0.2},
}


def config(**search):
    return tiny_config(SMALL, search=search)


def test_epoch_steps_follow_the_config_and_the_ddpnas_scale():
    assert epoch_steps(config(steps_per_epoch="pass"), n_train=100) is None  # the authors' pass
    assert epoch_steps(config(steps_per_epoch=12), n_train=100) == 12
    # DDPNAS: the scale lengthens / shortens the epoch (its epoch count is structural) ...
    assert epoch_steps(config(steps_per_epoch=40, epochs_scale=0.25), n_train=100) == 10
    assert epoch_steps(config(steps_per_epoch="pass", epochs_scale=0.5), n_train=100) == 6  # 0.5 x 13
    # ... and never rounds to nothing; DARTS and random WS scale their epoch counts instead.
    assert epoch_steps(config(steps_per_epoch=3, epochs_scale=0.01), n_train=100) == 1
    assert epoch_steps(config(strategy="darts", steps_per_epoch=40, epochs_scale=0.25), n_train=100) == 40


def test_epochs_scale_no_longer_leaves_ddpnas_unchanged():
    full = dry_run_plan(config(steps_per_epoch=40))
    quarter = dry_run_plan(config(steps_per_epoch=40, epochs_scale=0.25))
    assert full["search_epochs"] == quarter["search_epochs"] == 35  # 8+7+...+2 at pruning_step 1
    assert (full["steps_per_epoch"], quarter["steps_per_epoch"]) == (40, 10)
    darts = dry_run_plan(config(strategy="darts", epochs_scale=0.5))
    assert darts["search_epochs"] == round(3 * 0.5)  # TINY's 3 DARTS epochs, halved


def _count_steps(loop: SearchLoop) -> list[int]:
    counts = [0]
    step = loop.optimizer.step

    def counting_step(*args, **kwargs):
        counts[0] += 1
        return step(*args, **kwargs)

    loop.optimizer.step = counting_step  # type: ignore[method-assign]
    return counts


def test_a_fixed_step_epoch_runs_that_many_steps_and_sees_every_image_equally():
    loop = SearchLoop(config(steps_per_epoch=5), MemoryRecorder())
    n = int(loop.data.train_x.shape[0])
    counts = _count_steps(loop)
    seen = torch.zeros(n, dtype=torch.long)
    for _ in range(4):
        order, bs = loop._epoch_order()
        assert order.numel() == 5 * 8 and bs == 8
        seen += torch.bincount(order, minlength=n)
    # 4 epochs x 5 steps x 8 = 160 draws over reshuffled passes of n faces: counts differ by <= 1 pass.
    assert int(seen.max() - seen.min()) <= 1
    loop.train_epoch(loop.strategy.next_sample())
    assert counts[0] == 5


def test_resume_with_fixed_step_epochs_matches_an_uninterrupted_run(tmp_path: Path):
    ref_rec = MemoryRecorder()
    ref = SearchLoop(config(steps_per_epoch=3), ref_rec).run()
    part = MemoryRecorder()
    assert SearchLoop(config(steps_per_epoch=3), part, run_dir=tmp_path).run(stop_after=11) is None
    resumed = SearchLoop(config(steps_per_epoch=3), part, run_dir=tmp_path).run(resume=True)
    assert resumed.genotype == ref.genotype
    metrics = [part.epochs[e]["val_metric"] for e in range(35)]
    assert metrics == [ref_rec.epochs[e]["val_metric"] for e in range(35)]
    assert resumed.summary["prunes"] == ref.summary["prunes"] > 0
    assert 0.0 <= resumed.summary["tie_fraction"] <= 1.0


def test_a_batch_larger_than_the_split_trains_on_the_whole_split_each_step():
    cfg = config(steps_per_epoch=2)
    cfg.data.batch_size = 1000
    loop = SearchLoop(cfg, MemoryRecorder())
    n = int(loop.data.train_x.shape[0])
    order, bs = loop._epoch_order()
    assert bs == n and order.numel() == 2 * n
    assert sorted(order[:n].tolist()) == list(range(n))


@pytest.mark.parametrize("bad", [0, -3, "x", True, 2.5])
def test_a_bad_epoch_length_is_one_line_naming_the_key(bad):
    from automl.config import load_config
    from automl.errors import UserError

    with pytest.raises(UserError, match=r"'search.steps_per_epoch'.*optimiser steps or \"pass\""):
        load_config("quick", overrides={"search": {"steps_per_epoch": bad}})
