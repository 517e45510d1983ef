"""`--max-mflops` / `--max-params`: every sampled and the final architecture stay within budget."""

import json

import pytest

from automl.store import open_store
from search_spaces import create_space

CONFIG = """
[search]
steps_per_epoch = "pass"
cpu_threads = 1
[data]
n = 200
image_size = 16
batch_size = 32
augment = false
[supernet]
init_channels = 4
layers = 4
[train]
init_channels = 8
[ddpnas]
pruning_step = 1
[random]
epochs = 4
candidates = 3
"""


@pytest.mark.parametrize("strategy", ["ddpnas", "random"])
def test_search_respects_a_flops_budget(cli, tmp_path, db_url, strategy):
    (tmp_path / "c.toml").write_text(CONFIG)
    limit = 0.5
    res = cli("--db", db_url, "search", "--space", "mobilenet", "--strategy", strategy,
              "--config", str(tmp_path / "c.toml"), "--max-mflops", str(limit), "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert result["cost"]["mflops"] <= limit
    space = create_space("mobilenet", task="fer", layers=4)
    budget = space.budget(in_channels=1, num_outputs=7, image_size=16, init_channels=8, max_mflops=limit)
    largest = [d.candidates.index("mb_k7_e6") for d in space.decisions()]
    assert budget.cost(largest)["mflops"] > limit  # the budget really binds in this space
    report = open_store(db_url).run_report(result["run_id"])
    assert report["config"]["search"]["max_mflops"] == limit
    if strategy == "ddpnas":  # one path per epoch, recorded; random WS draws one per batch
        samples = [e["sample"] for e in report["epochs"]]
        assert samples and all(budget.feasible(s) for s in samples)


def test_impossible_budget_and_wrong_space_are_user_errors(cli, tmp_path, db_url):
    (tmp_path / "c.toml").write_text(CONFIG)
    res = cli("--db", db_url, "search", "--space", "mobilenet", "--config", str(tmp_path / "c.toml"),
              "--max-mflops", "0.001")
    assert res.code == 2 and "no architecture fits the budget" in res.err
    res = cli("--db", db_url, "search", "--space", "darts", "--config", str(tmp_path / "c.toml"),
              "--max-params", "0.1")
    assert res.code == 2 and "chain space" in res.err
