"""Several processes appending to one SQLite file lose nothing (WAL + BEGIN IMMEDIATE)."""

import multiprocessing as mp

from automl.store import open_store

EPOCHS_PER_WRITER = 40


def _writer(url: str, run_id: int, offset: int) -> None:
    store = open_store(url)
    for i in range(EPOCHS_PER_WRITER):
        store.record_epoch(run_id, offset + i, {"val_metric": i / EPOCHS_PER_WRITER, "writer": offset})
        store.set_summary(run_id, {f"writer_{offset}": i})


def test_four_processes_append_epochs_without_loss(any_db_url):
    db_url = any_db_url
    store = open_store(db_url)
    run_id = store.create_run(kind="search")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db_url, run_id, k * 1000)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    epochs = store.epochs(run_id)
    assert len(epochs) == 4 * EPOCHS_PER_WRITER
    assert sorted(e["epoch"] for e in epochs) == sorted(
        k * 1000 + i for k in range(4) for i in range(EPOCHS_PER_WRITER)
    )
    summary = store.get_run(run_id)["summary"]
    assert all(summary[f"writer_{k * 1000}"] == EPOCHS_PER_WRITER - 1 for k in range(4))
