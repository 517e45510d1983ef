"""The dashboard's SQL: pagination, sorting, filters, read-only behaviour; charts and DOT builders."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert

from automl.store import open_store
from automl.store.models import Epoch, Run
from automl.store.repository import Store
from dashboard import charts, genotype_graph, queries


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory) -> str:
    """120 runs (some without metrics or end times) and their epochs, bulk-inserted."""
    url = f"sqlite:///{tmp_path_factory.mktemp('q') / 'automl.db'}"
    store = open_store(url)
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1)
    runs, epochs = [], []
    for i in range(1, 121):
        state = ("completed", "running", "failed")[i % 3]
        runs.append(dict(
            id=i, kind="search" if i % 4 else "train", state=state, space=("darts", "mobilenet")[i % 2],
            task=("fer", "au")[i % 5 == 0], strategy=("ddpnas", "darts", "random")[i % 3], data=f"synth:{i}",
            host="h", config={}, summary={"best_val_metric": float(rng.random())} if i % 7 else {},
            created_at=t0 + timedelta(seconds=i), started_at=t0 + timedelta(seconds=i),
            finished_at=None if state == "running" else t0 + timedelta(seconds=i + int(rng.integers(5, 500))),
            updated_at=t0,
        ))  # fmt: skip
        for e in range(i % 6):
            epochs.append(dict(run_id=i, epoch=e, val_metric=float(rng.random()), wall_time=1.0, extra={}))
    with store.engine.begin() as conn:
        conn.execute(insert(Run), runs)
        conn.execute(insert(Epoch), epochs)
    store.close()
    return url


@pytest.fixture(scope="module")
def engine(many_runs):
    store = Store(many_runs, readonly=True)
    yield store.engine
    store.close()


@pytest.mark.parametrize("sort", queries.SORTS)
@pytest.mark.parametrize("descending", [True, False])
def test_pages_partition_the_runs_in_sort_order(engine, sort: str, descending: bool) -> None:
    flt = queries.RunFilter()
    seen: list[dict] = []
    for offset in range(0, 120, 25):
        seen += queries.list_runs(engine, flt, sort=sort, descending=descending, limit=25, offset=offset)
    assert sorted(r["id"] for r in seen) == list(range(1, 121))  # every run exactly once
    column = {"created": "created_at", "best val metric": "best_val_metric", "wall time": "wall_s"}.get(
        sort, sort
    )
    values = [r["headline"].value if sort == "result" else r[column] for r in seen]
    known = [v for v in values if v is not None]
    assert values[: len(known)] == known  # NULLs last
    if sort != "wall time":  # running runs' wall time grows while the query runs
        assert known == sorted(known, reverse=descending)


def test_aggregates_and_filters(engine) -> None:
    rows = {r["id"]: r for r in queries.list_runs(engine, limit=200)}
    assert rows[5]["epochs"] == 5 and rows[6]["epochs"] == 0
    # no summary value (i % 7 == 0): falls back to the best epoch's val metric, or None without epochs
    assert rows[7]["best_val_metric"] is not None and rows[42]["best_val_metric"] is None
    assert 5 <= rows[3]["wall_s"] <= 500  # finished_at - started_at, in seconds
    flt = queries.RunFilter(states=("failed",), spaces=("darts",))
    got = queries.list_runs(engine, flt, limit=200)
    assert got and all(r["state"] == "failed" and r["space"] == "darts" for r in got)
    assert queries.count_runs(engine, flt) == len(got)
    assert queries.count_runs(engine, queries.RunFilter(data_contains="synth:11")) == 11  # 11 and 110..119
    assert queries.count_runs(engine, queries.RunFilter(kinds=("train",))) == 30
    opts = queries.filter_options(engine)
    assert opts["state"] == ["completed", "failed", "running"] and opts["kind"] == ["search", "train"]


def test_data_filter_matches_substrings(engine) -> None:
    got = {r["id"] for r in queries.list_runs(engine, queries.RunFilter(data_contains="synth:11"), limit=200)}
    assert got == {11, *range(110, 120)}


def test_dashboard_reads_never_change_the_database(many_runs) -> None:
    path = many_runs.removeprefix("sqlite:///")

    def dump() -> list[str]:
        with sqlite3.connect(path) as conn:
            return list(conn.iterdump())

    before = dump()
    store = Store(many_runs, readonly=True)
    queries.list_runs(store.engine, sort="best val metric")
    queries.get_run(store.engine, 1)
    queries.run_epochs(store.engine, 1)
    queries.optuna_studies(store.engine)
    store.close()
    assert dump() == before


def test_plan_axes_and_heatmap_mark_pruned_cells() -> None:
    plan = {"decisions": ["a", "b"], "candidates": [["x", "y", "z"], ["x", "y", "z"]]}
    rows, cols = charts.plan_axes(plan, 2, 3)
    assert rows == ["a", "b"] and cols == ["x", "y", "z"]
    assert charts.plan_axes(None, 2, 3) == (["d0", "d1"], ["c0", "c1", "c2"])
    ragged = {"decisions": ["l0", "l1"], "candidates": [["k3", "k5", "k7"], ["k3", "k5"]]}
    assert charts.plan_axes(ragged, 2, 3)[1] == ["c0", "c1", "c2"]
    assert charts.cell_names(ragged, 2, 3)[1] == ["k3", "k5", "-"]
    alive = [[True, True, False], [False, True, False]]
    fig = charts.theta_heatmap([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]], alive, rows, cols)
    heat, pruned = fig.data
    assert np.isnan(np.asarray(heat.z, dtype=float)[0, 2]) and pruned.name == "pruned (3)"
    assert list(zip(pruned.x, pruned.y, strict=True)) == [("z", "a"), ("x", "b"), ("z", "b")]


def test_sample_timeline_and_curves() -> None:
    epochs = [
        {"epoch": e, "sample": [e % 3, 2], "train_loss": 1.0 / (e + 1), "val_loss": None,
         "val_metric": 0.1 * e, "phase": "warmup" if e < 2 else "search"}
        for e in range(5)
    ]  # fmt: skip
    fig = charts.sample_timeline(epochs, ["a", "b"], ["x", "y", "z"])
    z = np.asarray(fig.data[0].z) - 0.5
    assert z.shape == (2, 5) and z[0].tolist() == [0, 1, 2, 0, 1] and set(z[1]) == {2}
    assert charts.sample_timeline([{"epoch": 0, "sample": None}], ["a"], ["x"]) is None
    curves = charts.curves_figure(epochs, metric_label="accuracy")
    assert {t.name for t in curves.data} == {"train loss", "val accuracy"}


def test_darts_cell_dot_has_every_edge() -> None:
    genotype = {
        "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_3x3", 2], ["max_pool_3x3", 0],
                   ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["dil_conv_5x5", 4], ["sep_conv_3x3", 0]],
        "normal_concat": [2, 3, 4, 5], "reduce": [["max_pool_3x3", 0]] * 8, "reduce_concat": [2, 3, 4, 5],
    }  # fmt: skip
    dots = genotype_graph.genotype_dots(genotype)
    assert set(dots) == {"normal", "reduce"}
    normal = dots["normal"]
    assert normal.count("->") == 8 + 4  # 2 inputs per node + concat into c_{k}
    assert '"c_{k-2}" -> "0" [label="sep_conv_3x3"' in normal and '"1" -> "2" [label="avg_pool_3x3"' in normal
    chain = genotype_graph.genotype_dots({"space": "mobilenet", "ops": ["k3_e3", "k5_e6"]},
                                         {"decisions": ["layer0", "layer1"]})  # fmt: skip
    assert list(chain) == ["mobilenet"] and 'label="layer1\\nk5_e6"' in chain["mobilenet"]
    assert genotype_graph.genotype_dots({"space": "other", "x": 1}) == {}
    nni = genotype_graph.genotype_dots({"space": "nni:m:S", "arch": {"block1": "pool", "skip": [1, 2]}})
    assert list(nni) == ["nni:m:S"] and 'label="skip\\n1+2"' in nni["nni:m:S"]


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    from dashboard.settings import load_settings

    settings = load_settings(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--index", "a", "--index", "b"])
    assert settings.index_dirs == (Path("a"), Path("b")) and settings.optuna_storage.endswith("x.db")
    assert not (tmp_path / "x.db").exists()
