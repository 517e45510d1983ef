"""``automl bench nas --with-nni``: NNI's DARTS and RandomOneShot beside ours, in the same run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from automl.errors import UserError
from tests.commands.test_search_bench_nas import TINY  # the same tiny run as the plain bench test


def _tiny_cfg(tmp_path: Path):
    from automl.nas.job import search_config

    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return search_config(config_file=path)


def test_bench_nas_with_nni_runs_five_strategies(cli, tmp_path: Path, nni_installed: None):
    from search_spaces.genotypes import validate_genotype

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "bench" / "nas.json"
    try:
        res = cli(
            "bench", "nas", "--config", str(cfg), "--with-nni", "--random-archs", "1", "--out", str(out)
        )
    finally:
        torch.set_num_threads(2)
    assert res.code == 0, res.err
    report = json.loads(out.read_text())
    names = [s["strategy"] for s in report["strategies"]]
    assert names == ["ddpnas", "darts", "random", "nni-darts", "nni-random"]
    by = {s["strategy"]: s for s in report["strategies"]}
    # NNI gets our baselines' budgets: darts.epochs = 2, random.epochs = 3.
    assert by["nni-darts"]["epochs"] == 2 and by["nni-random"]["epochs"] == 3
    for s in report["strategies"]:
        assert validate_genotype(s["genotype"])["nodes"] == 1
        assert s["search_seconds"] > 0 and s["search_cpu_seconds"] > 0
        assert s["params"] > 0 and 0 <= s["retrained_metric"] <= 1
        assert s["seconds_per_epoch"] > 0 and 0 <= s["final_val_metric"] <= 1
    assert by["nni-darts"]["nni"]["weight_lr"] == 0.025 and by["nni-darts"]["nni"]["momentum"] == 0.9
    ratios = report["ratios"]
    for key in ("nni_darts", "nni_random"):
        assert ratios[f"ddpnas_over_{key}_search_time"] > 0
        assert ratios[f"ddpnas_over_{key}_search_cpu_time"] > 0
    assert "nni-darts" in res.out and "nni-random" in res.out
    assert "DDPNAS / NNI DARTS search time" in res.out
    # Lightning wrote nothing into the working directory (the cli fixture runs in tmp_path).
    assert not (tmp_path / "lightning_logs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "tiny.toml"]


def test_run_nni_strategy_refuses_other_spaces(tmp_path: Path, nni_installed: None):
    from automl.data import load_data
    from automl.nas.nni_baselines import run_nni_strategy

    cfg = _tiny_cfg(tmp_path)
    cfg.search.space = "mobilenet"
    data = load_data("synth:fer", image_size=8, n=20)
    with pytest.raises(UserError, match="the NNI baselines compare on the darts space"):
        run_nni_strategy("nni-darts", cfg, data, "cpu")


def test_check_nni_refuses_multilabel_data(tmp_path: Path):
    from automl.nas.nni_baselines import check_nni

    with pytest.raises(UserError, match="single-label"):
        check_nni(_tiny_cfg(tmp_path), "au")


def test_missing_nni_extra_is_one_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from automl.nas.nni_baselines import check_nni

    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)  # import now fails, as if absent
    with pytest.raises(UserError, match=r"NNI baselines need the optional NNI extra: pip install") as info:
        check_nni(_tiny_cfg(tmp_path), "fer")
    assert "\n" not in str(info.value) and info.value.argument == "with_nni"


def test_batches_drop_a_trailing_batch_of_one():
    from automl.nas.nni_baselines import _Batches

    batches = _Batches(129, 64, torch.device("cpu"))
    got = list(batches)
    assert len(batches) == len(got) == 2 and sorted(torch.cat(got).tolist()) != list(range(129))
    assert all(b.numel() == 64 for b in got)
    whole = _Batches(129, 64, torch.device("cpu"), shuffle=False)  # evaluation keeps every sample
    assert len(whole) == 3 and torch.cat(list(whole)).tolist() == list(range(129))


def test_random_path_keeps_nni_ops_and_draws_the_inputs(nni_installed: None):
    from automl.nas.nni_baselines import _path_weights
    from search_spaces.genotypes import derive_genotype, validate_genotype
    from search_spaces.nni_darts import arch_to_weights, edge_labels

    arch = {label: "sep_conv_3x3" for label in edge_labels(4)}
    arch["normal.n3.in1"] = "none"
    inputs = set()
    for seed in range(5):
        g = validate_genotype(derive_genotype(_path_weights(arch_to_weights(arch, 4), seed), 4))
        assert all(op == "sep_conv_3x3" for cell in ("normal", "reduce") for op, _ in g[cell])
        assert [1, 1] not in [[k // 2, src] for k, (_, src) in enumerate(g["normal"])]  # none edge left out
        inputs |= {src for _, src in g["normal"]}
    assert inputs > {0, 1}  # not always the two cell inputs, as a plain tie-break would give
