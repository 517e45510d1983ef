"""Compare: several runs' curves overlaid, their final numbers and the settings that differ.

Runs of different lengths, metrics and noise levels are made comparable here: the x axis can be
the epoch, the wall clock or the share of a search's plan; single-path curves can be smoothed
over their faint raw curve; runs that measure different metrics get one figure each; and the
settings table shows what was changed between the runs (the computations: dashboard.compare_data).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import charts, queries, ui
from dashboard import compare_data as cd

CURVES = ("val_metric", "val_loss", "train_metric", "train_loss")
NUMBER_FORMATS = {
    "best val metric": "%.4f",
    "test metric": "%.4f",
    "params (M)": "%.3f",
    "MFLOPs": "%.1f",
    "latency (ms)": "%.2f",
}


def pick_runs(engine: Engine) -> tuple[list[int], dict[int, str]]:
    """The selected run ids (``?runs=1,2`` preselects) and every choice's label."""
    choices = dict(queries.recent_run_choices(engine))
    raw = str(st.query_params.get("runs", ""))
    requested = [int(x) for x in raw.split(",") if x.strip().isdigit()]
    for rid in requested:
        if rid not in choices and queries.get_run(engine, rid) is not None:
            choices[rid] = f"#{rid}"
    default = [r for r in requested if r in choices] or list(choices)[:3]
    run_ids = st.multiselect(
        "Runs", list(choices), default=default, format_func=lambda i: choices[i], key="cmp_runs"
    )
    return run_ids, choices


def curve_controls(axes: list[str], smoothing: float) -> tuple[str, str, float]:
    """The curve, the x axis and the smoothing weight the user chose."""
    if st.session_state.get("cmp_x", cd.EPOCH) not in axes:  # the plan axis left with its runs
        st.session_state["cmp_x"] = cd.EPOCH
    left, middle, right = st.columns([1, 2, 1])
    key = left.selectbox("Curve", CURVES, key="cmp_metric", format_func=lambda k: k.replace("_", " "))
    axis = middle.radio(
        "x axis",
        axes,
        format_func=cd.X_LABELS.get,
        horizontal=True,
        key="cmp_x",
        help="Wall clock: seconds of the run's recorded epochs, added up from its first epoch. "
        "Share of planned epochs: a search's epoch over the epochs its plan said it would take.",
    )
    weight = right.slider(
        "Smoothing",
        0.0,
        0.95,
        value=smoothing,
        step=0.05,
        key="cmp_smooth",
        help="Exponential moving average (0 = off); the raw curve stays drawn faint beneath. "
        "Searches score one sampled path per epoch, so their raw curves jump.",
    )
    return key, axis or cd.EPOCH, float(weight)


def draw_curves(
    epochs: list[dict[str, Any]],
    labels: dict[int, str],
    metrics: dict[int, str],
    planned: dict[int, int | None],
    choice: tuple[str, str, float],
) -> None:
    """One figure per metric among the runs (a warning first when there are several), and a
    caption naming the runs that have no line on the chosen axis, and why."""
    key, axis, weight = choice
    groups = cd.metric_groups(metrics)
    note = cd.mixed_metrics_note(groups, labels)
    if note:
        st.warning(note, icon=":material/warning:")
    per_run = cd.by_run(epochs)
    for i, (name, ids) in enumerate(groups.items()):
        rows = [e for rid in ids for e in per_run.get(rid, [])]
        if len(groups) > 1:
            st.markdown(f"**{name}**: {', '.join(labels[r] for r in ids)}")
        missing = {rid: cd.why_not_drawn(per_run.get(rid, []), key, axis, planned.get(rid)) for rid in ids}
        missing = {rid: why for rid, why in missing.items() if why}
        if len(missing) < len(ids):
            fig = charts.compare_figure(
                rows,
                key,
                labels,
                x=axis,
                smoothing=weight,
                planned=planned,
                metric_name=name if key.endswith("_metric") and name != cd.UNKNOWN_METRIC else None,
            )
            st.plotly_chart(fig, key="cmp_curves" if i == 0 else f"cmp_curves_{i}")
        if missing:
            st.caption("Not drawn: " + "; ".join(f"{labels[r]} ({why})" for r, why in missing.items()))


def final_numbers(
    engine: Engine, runs: list[dict[str, Any]], details: dict[int, dict[str, Any]], labels: dict[int, str]
) -> None:
    """The runs' results side by side, each with its metric's name and split; gaps print ``-``
    (:func:`dashboard.ui.filled`: the grid would print a faded ``None``)."""
    archs = queries.final_architectures(engine, [r["id"] for r in runs])
    table = []
    for r in runs:
        row = cd.final_row(r, details[r["id"]].get("summary") or {}, archs.get(r["id"], {}), labels[r["id"]])
        row["wall time"] = ui.fmt_seconds(row["wall time"])
        table.append(row)
    frame = ui.filled(pd.DataFrame(table))
    formats = {
        name: st.column_config.NumberColumn(format=fmt)
        for name, fmt in NUMBER_FORMATS.items()
        if name in frame and pd.api.types.is_numeric_dtype(frame[name])  # a column with gaps is text
    }
    st.dataframe(frame, hide_index=True, key="cmp_table", column_config=formats)


def settings_diff(details: dict[int, dict[str, Any]]) -> None:
    """The run fields and resolved config keys that differ between the runs (all with the toggle)."""
    st.subheader("Settings")
    show_all = st.toggle("Show all settings", key="cmp_all_settings")
    rows = cd.diff_rows(details, cd.column_names(details), show_all=show_all)
    if len(details) < 2 and not show_all:
        st.info("Pick a second run to see which settings differ.")
    elif not rows:
        st.success("The selected runs have the same settings.")
    else:
        if not show_all:
            st.caption(f"{len(rows)} settings differ (run fields first, then the resolved config).")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_diff")


st.title("Compare runs")
engine = ui.engine_or_none()
if engine is None or not ui.require_runs(engine):
    st.stop()
run_ids, choices = pick_runs(engine)
if not run_ids:
    st.info("Pick at least one run.")
    st.stop()

runs = queries.runs_by_id(engine, run_ids)
details = {rid: queries.get_run(engine, rid) or {"id": rid} for rid in run_ids}
labels = {rid: choices.get(rid, f"#{rid}") for rid in run_ids}
planned = {rid: cd.planned_epochs(details[rid]) for rid in run_ids}
heads = {int(r["id"]): r.get("headline") for r in runs}
metrics = {rid: cd.metric_label(heads.get(rid)) for rid in run_ids}

choice = curve_controls(cd.x_axes(planned), cd.default_smoothing(list(details.values())))
epochs = queries.epochs_for_runs(engine, run_ids)
if epochs:
    draw_curves(epochs, labels, metrics, planned, choice)
else:
    st.info("None of these runs has recorded an epoch yet.")

st.subheader("Final numbers")
final_numbers(engine, runs, details, labels)
settings_diff(details)
