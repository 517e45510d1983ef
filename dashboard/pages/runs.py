"""Runs: every search, training and HPO run, filtered, sorted and paginated in SQL."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from automl.learning_checks import signal_flag
from dashboard import queries, ui

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
total = queries.count_runs(engine, flt)
pages = max(1, math.ceil(total / page_size))
page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="page"))
rows = queries.list_runs(
    engine, flt, sort=sort, descending=descending, limit=page_size, offset=(page - 1) * page_size
)
st.caption(f"{total} run(s) match; showing {len(rows)} on page {page} of {pages}.")

if not rows:
    st.info("No run matches these filters.")
    st.stop()

table = pd.DataFrame(
    {
        "id": [r["id"] for r in rows],
        "open": [f"run?run={r['id']}" for r in rows],
        "kind": [r["kind"] for r in rows],
        "state": [r["shown_state"] for r in rows],  # "running (dead)" once its process is gone
        "space": [r["space"] for r in rows],
        "task": [r["task"] for r in rows],
        "strategy": [r["strategy"] for r in rows],
        "data": [r["data"] for r in rows],
        "best val metric": [r["best_val_metric"] for r in rows],
        "signal": [signal_flag(r.get("signal")) for r in rows],
        "epochs": [r["epochs"] for r in rows],
        "wall time": [ui.fmt_seconds(r["wall_s"]) for r in rows],
        "host": [r["host"] for r in rows],
        "created": [r["created_at"] for r in rows],
    }
)
event = st.dataframe(
    table,
    hide_index=True,
    key="runs_table",
    on_select="rerun",
    selection_mode="multi-row",
    column_config={
        "open": st.column_config.LinkColumn("open", display_text="open"),
        "best val metric": st.column_config.NumberColumn(format="%.4f"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    },
)
selected = [int(table.iloc[i]["id"]) for i in (event.selection.rows if event is not None else [])]
if len(selected) == 1:
    st.page_link(
        "pages/run.py",
        label=f"Open run #{selected[0]}",
        icon=":material/monitoring:",
        query_params={"run": str(selected[0])},
    )
elif len(selected) > 1:
    st.page_link(
        "pages/compare.py",
        label=f"Compare runs {', '.join(f'#{i}' for i in selected)}",
        icon=":material/compare_arrows:",
        query_params={"runs": ",".join(map(str, selected))},
    )
else:
    st.caption("Select one row to open the run, several to compare them.")
