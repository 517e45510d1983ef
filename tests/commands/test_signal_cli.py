"""Say when nothing was learned: ``train``, ``hpo``, ``search`` and ``index build`` end with
``WARNING:`` lines on stderr and a ``signal`` verdict in what they store when the result carries no
signal, and stay silent when it does; ``runs list`` flags it and ``runs show`` prints it.

The no-signal cases are real runs that cannot learn: one epoch at a tiny learning rate on a few
hundred synthetic faces, a supernet searched for a few steps, an embedder that maps every face to
the same point. The silent cases are an index built from informative embeddings and a train run
whose stored verdict comes from the library on a classifier that learned (training the CLI's
networks to real accuracy would take minutes).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from automl.learning_checks import check_classifier
from automl.store import open_store
from tests.commands.test_hpo_cli import TINY_GENOTYPE, TINY_TOML
from tests.tiny_embedder import write_tiny_embedder

# test_hpo_cli's 200 synthetic 16x16 faces and 2-cell width-4 network, one epoch at lr 1e-6:
# nothing learned.
NOTHING_TOML = TINY_TOML.replace("epochs = 1\n", "epochs = 1\nlr = 1e-6\n")
assert "lr = 1e-6" in NOTHING_TOML
SEARCH_TOML = """
[search]
space = "darts"
steps_per_epoch = 2

[data]
image_size = 16
n = 64
batch_size = 16

[random]
candidates = 2

[supernet]
init_channels = 4
layers = 3
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps(TINY_GENOTYPE))
    config = tmp_path / "nothing.toml"
    config.write_text(NOTHING_TOML)
    return {"genotype": genotype, "config": config}


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("WARNING:")]


def test_train_that_learned_nothing_warns_stores_the_verdict_and_runs_flag_it(cli, db_url, files):
    res = cli("--db", db_url, "train", files["genotype"], "--config", files["config"], "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)  # stdout stays pure JSON: the warnings go to stderr
    run_id = out["run_id"]
    lines = _warnings(res.err)
    assert (
        lines[0] == f"WARNING: train run {run_id} shows no sign of learning; do not present it as a result."
    )
    assert any(line.startswith("WARNING: [metric_at_chance] test accuracy") for line in lines), lines
    signal = out["signal"]
    assert signal["learned"] is False and signal["split"] == "test" and signal["n"] > 0
    assert signal["checks"] == ["metric", "predictions", "embeddings"]
    assert len(lines) == 1 + len(signal["warnings"])
    stored = open_store(db_url).get_run(run_id)["summary"]["signal"]
    assert stored == signal

    # A train run that did learn, its verdict from the same library: flagged ok, nothing printed.
    store = open_store(db_url)
    good = store.create_run(kind="train", config={}, space="darts", task="fer", data="synth:fer")
    y = np.arange(500) % 7
    pred = np.where(np.random.default_rng(0).random(500) < 0.8, y, (y + 1) % 7)
    store.set_summary(good, {"test_metric": 0.8, "signal": check_classifier("fer", np.eye(7)[pred], y)})
    store.set_state(good, "completed")

    res = cli("--db", db_url, "runs", "list")
    assert res.code == 0, res.err
    assert "signal" in res.out
    rows = {cells[0]: line for line in res.out.splitlines() if len(cells := line.split()) > 1}  # id first
    assert "NO SIGNAL" in rows[str(run_id)] and " ok " in rows[str(good)]

    res = cli("--db", db_url, "runs", "show", str(run_id))
    assert res.code == 0, res.err
    assert (
        "learning checks (metric, predictions, embeddings; test split" in res.out and "NO SIGNAL" in res.out
    )
    assert _warnings(res.err) == lines
    res = cli("--db", db_url, "runs", "show", str(good))
    assert res.code == 0 and _warnings(res.err) == [] and "ok" in res.out
    res = cli("--db", db_url, "runs", "show", str(run_id), "--json")
    assert json.loads(res.out)["summary"]["signal"] == signal


def test_hpo_whose_trials_learned_nothing_warns(cli, db_url, files):
    res = cli("--db", db_url, "hpo", files["genotype"], "--config", files["config"], "--trials", "1",
              "--pruner", "none", "--json")  # fmt: skip
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    signal = summary["signal"]
    assert signal["learned"] is False and signal["trials_judged"] == signal["trials_at_chance"] == 1
    codes = [w["code"] for w in signal["warnings"]]
    assert "metric_at_chance" in codes and codes[-1] == "all_trials_at_chance"
    lines = _warnings(res.err)
    assert lines[0].startswith(f"WARNING: hpo run {summary['hpo_run_id']} shows no sign of learning")
    assert any("best trial 0: validation accuracy" in line for line in lines), lines
    store = open_store(db_url)
    assert store.get_run(summary["hpo_run_id"])["summary"]["signal"] == signal
    (trial_run,) = store.list_runs(kind="train")
    assert trial_run["summary"]["signal"]["split"] == "validation"


def test_search_whose_supernet_stayed_at_chance_warns(cli, db_url, tmp_path):
    config = tmp_path / "search.toml"
    config.write_text(SEARCH_TOML)
    res = cli("--db", db_url, "search", "--strategy", "random", "--config", config, "--epochs-scale", "0.1")
    assert res.code == 0, res.err
    run_id = open_store(db_url).list_runs(kind="search")[0]["id"]
    signal = open_store(db_url).get_run(run_id)["summary"]["signal"]
    assert signal["learned"] is False and signal["split"] == "validation"
    assert signal["warnings"][0]["code"] == "metric_at_chance"
    lines = _warnings(res.err)
    assert lines[0] == (
        f"WARNING: search run {run_id}'s supernet shows no sign of learning; do not present it as a result."
    )
    assert lines[1].startswith("WARNING: [metric_at_chance] validation accuracy")
    assert "within noise of chance" in lines[1] and f"/{signal['n']})" in lines[1]


class _Collapsed(torch.nn.Module):
    """An embedder that learned nothing: every face goes to the same point."""

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(x.shape[0], 16) + 0.0 * x.mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)[:, :3]


def _collapsed_model(folder: Path) -> Path:
    path = folder / "collapsed.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Collapsed()).save(str(path))
    side = {
        "in_channels": 1,
        "image_size": 32,
        "task": "fer",
        "class_names": ["a", "b", "c"],
        "embedding_dim": 16,
    }
    path.with_name("collapsed.pt.json").write_text(json.dumps(side))
    return path


def test_index_build_from_collapsed_embeddings_warns_and_records_it(cli, db_url, tmp_path):
    from hashing.index import HashIndex

    out = tmp_path / "ix"
    res = cli("--db", db_url, "index", "build", "--model", _collapsed_model(tmp_path), "--data", "synth:fer",
              "--n", "150", "--bits", "16", "--batch", "30", "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    lines = _warnings(res.err)
    assert lines[0] == f"WARNING: index {out} shows no sign of learning; do not present it as a result."
    assert any("[embeddings_constant] embeddings fed in are (nearly) constant" in line for line in lines)
    assert "WARNING: [codes_few_distinct] 1 distinct code for " in "\n".join(lines)
    signal = HashIndex.load(out).extra["signal"]
    assert signal["learned"] is False and signal["checks"] == ["codes", "embeddings"]
    (row,) = open_store(db_url).list_indexes()
    assert row["extra"]["signal"] == signal


def test_index_build_from_informative_embeddings_is_silent(cli, db_url, tmp_path):
    from hashing.index import HashIndex

    out = tmp_path / "ix"
    res = cli("--db", db_url, "index", "build", "--model", write_tiny_embedder(tmp_path), "--data",
              "synth:fer", "--n", "150", "--bits", "16", "--batch", "30", "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    assert _warnings(res.err) == [] and "WARNING" not in res.out
    signal = HashIndex.load(out).extra["signal"]
    assert signal["learned"] is True and signal["warnings"] == []
    assert open_store(db_url).list_indexes()[0]["extra"]["signal"] == signal
