"""``automl bench nas`` end to end on a tiny space: one run, three strategies, random reference."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY = """
[search]
space = "darts"
steps_per_epoch = "pass"
device = "cpu"
cpu_threads = 1
[data]
image_size = 8
n = 40
batch_size = 64
[supernet]
init_channels = 2
layers = 3
nodes = 1
[ddpnas]
pruning_step = 1
[darts]
epochs = 2
[random]
epochs = 3
candidates = 2
[train]
epochs = 1
init_channels = 4
layers = 3
batch_size = 32
"""


def test_bench_nas_compares_all_strategies(cli, tmp_path: Path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "bench" / "nas.json"
    try:
        res = cli("bench", "nas", "--config", str(cfg), "--random-archs", "2", "--out", str(out))
    finally:
        torch.set_num_threads(2)
    assert res.code == 0, res.err
    report = json.loads(out.read_text())
    assert [s["strategy"] for s in report["strategies"]] == ["ddpnas", "darts", "random"]
    by = {s["strategy"]: s for s in report["strategies"]}
    assert by["ddpnas"]["epochs"] == 35 and by["darts"]["epochs"] == 2 and by["random"]["epochs"] == 3
    for s in report["strategies"]:
        assert s["search_seconds"] > 0 and s["params"] > 0 and 0 <= s["retrained_metric"] <= 1
    assert report["random_reference"]["count"] == 2
    assert report["ratios"]["ddpnas_over_darts_search_time"] > 0
    assert "DDPNAS / DARTS search time" in res.out
