"""`automl search --space face --task au|fer` end to end on the embedded synthetic sets."""

import json

import pytest

SMALL = """
[search]
cpu_threads = 1
[data]
n = 200
image_size = 16
batch_size = 32
[supernet]
init_channels = 4
[ddpnas]
pruning_step = 1
"""


@pytest.mark.parametrize("task", ["au", "fer"])
def test_face_space_search_names_its_head(cli, tmp_path, db_url, task):
    (tmp_path / "small.toml").write_text(SMALL)
    res = cli("--db", db_url, "search", "--space", "face", "--task", task, "--config",
              str(tmp_path / "small.toml"), "--json")
    assert res.code == 0, res.err
    genotype = json.loads(res.out)["genotype"]
    assert genotype["space"] == "face" and genotype["task"] == task
    if task == "au":
        assert genotype["head"] in {"linear", "au_attention", "au_transformer", "au_graph"}
        res = cli("--db", db_url, "runs", "show", "1", "--json")
        assert json.loads(res.out)["data"] == "synth:au"
    else:
        assert genotype["head"] == "linear"
