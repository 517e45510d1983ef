"""`automl search --nproc 2` (two gloo processes) computes what one process computes."""

import subprocess
import sys

import numpy as np

from automl.store import open_store

CONFIG = """
[search]
space = "darts"
steps_per_epoch = "pass"
precision = "float64"
cpu_threads = 1
[data]
n = 200
image_size = 16
batch_size = {batch}
augment = false
val_fraction = 0.21
[supernet]
init_channels = 4
layers = 2
[ddpnas]
pruning_step = 1
"""


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path, cli):
    (tmp_path / "ddp.toml").write_text(CONFIG.format(batch=16))
    (tmp_path / "one.toml").write_text(CONFIG.format(batch=32))
    ddp_db, one_db = f"sqlite:///{tmp_path}/ddp.db", f"sqlite:///{tmp_path}/one.db"
    ddp = subprocess.Popen(
        [sys.executable, "-m", "automl", "--db", ddp_db, "search", "--config", str(tmp_path / "ddp.toml"),
         "--nproc", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    res = cli("--db", one_db, "search", "--config", str(tmp_path / "one.toml"), "--json")
    out, err = ddp.communicate(timeout=600)
    assert res.code == 0, res.err
    assert ddp.returncode == 0, err[-3000:]

    ddp_store, one_store = open_store(ddp_db), open_store(one_db)
    assert ddp_store.count_runs() == 1  # rank 0 alone writes the store
    a, b = ddp_store.run_report(1), one_store.run_report(1)
    assert a["state"] == b["state"] == "completed"
    assert a["summary"]["world_size"] == 2 and a["summary"]["backend"] == "gloo"
    assert a["summary"]["plan"]["train_samples"] % 32 == 0  # the same global batches on both sides
    assert [e["sample"] for e in a["epochs"]] == [e["sample"] for e in b["epochs"]]
    assert [e["val_metric"] for e in a["epochs"]] == [e["val_metric"] for e in b["epochs"]]
    for da, db in zip(a["distributions"], b["distributions"], strict=True):
        np.testing.assert_allclose(da["theta"], db["theta"], rtol=0, atol=1e-9)
        assert da["alive"] == db["alive"]
    assert a["genotype"] == b["genotype"]
