"""The CPU thread policy (automl.threads): the helper, and ``automl train`` / ``hpo`` applying it."""

from __future__ import annotations

import json

import pytest
import torch

from automl.errors import UserError
from automl.store import open_store
from automl.threads import apply_cpu_threads, check_threads, cpu_threads, worker_threads
from tests.commands.test_hpo_cli import TINY_TOML as HPO_CLI_TOML

GENOTYPE = {
    "space": "face",
    "task": "fer",
    "head": "linear",
    "depths": [1, 1, 1],
    "ops": ["mb_k3_e3", "mb_k3_e3", "mb_k3_e3"],
}
TINY_TOML = """
[search]
device = "cpu"
cpu_threads = {threads}
[data]
image_size = 16
n = 40
[train]
epochs = 1
batch_size = 16
init_channels = 4
layers = 3
"""


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_apply_sets_torch_threads_on_cpu_only():
    torch.set_num_threads(2)
    assert apply_cpu_threads("cpu", 1) == 1 and torch.get_num_threads() == 1
    assert apply_cpu_threads(torch.device("cpu"), None) == 1  # None keeps the count
    assert apply_cpu_threads(torch.device("cuda"), 2) == 1  # a GPU run leaves it alone
    assert apply_cpu_threads("cpu", 2, faiss=True) == 2


def test_the_scope_restores_the_previous_count():
    torch.set_num_threads(2)
    with cpu_threads("cpu", 1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_workers_get_the_setting_or_a_share_of_the_cores():
    assert worker_threads(None, 4, cpu_count=16) == 4
    assert worker_threads(3, 4, cpu_count=16) == 3
    assert worker_threads(None, 32, cpu_count=16) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_thread_counts_are_user_errors(bad):
    with pytest.raises(UserError, match="number of CPU threads must be a whole number") as info:
        check_threads(bad)
    assert info.value.argument == "cpu_threads" and "--" not in str(info.value)


def _files(tmp_path, threads: int):
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps(GENOTYPE))
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(threads=threads))
    return genotype, config


def test_train_runs_on_the_configured_threads_and_records_them(cli, db_url, tmp_path, monkeypatch):
    seen: list[int] = []
    import automl.training as train_module

    real_fit = train_module.fit

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit", spy)
    torch.set_num_threads(2)
    genotype, config = _files(tmp_path, threads=1)
    res = cli("--db", db_url, "train", genotype, "--config", config, "--json")
    assert res.code == 0, res.err
    run = open_store(db_url).get_run(json.loads(res.out)["run_id"])
    assert seen == [1] and run["summary"]["cpu_threads"] == 1
    assert torch.get_num_threads() == 2  # restored after the run
    res = cli("--db", db_url, "train", genotype, "--config", config, "--cpu-threads", "2", "--json")
    assert res.code == 0, res.err
    run = open_store(db_url).get_run(json.loads(res.out)["run_id"])
    assert seen == [1, 2] and run["summary"]["cpu_threads"] == 2
    assert run["config"]["search"]["cpu_threads"] == 2


def test_train_rejects_a_bad_thread_count_in_the_config(cli, db_url, tmp_path):
    genotype, config = _files(tmp_path, threads=0)
    res = cli("--db", db_url, "train", genotype, "--config", config)
    assert res.code == 2 and "search.cpu_threads" in res.err


HPO_TOML = HPO_CLI_TOML  # test_hpo_cli's one-epoch tiny network on 200 synthetic faces


@pytest.mark.parametrize("workers", [1, 2])
def test_hpo_trials_run_on_the_configured_threads(cli, db_url, tmp_path, workers):
    genotype, _ = _files(tmp_path, threads=1)
    config = tmp_path / "hpo.toml"
    config.write_text(HPO_TOML)
    torch.set_num_threads(1)
    res = cli(
        "--db", db_url, "hpo", genotype, "--config", config, "--trials", "2", "--workers", str(workers),
        "--cpu-threads", "2", "--pruner", "none", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    store = open_store(db_url)
    summaries = [store.get_run(r["id"])["summary"] for r in store.list_runs(kind="train")]
    every_run = [(r["id"], r["kind"], r["state"], r["pid"], r["error"]) for r in store.list_runs()]
    assert len(summaries) == 2, (every_run, res.out[-2000:], res.err[-2000:])  # what happened, if not
    assert all(s["cpu_threads"] == 2 for s in summaries), summaries
    assert torch.get_num_threads() == 1  # the in-process worker restores the count


def test_index_build_runs_on_cpu_threads_and_records_them(cli, db_url, tmp_path):
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    from tests.tiny_embedder import CLASSES, write_tiny_embedder

    (tmp_path / "model").mkdir()
    model = write_tiny_embedder(tmp_path / "model")
    faces = tmp_path / "faces"
    faces.mkdir()
    lines = ["file,label"]
    for c, name in enumerate(CLASSES):
        for i in range(4):
            cv2.imwrite(str(faces / f"{name}_{i}.png"), np.full((48, 48), 60 * c + 40, np.uint8))
            lines.append(f"{name}_{i}.png,{name}")
    labels = tmp_path / "faces.csv"
    labels.write_text("\n".join(lines) + "\n")
    torch.set_num_threads(2)
    res = cli(
        "--db", db_url, "index", "build", "--model", model, "--images", faces, "--labels", labels,
        "--bits", "16", "--out", tmp_path / "ix", "--no-detect", "--cpu-threads", "1",
    )  # fmt: skip
    assert res.code == 0, res.err
    (row,) = open_store(db_url).list_indexes()
    assert row["extra"]["cpu_threads"] == 1 and torch.get_num_threads() == 1
