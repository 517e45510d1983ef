"""A real process that owns a DDPNAS-shaped search run and keeps writing it, for the browser test.

``python live_writer.py URL READY_FILE`` creates the run (plan, epochs, distribution snapshots
from the real :class:`DDPNASDistribution`), claims it, writes the run id to ``READY_FILE`` after
its first epochs, then writes one epoch and one heartbeat every second until it is killed. The
dashboard sees a live run with a progress bar and an ETA; killing the process (SIGKILL, no
chance to record its end) makes the same run show as dead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from automl.nas.distribution import DDPNASDistribution
from automl.store import open_store
from automl.store.recorder import StoreRecorder

EPOCH_SECONDS = 1.0


def main(url: str, ready_file: Path) -> None:
    store = open_store(url)
    ops = ["mb_k3_e3", "mb_k5_e3", "mb_k7_e3", "mb_k3_e6"]
    decisions = [f"layer{i}" for i in range(4)]
    dist = DDPNASDistribution(len(decisions), len(ops), pruning_step=1, seed=0)
    run_id = store.create_run(kind="search", config={"search": {"strategy": "ddpnas"}}, seed=0,
                              space="face", task="au", strategy="ddpnas", data="synth:au")  # fmt: skip
    rec = StoreRecorder(store, run_id)
    total = dist.total_epochs() * 20  # far more epochs than the test waits for
    rec.on_start({"strategy": "ddpnas", "search_epochs": total, "updates": 3, "decisions": decisions,
                  "candidates": [ops] * len(decisions), "update_rule": "v1"})  # fmt: skip
    store.claim_run(run_id)
    epoch = 0
    while True:
        sample = dist.sample() if not dist.finished else [0] * len(decisions)
        score = 0.3 + 0.01 * epoch
        rec.on_epoch(epoch, {"phase": "search", "round": 0, "sample": [int(s) for s in sample],
                             "train_loss": 0.7 - 0.005 * epoch, "val_loss": 0.72 - 0.005 * epoch,
                             "train_metric": score + 0.02, "val_metric": score, "metric_name": "mean_f1",
                             "wall_time": EPOCH_SECONDS})  # fmt: skip
        if not dist.finished:
            update = dist.tell(sample, score)
            if update is not None:
                rec.on_distribution(update["update"], epoch, update["theta"], update["alive"], {})
        store.heartbeat(run_id)
        if epoch == 3:
            ready_file.write_text(str(run_id))
        epoch += 1
        time.sleep(EPOCH_SECONDS)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
