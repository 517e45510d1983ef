"""Compare: several runs' curves overlaid and their final numbers side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui

st.title("Compare runs")
engine = ui.engine_or_none()
if engine is None or not ui.require_runs(engine):
    st.stop()

choices = dict(queries.recent_run_choices(engine))
requested = [int(x) for x in str(st.query_params.get("runs", "")).split(",") if x.strip().isdigit()]
for rid in requested:
    if rid not in choices and queries.get_run(engine, rid) is not None:
        choices[rid] = f"#{rid}"
default = [r for r in requested if r in choices] or list(choices)[:3]
run_ids = st.multiselect(
    "Runs", list(choices), default=default, format_func=lambda i: choices[i], key="cmp_runs"
)
if not run_ids:
    st.info("Pick at least one run.")
    st.stop()

metric = st.selectbox(
    "Curve",
    ("val_metric", "val_loss", "train_metric", "train_loss"),
    key="cmp_metric",
    format_func=lambda k: k.replace("_", " "),
)
epochs = queries.epochs_for_runs(engine, run_ids)
labels = {rid: choices.get(rid, f"#{rid}") for rid in run_ids}
if epochs:
    st.plotly_chart(charts.compare_figure(epochs, metric, labels), key="cmp_curves")
else:
    st.info("None of these runs has recorded an epoch yet.")

st.subheader("Final numbers")
runs = queries.runs_by_id(engine, run_ids)
archs = queries.final_architectures(engine, run_ids)
details = {rid: queries.get_run(engine, rid) or {} for rid in run_ids}
table = []
for r in runs:
    summary = details[r["id"]].get("summary") or {}
    arch = archs.get(r["id"], {})
    table.append(
        {
            "run": labels.get(r["id"], f"#{r['id']}"),
            "state": r["state"],
            "strategy": r["strategy"],
            "space": r["space"],
            "task": r["task"],
            "best val metric": r["best_val_metric"],
            "test metric": summary.get("test_metric"),
            "epochs": r["epochs"],
            "wall time": ui.fmt_seconds(r["wall_s"]),
            "params (M)": arch["params"] / 1e6 if arch.get("params") is not None else None,
            "MFLOPs": arch.get("mflops"),
            "latency (ms)": arch.get("latency_ms"),
            "genotype": (arch.get("genotype_hash") or "")[:12],
        }
    )
st.dataframe(
    pd.DataFrame(table),
    hide_index=True,
    key="cmp_table",
    column_config={
        "best val metric": st.column_config.NumberColumn(format="%.4f"),
        "params (M)": st.column_config.NumberColumn(format="%.3f"),
    },
)
