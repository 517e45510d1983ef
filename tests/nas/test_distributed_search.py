"""`automl search --nproc 2` (two gloo processes) computes what one process computes.

The two sides are only equal up to float64 rounding (half batches summed across ranks vs one
whole batch, a two-pass global batch norm vs torch's), and a 35-epoch search turns relative weight
differences of ~1e-11 into different discrete choices (max-pool winners, validation argmaxes,
pruning). So both runs start alike (fresh processes, one pinned environment) and compute
everything in float64: the per-epoch train losses agree to 1e-9 (float32 anywhere in the loss
shows as ~1e-7), and the discrete record is then identical.
"""

import os
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


# A parent launched by torchrun (or a CI job that exports these) must not make the one-process
# side think it is a rank, nor hand the launcher a rendezvous it did not choose.
_LAUNCHER_VARS = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                  "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}  # fmt: skip


def _pinned_env() -> dict[str, str]:
    """The same environment for both sides, whatever the one pytest was started with."""
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARS}
    env = {k: v for k, v in env.items() if not k.startswith("TORCHELASTIC_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", COLUMNS="200")
    return env


def _search(folder, batch: int, *extra: str) -> tuple[subprocess.Popen, str]:
    """``automl search`` in a fresh process with its own store and folder: never in this pytest
    process, whose torch state earlier tests may have changed; stdin closed, the environment pinned."""
    folder.mkdir()
    (folder / "search.toml").write_text(CONFIG.format(batch=batch))
    db_url = f"sqlite:///{folder}/automl.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "automl", "--db", db_url, "search", "--config", str(folder / "search.toml"),
         "--json", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=folder, env=_pinned_env(),
    )  # fmt: skip
    return proc, db_url


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    ddp, ddp_db = _search(tmp_path / "ddp", 16, "--nproc", "2")
    one, one_db = _search(tmp_path / "one", 32)
    for proc in (ddp, one):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]

    ddp_store, one_store = open_store(ddp_db), open_store(one_db)
    assert ddp_store.count_runs() == 1  # rank 0 alone writes the store
    a, b = ddp_store.run_report(1), one_store.run_report(1)
    assert a["state"] == b["state"] == "completed"
    assert a["summary"]["world_size"] == 2 and a["summary"]["backend"] == "gloo"
    assert a["summary"]["plan"]["train_samples"] % 32 == 0  # the same global batches on both sides
    # Rounding-level agreement first: it is what keeps the discrete record below identical.
    losses = [[e["train_loss"] for e in run["epochs"]] for run in (a, b)]
    np.testing.assert_allclose(*losses, rtol=1e-9, atol=0)
    assert [e["sample"] for e in a["epochs"]] == [e["sample"] for e in b["epochs"]]
    assert [e["val_metric"] for e in a["epochs"]] == [e["val_metric"] for e in b["epochs"]]
    for da, db in zip(a["distributions"], b["distributions"], strict=True):
        np.testing.assert_allclose(da["theta"], db["theta"], rtol=0, atol=1e-9)
        assert da["alive"] == db["alive"]
    assert a["genotype"] == b["genotype"]
