"""Plotly figures of the dashboard: curves, the DDPNAS distribution, the sampled architectures.

Pure functions from plain lists/dicts to ``go.Figure`` so they are testable without Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly + qualitative.D3


# -- axis labels from the run's plan -----------------------------------------------------------
def plan_axes(plan: dict[str, Any] | None, n_rows: int, n_cols: int) -> tuple[list[str], list[str]]:
    """Decision names (rows) and column labels for a (decisions x candidates) matrix.

    The search writes its plan (``summary["plan"]``) with ``decisions`` (names) and ``candidates``
    (one list per decision); ``{"name", "candidates"}`` dicts or ``[name, candidates]`` pairs are
    read too. Columns are named by the candidates when every decision has the same list (DARTS),
    else ``c0..`` (each row's own names are in :func:`cell_names`). Missing or mismatched plans
    fall back to ``d0..``.
    """
    names: list[str] = []
    for item in (plan or {}).get("decisions") or []:
        if isinstance(item, dict):
            names.append(str(item.get("name", len(names))))
        elif isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], list | tuple):
            names.append(str(item[0]))
        else:
            names.append(str(item))
    if len(names) != n_rows:
        names = [f"d{i}" for i in range(n_rows)]
    rows = plan_candidates(plan)
    same = bool(rows) and all(r == rows[0] for r in rows) and len(rows[0]) >= n_cols
    columns = rows[0][:n_cols] if same else [f"c{j}" for j in range(n_cols)]
    return names, columns


def cell_names(plan: dict[str, Any] | None, n_rows: int, n_cols: int) -> list[list[str]]:
    """The candidate name of every cell (``-`` for padding of shorter rows)."""
    rows = plan_candidates(plan)
    if len(rows) != n_rows:
        _, columns = plan_axes(plan, n_rows, n_cols)
        return [list(columns) for _ in range(n_rows)]
    return [[r[j] if j < len(r) else "-" for j in range(n_cols)] for r in rows]


def plan_candidates(plan: dict[str, Any] | None) -> list[list[str]]:
    """Per decision its candidate names (rows may differ in length, e.g. MobileNet layers)."""
    plan = plan or {}
    cands = plan.get("candidates")
    if isinstance(cands, list) and cands and all(isinstance(c, list) for c in cands):
        return [[str(x) for x in c] for c in cands]
    out: list[list[str]] = []
    for item in plan.get("decisions") or []:
        if isinstance(item, dict):
            out.append([str(c) for c in item.get("candidates", [])])
        elif isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], list | tuple):
            out.append([str(c) for c in item[1]])
    return out


# -- curves ----------------------------------------------------------------------------------
def _series(epochs: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for e in epochs:
        value = e.get(key)
        if value is not None and np.isfinite(value):
            xs.append(int(e["epoch"]))
            ys.append(float(value))
    return xs, ys


def curves_figure(epochs: Sequence[dict[str, Any]], *, metric_label: str = "metric") -> go.Figure:
    """Loss and metric per epoch, train and val, with the warm-up phase shaded."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", metric_label), horizontal_spacing=0.08)
    styles = {"train": dict(dash="dot"), "val": dict(dash="solid")}
    for col, kind in ((1, "loss"), (2, "metric")):
        for split in ("train", "val"):
            xs, ys = _series(epochs, f"{split}_{kind}")
            if xs:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines+markers",
                        name=f"{split} {'loss' if kind == 'loss' else metric_label}",
                        line=dict(color=PALETTE[0 if split == "train" else 1], **styles[split]),
                    ),
                    row=1,
                    col=col,
                )
    warm = [int(e["epoch"]) for e in epochs if e.get("phase") == "warmup"]
    if warm:
        for col in (1, 2):
            fig.add_vrect(
                x0=min(warm) - 0.5,
                x1=max(warm) + 0.5,
                fillcolor="grey",
                opacity=0.12,
                line_width=0,
                annotation_text="warm-up",
                annotation_position="top left",
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", **integer_ticks([int(e["epoch"]) for e in epochs]))
    fig.update_layout(height=340, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def compare_figure(
    rows: Sequence[dict[str, Any]],
    key: str,
    labels: dict[int, str],
    *,
    x: str = "epoch",
    smoothing: float = 0.0,
    planned: dict[int, int | None] | None = None,
    metric_name: str | None = None,
) -> go.Figure:
    """One line per run of ``key`` (e.g. ``val_metric``) against ``x``: ``epoch``, ``wall`` (the
    run's elapsed seconds) or ``fraction`` (share of the run's ``planned`` epochs; runs without a
    plan are left out). With ``smoothing`` > 0 each run is drawn smoothed
    (:func:`dashboard.compare_data.ema`) over its raw curve, drawn faint, so the noise of one
    sampled path per epoch stays visible without hiding the trend. A run keeps its colour (its
    place in ``labels``) in every figure of the page; ``metric_name`` names the y axis's metric."""
    from dashboard import compare_data as cd

    order = list(labels)
    curves = cd.curves(rows, key, x, order, planned=planned, smoothing=smoothing)
    unit, per_unit = cd.time_unit(max((c.x[-1] for c in curves), default=None))
    scale = per_unit if x == cd.WALL else 1.0
    fig = go.Figure()
    for curve in curves:
        place = order.index(curve.run_id) if curve.run_id in order else len(order) + curve.run_id
        color, name = PALETTE[place % len(PALETTE)], labels.get(curve.run_id, f"#{curve.run_id}")
        common = dict(
            x=[v / scale for v in curve.x], customdata=curve.epoch, mode="lines",
            legendgroup=str(curve.run_id),
            hovertemplate=f"{name}<br>epoch %{{customdata}}<br>%{{y:.4f}}<extra>%{{meta}}</extra>",
        )  # fmt: skip
        if smoothing > 0:
            fig.add_trace(go.Scatter(y=curve.raw, name=f"{name} (raw)", meta="raw", showlegend=False,
                                     line=dict(color=color, width=1), opacity=0.3, **common))  # fmt: skip
        fig.add_trace(go.Scatter(y=curve.smooth, name=name, meta="smoothed" if smoothing > 0 else "",
                                 line=dict(color=color, width=2), **common))  # fmt: skip
    if x == cd.EPOCH:
        fig.update_xaxes(title_text="epoch", **integer_ticks([e for c in curves for e in c.epoch]))
    elif x == cd.WALL:
        fig.update_xaxes(title_text=f"wall clock ({unit} since the run's first epoch began)")
    else:
        fig.update_xaxes(title_text="share of the run's planned epochs", tickformat=".0%")
    y_title = key.replace("_", " ") + (f" ({metric_name})" if metric_name else "")
    fig.update_layout(height=360, yaxis_title=y_title, margin=dict(l=40, r=20, t=30, b=40))
    return fig


# -- the DDPNAS distribution -------------------------------------------------------------------
def theta_heatmap(
    theta: Sequence[Sequence[float]],
    alive: Sequence[Sequence[bool]] | None,
    decisions: Sequence[str],
    candidates: Sequence[str],
    *,
    names: Sequence[Sequence[str]] | None = None,
    title: str = "",
    zrange: tuple[float, float] | None = None,
    colour_title: str = "theta",
) -> go.Figure:
    """Theta per decision (rows) x op (columns); pruned ops greyed and marked with a cross.

    ``names`` gives each cell's op name when rows have different candidates (hover text);
    ``zrange`` fixes the colour scale (the run's range over every update, see
    :func:`dashboard.run_sections.color_range`) so snapshots compare by colour; without it the
    scale spans this snapshot's alive values, never from 0 (DARTS' 0.124..0.126 would be one colour).
    """
    t = np.asarray(theta, dtype=float)
    mask = np.ones_like(t, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    if mask.shape != t.shape:
        mask = np.ones_like(t, dtype=bool)
    padding = padding_mask(names, t.shape)
    mask = mask | padding  # a row shorter than the widest has no op there: blank, not "pruned"
    shown = np.where(mask & ~padding, t, np.nan)
    if zrange is None:
        finite = shown[np.isfinite(shown)]
        zrange = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    row_sums = np.where(mask, t, 0.0).sum(axis=1, keepdims=True)
    share = np.divide(t, row_sums, out=np.zeros_like(t), where=row_sums > 0)
    hover = [
        [
            f"{decisions[i]}<br>{names[i][j] if names else candidates[j]}<br>theta={t[i, j]:.4f}"
            f" ({share[i, j]:.1%} of its decision)"
            + ("" if mask[i, j] else "<br><b>pruned</b>")
            for j in range(t.shape[1])
        ]
        for i in range(t.shape[0])
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=list(candidates),
            y=list(decisions),
            colorscale="Viridis",
            zmin=float(zrange[0]),
            zmax=float(zrange[1]),
            text=hover,
            hoverinfo="text",
            colorbar=dict(title=colour_title),
            hoverongaps=False,
            name="theta",
        )
    )
    hover = [[("" if padding[i, j] else text) for j, text in enumerate(row)] for i, row in enumerate(hover)]
    rows, cols = np.nonzero(~mask)
    if rows.size:
        fig.add_trace(
            go.Scatter(
                x=[candidates[c] for c in cols],
                y=[decisions[r] for r in rows],
                mode="markers",
                marker=dict(symbol="x-thin", size=9, line=dict(width=2, color="#d62728")),
                name=f"pruned ({rows.size})",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=title or None,
        height=max(320, 22 * len(decisions) + 120),
        plot_bgcolor="#e6e6e6",
        margin=dict(l=120, r=20, t=40 if title else 20, b=80),
        legend=dict(orientation="h", y=-0.12),
        yaxis=dict(autorange="reversed"),
    )
    return fig


def padding_mask(names: Sequence[Sequence[str]] | None, shape: tuple[int, ...]) -> np.ndarray:
    """Cells that are no op at all (``-`` in :func:`cell_names`: a decision with fewer candidates
    than the widest one, e.g. a face-space layer with 6 ops beside one with 7)."""
    out = np.zeros(shape, dtype=bool)
    if names is None:
        return out
    for i, row in enumerate(names[: shape[0]]):
        for j, name in enumerate(row[: shape[1]]):
            out[i, j] = name == "-"
    return out


def pruning_figure(
    updates: Sequence[dict[str, Any]], decided: Sequence[float | None] | None = None
) -> go.Figure:
    """Surviving ops (all decisions together) after each update -- dynamic distribution pruning --
    and, on the right axis, how decided the distribution is (``decided``: the mean top-op share per
    update, :func:`dashboard.run_sections.decidedness`). A run that prunes nothing (DARTS) draws
    only the second line: its count of alive ops is flat by design."""
    xs = [int(u["update_index"]) for u in updates]
    alive = [
        int(np.asarray(u["alive"], dtype=bool).sum()) if u.get("alive") is not None else None for u in updates
    ]
    prunes = len({a for a in alive if a is not None}) > 1
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if prunes:
        fig.add_trace(
            go.Scatter(x=xs, y=alive, mode="lines+markers", name="alive ops", line=dict(shape="hv")),
            secondary_y=False,
        )
    if decided is not None and any(d is not None for d in decided):
        fig.add_trace(
            go.Scatter(
                x=xs, y=list(decided), mode="lines+markers", name="top-op share (mean over decisions)",
                line=dict(color=PALETTE[1]),
            ),
            secondary_y=prunes,
        )  # fmt: skip
    fig.update_yaxes(title_text="ops still alive", secondary_y=False, visible=prunes,
                     rangemode="tozero" if prunes else "normal")  # fmt: skip
    fig.update_yaxes(title_text="top-op share", secondary_y=True, visible=prunes, tickformat=".0%")
    if not prunes:
        fig.update_yaxes(title_text="top-op share", tickformat=".2%", secondary_y=False, visible=True)
    fig.update_xaxes(title_text="update", **integer_ticks(xs))
    fig.update_layout(height=280, margin=dict(l=50, r=50, t=20, b=40), legend=dict(orientation="h", y=-0.3))
    return fig


def integer_ticks(values: Sequence[int]) -> dict[str, Any]:
    """Axis settings that never put a tick at epoch 2.5: every integer for short runs, else
    whole-number ticks only."""
    span = (max(values) - min(values)) if values else 0
    if span <= 20:
        return {"dtick": 1, "tick0": 0}
    return {"tickformat": "d"}


def sample_timeline(
    epochs: Sequence[dict[str, Any]],
    decisions: Sequence[str],
    candidates: Sequence[str],
    *,
    names: Sequence[Sequence[str]] | None = None,
) -> go.Figure | None:
    """Which op each decision sampled in each epoch (single-path strategies), one colour per op."""
    sampled = [e for e in epochs if isinstance(e.get("sample"), list) and e["sample"]]
    if not sampled:
        return None
    width = max(len(e["sample"]) for e in sampled)
    z = np.full((width, len(sampled)), np.nan)
    for col, e in enumerate(sampled):
        z[: len(e["sample"]), col] = e["sample"]
    n_ops = max(len(candidates), int(np.nanmax(z)) + 1)
    op_names = list(candidates) + [f"op{i}" for i in range(len(candidates), n_ops)]
    ys = list(decisions) if len(decisions) == width else [f"d{i}" for i in range(width)]
    scale = []
    for k in range(n_ops):
        color = PALETTE[k % len(PALETTE)]
        scale += [[k / n_ops, color], [(k + 1) / n_ops, color]]
    hover = [
        [
            f"epoch {sampled[c]['epoch']}<br>{ys[r]}<br>{_cell(names, op_names, r, int(z[r, c]))}"
            if np.isfinite(z[r, c])
            else ""
            for c in range(z.shape[1])
        ]
        for r in range(width)
    ]
    fig = go.Figure(
        go.Heatmap(
            # +0.5 puts op k in the middle of its colour band [k, k+1) / n_ops.
            z=z + 0.5,
            x=[int(e["epoch"]) for e in sampled],
            y=ys,
            colorscale=scale,
            zmin=0,
            zmax=n_ops,
            text=hover,
            hoverinfo="text",
            colorbar=dict(tickvals=[k + 0.5 for k in range(n_ops)], ticktext=op_names, title="op"),
        )
    )
    fig.update_layout(
        height=max(300, 16 * width + 120),
        xaxis=dict(title="epoch", **integer_ticks([int(e["epoch"]) for e in sampled])),
        yaxis=dict(autorange="reversed"),
        margin=dict(l=120, r=20, t=20, b=40),
    )
    return fig


def _cell(names: Sequence[Sequence[str]] | None, fallback: Sequence[str], row: int, op: int) -> str:
    if names is not None and row < len(names) and op < len(names[row]):
        return str(names[row][op])
    return str(fallback[op]) if op < len(fallback) else f"op{op}"
