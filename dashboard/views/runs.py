"""Runs: every search, training and HPO run, filtered, sorted and paginated in SQL."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from automl.learning_checks import signal_flag
from dashboard import queries, ui
from dashboard.settings import LIVE_REFRESH_SECONDS

st.title("Runs")
engine = ui.engine_or_none()
if engine is None or not ui.require_runs(engine):
    st.stop()

options = queries.filter_options(engine)
with st.expander("Filters and sorting", expanded=True):
    c1, c2, c3, c4, c5 = st.columns(5)
    kinds = c1.multiselect("Kind", options["kind"], key="f_kind")
    states = c2.multiselect("State", options["state"], key="f_state")
    spaces = c3.multiselect("Space", options["space"], key="f_space")
    tasks = c4.multiselect("Task", options["task"], key="f_task")
    strategies = c5.multiselect("Strategy", options["strategy"], key="f_strategy")
    d1, d2, d3, d4 = st.columns([2, 1, 1, 1])
    data_contains = d1.text_input("Data contains", key="f_data", placeholder="e.g. synth:fer")
    sort = d2.selectbox("Sort by", queries.SORTS, key="sort")
    descending = d3.toggle("Descending", value=True, key="desc")
    page_size = d4.selectbox("Rows per page", (25, 50, 100, 200), index=1, key="page_size")

flt = queries.RunFilter(
    kinds=tuple(kinds),
    states=tuple(states),
    spaces=tuple(spaces),
    tasks=tuple(tasks),
    strategies=tuple(strategies),
    data_contains=data_contains,
)
live_runs = queries.count_runs(engine, queries.RunFilter(states=("created", "running")))
auto = st.toggle(
    "Auto-refresh",
    value=live_runs > 0,
    key="runs_auto",
    help=f"Re-read the store every {LIVE_REFRESH_SECONDS:g} s (on by default while a run is going).",
)


@st.fragment(run_every=LIVE_REFRESH_SECONDS if auto else None)
def runs_table() -> None:
    """The page of runs; alone re-executed every few seconds with Auto-refresh on, so new runs,
    progress and states appear without a reload (the filters above keep their values)."""
    total = queries.count_runs(engine, flt)
    pages = max(1, math.ceil(total / page_size))
    page = int(
        st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="page")
    )
    rows = queries.list_runs(
        engine, flt, sort=sort, descending=descending, limit=page_size, offset=(page - 1) * page_size
    )
    st.caption(f"{total} run(s) match; showing {len(rows)} on page {page} of {pages}.")
    if not rows:
        st.info("No run matches these filters.")
        return
    table = ui.filled(runs_frame(rows), keep=("progress",))
    event = st.dataframe(
        table,
        hide_index=True,
        key="runs_table",
        on_select="rerun",
        selection_mode="multi-row",
        column_config={
            "open": st.column_config.LinkColumn("open", display_text="open"),
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0.0, max_value=1.0, format="percent",
                help="Epochs (trials for HPO) recorded of those the run planned.",
            ),
            "result": st.column_config.TextColumn(
                help="A training's test metric; a search's best validation metric (4 significant digits)."
            ),
            "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        },
    )  # fmt: skip
    selected = [int(table.iloc[i]["id"]) for i in (event.selection.rows if event is not None else [])]
    if len(selected) == 1:
        st.page_link(
            "views/run.py",
            label=f"Open run #{selected[0]}",
            icon=":material/monitoring:",
            query_params={"run": str(selected[0])},
        )
    elif len(selected) > 1:
        st.page_link(
            "views/compare.py",
            label=f"Compare runs {', '.join(f'#{i}' for i in selected)}",
            icon=":material/compare_arrows:",
            query_params={"runs": ",".join(map(str, selected))},
        )
    else:
        st.caption("Select one row to open the run, several to compare them.")


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per run: its result with the metric's name and split (``test accuracy``,
    ``val mean_f1``: AU and FER runs never share an unnamed column), progress and ETA."""
    return pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "open": [f"run?run={r['id']}" for r in rows],
            "kind": [r["kind"] for r in rows],
            "state": [r["shown_state"] for r in rows],  # "running (dead)" once its process is gone
            "progress": [r["progress"].fraction for r in rows],
            "ETA": [ui.fmt_seconds(r["progress"].eta_s) for r in rows],
            "space": [r["space"] for r in rows],
            "task": [r["task"] for r in rows],
            "strategy": [r["strategy"] for r in rows],
            "data": [r["data"] for r in rows],
            "metric": [r["headline"].label(short=False) for r in rows],
            "result": [ui.fmt_number(r["headline"].value) for r in rows],
            "signal": [signal_flag(r.get("signal")) for r in rows],
            "epochs": [r["epochs"] for r in rows],
            "wall time": [ui.fmt_seconds(r["wall_s"]) for r in rows],
            "host": [r["host"] for r in rows],
            "created": [r["created_at"] for r in rows],
        }
    )


runs_table()
