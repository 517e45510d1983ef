"""The one search loop with each strategy on a tiny supernet, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from automl.config import load_config
from automl.nas.recorder import MemoryRecorder
from automl.nas.search import STATE_FILE, LrSchedule, SearchLoop, dry_run_plan
from automl.nas.strategy import LrPlan
from search_spaces.genotypes import validate_genotype
from tests.nas.tiny import tiny_config as _tiny


def tiny_config(**search):
    return _tiny(search=search)


def test_ddpnas_search_records_every_epoch_and_update(tmp_path: Path):
    rec = MemoryRecorder()
    progress = []
    loop = SearchLoop(tiny_config(), rec, run_dir=tmp_path, progress=progress.append)
    out = loop.run()
    assert out is not None and out.epochs == 35
    assert rec.plan["search_epochs"] == 35 and len(rec.plan["decisions"]) == 4
    assert sorted(rec.epochs) == list(range(35))
    assert len(rec.distributions) == 7
    alive_counts = [int(d["alive"].sum(axis=1).max()) for _, d in sorted(rec.distributions.items())]
    assert alive_counts == [7, 6, 5, 4, 3, 2, 1]
    # The first round (8 epochs) trains every op of every edge exactly once.
    first_round = np.array([rec.epochs[e]["sample"] for e in range(8)])
    assert all(sorted(first_round[:, i]) == list(range(8)) for i in range(4))
    r = rec.epochs[0]
    assert r["phase"] == "search" and r["lr"] == pytest.approx(0.1) and 0 <= r["val_metric"] <= 1
    assert {"train_loss", "train_metric", "val_loss", "wall_time", "round"} <= set(r)
    validate_genotype(rec.genotype)
    assert rec.summary["cost"]["params"] > 0
    assert set(rec.summary["variants"]) == {f"skip_cap_{c}" for c in (2, 3, 4, 5, 6)}
    assert progress[-1]["epoch"] == 35 and progress[-1]["eta_seconds"] == 0
    assert (tmp_path / STATE_FILE).is_file()


def test_darts_first_order_moves_the_alphas():
    rec = MemoryRecorder()
    loop = SearchLoop(tiny_config(strategy="darts"), rec)
    before = loop.model.arch_weights()
    out = loop.run()
    assert out.epochs == 3 and sorted(rec.distributions) == [1, 2, 3]
    assert not np.allclose(before, rec.distributions[3]["theta"])
    assert rec.epochs[0]["sample"] is None
    validate_genotype(out.genotype)


def test_random_ws_ranks_candidates_on_the_supernet():
    rec = MemoryRecorder()
    out = SearchLoop(tiny_config(strategy="random"), rec).run()
    ranking = rec.summary["ranking"]
    assert len(ranking) == 3
    assert rec.summary["best_val_metric"] == max(r["val_metric"] for r in ranking)
    validate_genotype(out.genotype)


def test_au_task_uses_mean_f1():
    cfg = tiny_config(strategy="darts", data="synth:au", task="au")
    cfg.darts.epochs = 1
    rec = MemoryRecorder()
    SearchLoop(cfg, rec).run()
    assert rec.epochs[0]["metric_name"] == "mean_f1"


def test_task_mismatch_is_a_user_error():
    from automl.errors import UserError

    with pytest.raises(UserError, match="set the task to 'au'") as info:
        SearchLoop(tiny_config(data="synth:au"), MemoryRecorder())
    assert info.value.argument == "task" and "--" not in str(info.value)


def test_resume_in_process_matches_an_uninterrupted_run(tmp_path: Path):
    full = MemoryRecorder()
    ref = SearchLoop(tiny_config(), full).run()

    part = MemoryRecorder()
    assert SearchLoop(tiny_config(), part, run_dir=tmp_path).run(stop_after=13) is None
    assert sorted(part.epochs) == list(range(13))
    resumed = SearchLoop(tiny_config(), part, run_dir=tmp_path).run(resume=True)
    assert resumed.summary["resumed"] and resumed.summary["epochs_this_process"] == 22
    assert resumed.genotype == ref.genotype
    assert [part.epochs[e]["val_metric"] for e in range(35)] == [
        full.epochs[e]["val_metric"] for e in range(35)
    ]
    np.testing.assert_array_equal(part.distributions[7]["theta"], full.distributions[7]["theta"])


def test_step_schedule_decays_only_at_round_boundaries():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = LrSchedule(LrPlan(kind="step", lr=0.1, decay=0.1, every=5.0))
    sched.after_epoch(opt, 6, round_boundary=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    sched.after_epoch(opt, 7, round_boundary=True)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched.after_epoch(opt, 8, round_boundary=True)  # next decay only at epoch >= 10
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_dry_run_plan_of_the_paper_preset_is_105_epochs():
    plan = dry_run_plan(load_config("paper"))
    assert plan["search_epochs"] == 105 and plan["num_decisions"] == 28
    assert plan["lr_schedule"]["every"] == pytest.approx(50.0)
