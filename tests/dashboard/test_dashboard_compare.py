"""The Compare page: x axes, smoothing, metric groups and the settings diff.

The pure functions of :mod:`dashboard.compare_data` are checked against hand-computed values; the
page is driven through Streamlit's AppTest on the seeded store, comparing the DDPNAS run (FER,
accuracy, 43 planned epochs) with the running random-search run (AU, mean F1, 6 of 50 epochs).
"""

from __future__ import annotations

import json
import math

import pytest
from streamlit.testing.v1 import AppTest

from automl.store.run_views import Headline
from dashboard import charts
from dashboard import compare_data as cd

APP = "../../dashboard/app.py"  # AppTest resolves it relative to this file


# -- smoothing -------------------------------------------------------------------------------
def test_ema_skips_gaps_and_debiases() -> None:
    # w = 0.5: averages 0.5, 1.75, 3.375 after 1, 2, 3 values; debiased by 1 - 0.5**n.
    got = cd.ema([1.0, None, 3.0, math.nan, 5.0], 0.5)
    assert got[1] is None and got[3] is None
    assert got[0] == pytest.approx(1.0)
    assert got[2] == pytest.approx(1.75 / 0.75)
    assert got[4] == pytest.approx(3.375 / 0.875)


def test_ema_off_returns_the_values_and_rejects_a_full_weight() -> None:
    assert cd.ema([0.2, None, 0.4], 0.0) == [0.2, None, 0.4]
    with pytest.raises(ValueError, match="smoothing weight"):
        cd.ema([1.0], 1.0)


# -- x axes ----------------------------------------------------------------------------------
def test_wall_clock_is_cumulative_and_an_unknown_duration_adds_nothing() -> None:
    assert cd.elapsed_seconds([1.5, 2.0, None, -1.0, 0.5]) == [1.5, 3.5, None, None, 4.0]


def test_x_values_on_each_axis() -> None:
    epochs = [{"epoch": e, "wall_time": 2.0} for e in range(4)]
    assert cd.x_values(epochs, cd.EPOCH) == [0.0, 1.0, 2.0, 3.0]
    assert cd.x_values(epochs, cd.WALL) == [2.0, 4.0, 6.0, 8.0]
    assert cd.x_values(epochs, cd.FRACTION, planned=8) == [0.125, 0.25, 0.375, 0.5]
    assert cd.x_values(epochs, cd.FRACTION, planned=None) == [None] * 4
    with pytest.raises(ValueError, match="unknown x axis"):
        cd.x_values(epochs, "steps")


def test_run_curve_smooths_before_dropping_gaps() -> None:
    epochs = [
        {"epoch": 2, "val_metric": 5.0, "wall_time": 1.0},
        {"epoch": 0, "val_metric": 1.0, "wall_time": 1.0},
        {"epoch": 1, "val_metric": None, "wall_time": 1.0},
    ]
    curve = cd.run_curve(7, epochs, "val_metric", cd.WALL, smoothing=0.5)
    assert curve.epoch == [0, 2] and curve.x == [1.0, 3.0] and curve.raw == [1.0, 5.0]
    assert curve.smooth == pytest.approx([1.0, 2.75 / 0.75])  # the gap leaves the average as it was


def test_planned_epochs_reads_the_search_plan_only() -> None:
    assert cd.planned_epochs({"kind": "search", "summary": {"plan": {"search_epochs": 35}}}) == 35
    assert cd.planned_epochs({"kind": "search", "summary": {"plan": {"total_epochs": 17.0}}}) == 17
    assert (
        cd.planned_epochs({"kind": "search", "summary": {"plan": {"epochs": True}, "search_epochs": 9}}) == 9
    )
    assert cd.planned_epochs({"kind": "search", "summary": None}) is None
    assert cd.planned_epochs({"kind": "train", "summary": {"plan": {"epochs": 15}}}) is None
    assert cd.x_axes({1: None, 2: 35}) == [cd.EPOCH, cd.WALL, cd.FRACTION]
    assert cd.x_axes({1: None}) == [cd.EPOCH, cd.WALL]


def test_time_unit_keeps_the_axis_readable() -> None:
    assert cd.time_unit(None) == ("s", 1.0)
    assert cd.time_unit(599) == ("s", 1.0)
    assert cd.time_unit(3600) == ("min", 60.0)
    assert cd.time_unit(5 * 3600) == ("h", 3600.0)


# -- metrics ---------------------------------------------------------------------------------
def test_metric_groups_and_the_mixed_metrics_note() -> None:
    names = {
        1: cd.metric_label(Headline("test", "accuracy", 0.6)),
        2: cd.metric_label(Headline("val", "mean_f1", 0.4)),
        3: cd.metric_label(Headline("val", "accuracy", None)),
    }
    groups = cd.metric_groups(names)
    assert groups == {"accuracy": [1, 3], "mean F1": [2]}
    note = cd.mixed_metrics_note(groups, {1: "#1", 2: "#2", 3: "#3"})
    assert note is not None and "accuracy: #1, #3" in note and "mean F1: #2" in note
    assert cd.mixed_metrics_note({"accuracy": [1, 3]}, {}) is None
    assert cd.metric_label(None) == cd.UNKNOWN_METRIC
    assert cd.headline_text(Headline("test", "accuracy", 0.63214)) == "test accuracy 0.6321"
    assert cd.headline_text(Headline(None, "accuracy", None)) == "-"


# -- settings diff ---------------------------------------------------------------------------
def test_flatten_makes_dotted_keys_with_lists_and_empty_dicts_as_leaves() -> None:
    config = {"search": {"strategy": "ddpnas", "seed": 0}, "ddpnas": {"skip_caps": [2, 3]}, "extra": {}}
    assert cd.flatten(config) == {
        "search.strategy": "ddpnas",
        "search.seed": 0,
        "ddpnas.skip_caps": [2, 3],
        "extra": {},
    }


def test_diff_rows_keep_only_what_differs_unless_asked() -> None:
    runs = {
        1: {"kind": "search", "strategy": "ddpnas", "space": "face", "task": "fer", "data": "synth:fer",
            "seed": 0, "config": {"optim": {"lr": 0.1, "grad_clip": None}, "ddpnas": {"skip_caps": [2, 3]}}},
        2: {"kind": "search", "strategy": "darts", "space": "face", "task": "fer", "data": "synth:fer",
            "seed": 0, "config": {"optim": {"lr": 0.025}, "darts": {"epochs": 17}}},
    }  # fmt: skip
    columns = cd.column_names(runs)
    assert columns == {1: "#1 ddpnas", 2: "#2 darts"}
    rows = cd.diff_rows(runs, columns)
    assert [r["setting"] for r in rows] == ["strategy", "darts.epochs", "ddpnas.skip_caps", "optim.lr"]
    by_key = {r["setting"]: r for r in rows}
    assert by_key["optim.lr"] == {"setting": "optim.lr", "#1 ddpnas": "0.1", "#2 darts": "0.025"}
    assert (
        by_key["ddpnas.skip_caps"]["#1 ddpnas"] == "[2, 3]" and by_key["ddpnas.skip_caps"]["#2 darts"] == "-"
    )
    everything = cd.diff_rows(runs, columns, show_all=True)
    assert [r["setting"] for r in everything][:6] == list(cd.RUN_FIELDS)
    # optim.grad_clip: null in one config, absent in the other -- the same default, so no difference
    assert "optim.grad_clip" in {r["setting"] for r in everything} - {r["setting"] for r in rows}
    cells = [v for r in everything for v in r.values()]
    assert not {"None", "nan", "null"} & set(cells)


def test_cells_never_print_none_or_nan() -> None:
    assert [cd.cell(v) for v in (None, math.nan, True, 1e-4, "x", {"b": 1, "a": 2})] == [
        "-", "-", "true", "0.0001", "x", '{"a": 2, "b": 1}',
    ]  # fmt: skip


# -- the figure ------------------------------------------------------------------------------
ROWS = [
    {"run_id": 1, "epoch": e, "val_metric": 0.1 * e if e != 2 else None, "wall_time": 400.0} for e in range(5)
] + [{"run_id": 2, "epoch": e, "val_metric": 0.5, "wall_time": 1.0} for e in range(3)]


def test_compare_figure_draws_raw_faint_under_the_smoothed_curve() -> None:
    fig = charts.compare_figure(ROWS, "val_metric", {2: "b", 1: "a"}, smoothing=0.6, metric_name="accuracy")
    raw = [t for t in fig.data if t.meta == "raw"]
    smooth = [t for t in fig.data if t.meta == "smoothed"]
    assert [t.name for t in smooth] == ["b", "a"] and len(raw) == 2
    assert all(t.opacity < 1 and t.showlegend is False for t in raw)
    assert list(smooth[1].x) == [0, 1, 3, 4]  # epoch 2 has no value
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.title.text == "val metric (accuracy)"
    # the same run keeps its colour whatever else the figure holds
    alone = charts.compare_figure(ROWS[:5], "val_metric", {2: "b", 1: "a"})
    assert alone.data[0].line.color == smooth[1].line.color
    assert len(alone.data) == 1  # no smoothing: no raw trace


def test_compare_figure_on_wall_clock_and_plan_axes() -> None:
    wall = charts.compare_figure(ROWS, "val_metric", {1: "a", 2: "b"}, x=cd.WALL)
    assert "min" in wall.layout.xaxis.title.text  # 2000 s on the longest run
    assert list(wall.data[0].x) == pytest.approx([400 / 60, 800 / 60, 1600 / 60, 2000 / 60])
    share = charts.compare_figure(ROWS, "val_metric", {1: "a", 2: "b"}, x=cd.FRACTION, planned={1: 5})
    assert [t.name for t in share.data] == ["a"]  # run 2 has no plan
    assert list(share.data[0].x)[-1] == pytest.approx(1.0) and share.layout.xaxis.tickformat == ".0%"


# -- the page --------------------------------------------------------------------------------
@pytest.fixture
def compare_page(seeded, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AUTOML_DB", seeded.url)
    monkeypatch.delenv("AUTOML_OPTUNA_STORAGE", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["runs"] = f"{seeded.ddpnas_run},{seeded.running_run}"
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _frame(at: AppTest, column: str):
    """The table with this column (a non-selectable st.dataframe carries no key in AppTest)."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _no_none(frame) -> None:
    text = {str(v) for v in frame.to_numpy().ravel()}
    assert not {"None", "nan", "NaN", "<NA>"} & text, text


def test_compare_page_separates_metrics_and_diffs_settings(compare_page, seeded) -> None:
    at = compare_page
    assert at.multiselect(key="cmp_runs").value == [seeded.ddpnas_run, seeded.running_run]
    (note,) = [w.value for w in at.warning]
    assert "different metrics" in note and "accuracy" in note and "mean F1" in note
    figures = _figures(at)
    assert len(figures) == 2  # one per metric
    assert [f["layout"]["yaxis"]["title"]["text"] for f in figures] == [
        "val metric (accuracy)",
        "val metric (mean F1)",
    ]
    table = _frame(at, "headline")
    assert list(table["metric"]) == ["accuracy", "mean F1"]
    assert list(table["headline"]) == ["test accuracy 0.6321", "val mean F1 0.3800"]
    _no_none(table)

    diff = _frame(at, "setting")
    strategy = diff.set_index("setting").loc["strategy"]
    assert list(strategy) == ["ddpnas", "random"]
    assert {"task", "data", "seed", "preset"} <= set(diff["setting"]) and "space" not in set(diff["setting"])
    _no_none(diff)
    at.toggle(key="cmp_all_settings").set_value(True).run()
    assert {"kind", "space"} <= set(_frame(at, "setting")["setting"])


def test_compare_page_x_axis_and_smoothing(compare_page, seeded) -> None:
    at = compare_page
    assert at.radio(key="cmp_x").options == ["epoch", "wall clock", "share of planned epochs"]
    assert at.slider(key="cmp_smooth").value == pytest.approx(cd.SEARCH_SMOOTHING)
    first = _figures(at)[0]
    xaxis = first["layout"]["xaxis"]
    assert xaxis.get("dtick") == 1 or xaxis.get("tickformat") == "d"  # never a tick at epoch 2.5
    assert [t.get("meta") for t in first["data"]] == ["raw", "smoothed"]

    at.radio(key="cmp_x").set_value(cd.WALL).run()
    ddpnas, running = _figures(at)
    assert "wall clock" in ddpnas["layout"]["xaxis"]["title"]["text"]
    assert ddpnas["data"][0]["x"][:3] == pytest.approx([1.5, 3.0, 4.5])  # 8 warm-up epochs of 1.5 s
    assert running["data"][0]["x"] == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0, 12.0])

    at.radio(key="cmp_x").set_value(cd.FRACTION).run()
    ddpnas, running = _figures(at)
    assert ddpnas["data"][0]["x"][-1] == pytest.approx(1.0)  # the plan's epochs all ran
    assert running["data"][0]["x"][-1] == pytest.approx(6 / 50)  # 6 of the 50 planned

    at.slider(key="cmp_smooth").set_value(0.0).run()
    assert not at.exception
    assert all(t.get("meta") != "raw" for f in _figures(at) for t in f["data"])
