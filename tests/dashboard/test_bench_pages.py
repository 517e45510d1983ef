"""``automl bench dashboard`` at toy size: the report's structure and every page loading without an
exception. No timing is asserted (the benchmark measures; a shared test machine cannot judge)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dashboard import bench_pages

PAGES = ("Runs: page 1", "Runs: page", "Runs: sorted by result", "Run: DDPNAS", "Run: completed training",
         "Compare: 3 runs", "HPO: 20-trial study", "HPO: live, after a new report")  # fmt: skip
ROW_KEYS = {"name", "path", "query", "widgets", "cold_s", "cold_runs_s", "warm_median_s", "warm_max_s",
            "warm_runs_s", "ratio", "passed", "errors", "drawn", "between", "compile_s"}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One toy run through the command (options, JSON written atomically), read back from disk."""
    from automl.cli import main

    out = tmp_path_factory.mktemp("bench") / "pages.json"
    args = ["bench", "dashboard", "--runs", "30", "--trials", "20", "--epochs", "3", "--reruns", "1",
            "--profile", "--out", str(out)]  # fmt: skip
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), f"automl {' '.join(args)} exited {exc.code}"
    return json.loads(out.read_text())


def test_every_page_loads_without_an_exception(report: dict) -> None:
    rows = report["rows"]
    assert len(rows) == len(PAGES)
    for row, prefix in zip(rows, PAGES, strict=True):
        assert row["name"].startswith(prefix)
        assert row["errors"] == [], (row["name"], row["errors"])
        assert set(row) >= ROW_KEYS
        assert len(row["cold_runs_s"]) == 1 and len(row["warm_runs_s"]) == 1
        assert all(math.isfinite(s) and s > 0 for s in row["cold_runs_s"] + row["warm_runs_s"])
        assert row["ratio"] == pytest.approx(row["warm_median_s"] / report["target_s"])
        assert row["passed"] == (row["warm_median_s"] <= report["target_s"])
    assert report["all_passed"] == all(r["passed"] for r in rows)


def test_the_pages_drew_what_a_big_store_shows(report: dict) -> None:
    drawn = {r["name"].split(" (")[0]: r["drawn"] for r in report["rows"]}
    ddpnas = drawn["Run: DDPNAS search"]
    assert ddpnas["title"].startswith(f"Run #{report['store']['ddpnas_run']}")
    # curves, theta heatmap, pruning curve, sample timeline; the normal and reduce cells
    assert ddpnas["plotly_charts"] >= 4 and ddpnas["graphviz_charts"] == 2
    assert drawn["Run: completed training"]["plotly_charts"] >= 1
    assert drawn["Compare: 3 runs"]["dataframes"] >= 1
    assert drawn["HPO: 20-trial study"]["plotly_charts"] == 1
    assert all(d["dataframes"] == 1 for name, d in drawn.items() if name.startswith("Runs:"))


def test_report_names_the_store_and_the_machine(report: dict) -> None:
    store = report["store"]
    assert store["runs"] == 30 and store["trials"] == 20
    assert store["distributions"] > 0 and store["epochs"] >= 28 * 3 + 600  # bulk + the training
    assert store["trial_params"] == 6 * 20 and store["trial_intermediate_values"] > 20
    assert len(store["compare_runs"]) == 3 and store["file_mb"] > 0
    machine = report["machine"]
    assert machine["nproc"] >= 1 and machine["cpu_model"]
    assert len(machine["load_average"]) == 3 and len(machine["load_average_after"]) == 3
    assert report["target_s"] == 2.0 and report["reruns"] == 1


def test_hpo_page_is_also_timed_by_the_hpo_page_benchmark(report: dict) -> None:
    check = report["hpo_page_check"]  # dashboard.bench_hpo_page.time_hpo_page on the same store
    assert "error" not in check, check
    assert check["cold_s"] > 0 and len(check["warm_runs_s"]) == 1


def test_profile_names_the_dashboard_functions_of_each_page(report: dict) -> None:
    profiles = report["profiles"]
    assert [p["page"] for p in profiles] == [r["name"] for r in report["rows"]]
    for p in profiles:
        assert p["dashboard_cumulative"], p["page"]
        assert all(h["function"].startswith("dashboard/") for h in p["dashboard_cumulative"])
        assert p["own_time"]


def test_table_has_one_row_per_page_and_no_missing_markers(report: dict) -> None:
    title, columns, rows = bench_pages.page_table(report)
    assert "30 runs" in title and columns[0] == "page" and columns[-1] == "target"
    assert [r[0] for r in rows] == [r["name"] for r in report["rows"]]
    assert all(r[-1] in ("pass", "FAIL") for r in rows)
    assert not any(cell in ("None", "nan") for row in rows for cell in row)


def test_unknown_page_and_kept_store_are_refused_before_any_work(cli, tmp_path: Path) -> None:
    res = cli("bench", "dashboard", "--runs", "30", "--trials", "20", "--pages", "retrieval")
    assert res.code == 2 and "--pages" in res.err and "retrieval" in res.err
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "bench.db").write_bytes(b"")
    res = cli("bench", "dashboard", "--runs", "30", "--trials", "20", "--work-dir", str(tmp_path / "kept"))
    assert res.code == 2 and "already exists" in res.err


def test_library_times_the_selected_pages_and_the_live_study_sees_new_reports(tmp_path: Path) -> None:
    select = bench_pages.names_matching(["hpo"], 30, 20)
    report = bench_pages.page_bench(30, 20, epochs=2, reruns=2, select=select, work_dir=tmp_path)
    assert [r["name"] for r in report["rows"]] == ["HPO: 20-trial study", "HPO: live, after a new report"]
    for row in report["rows"]:
        assert row["errors"] == [] and len(row["warm_runs_s"]) == 2 and row["drawn"]["plotly_charts"] == 1
        assert row["warm_max_s"] >= row["warm_median_s"] and row["compile_s"] > 0
    assert report["rows"][1]["between"] == bench_pages.NEW_REPORT and report["profiles"] == []
    db = tmp_path / "bench.db"  # --work-dir keeps the store: one new report per warm rerun of the live row
    after = bench_pages.store_sizes(f"sqlite:///{db}", db)
    assert after["trial_intermediate_values"] == report["store"]["trial_intermediate_values"] + 2
