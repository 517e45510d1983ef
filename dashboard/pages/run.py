"""Run: live curves, the DDPNAS distribution with its pruning, the genotype, costs and artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from automl.redact import redact
from dashboard import charts, genotype_graph, queries, ui
from dashboard.settings import LIVE_REFRESH_SECONDS

MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
EXPORT_SUFFIXES = (".onnx", ".pt", ".ts", ".torchscript", ".json", ".safetensors", ".toml")

engine = ui.engine_or_none()
if engine is None or not ui.require_runs(engine):
    st.title("Run")
    st.stop()

run_id = ui.run_picker(engine)
run = queries.get_run(engine, run_id) if run_id is not None else None
if run is None:
    st.title("Run")
    st.warning(f"Run {st.query_params.get('run')} is not in this store; pick another one.")
    st.stop()

summary: dict[str, Any] = run.get("summary") or {}
plan: dict[str, Any] = summary.get("plan") or {}
title = " · ".join(str(x) for x in (run["strategy"], run["space"], run["task"]) if x)
st.title(f"Run #{run['id']}: {title or run['kind']}")
st.caption(
    f"{run['kind']} · data `{run['data']}` · seed {run['seed']} · host {run['host']} · "
    f"created {run['created_at']:%Y-%m-%d %H:%M:%S}"
)
if run["state"] == "failed":
    st.error(f"This run failed: {redact(run.get('error') or 'no message recorded')}")  # older rows too
elif run["state"] == "interrupted":
    st.warning(
        f"This run was interrupted ({redact(run.get('error') or 'no reason recorded')}); "
        + (f"`automl search --resume {run['id']}` continues it from its last checkpoint."
           if run["kind"] == "search" else "run its command again to redo it.")
    )
elif run["liveness"] in ("stale", "dead"):
    gone = "has exited" if run["liveness"] == "dead" else "has sent no heartbeat for over a minute"
    st.warning(
        f"This run is marked {run['state']} but is not running: its process (pid {run.get('pid')} on "
        f"{run.get('host')}) {gone}. It was killed without recording its end"
        + (f"; `automl search --resume {run['id']}` continues it." if run["kind"] == "search" else ".")
    )
ui.signal_banner(summary.get("signal"), f"{run['kind']} run #{run['id']}")
if run["kind"] == "hpo" and summary.get("study"):
    st.page_link("pages/hpo.py", label=f"Open Optuna study '{summary['study']}'", icon=":material/tune:",
                 query_params={"study": str(summary["study"])})  # fmt: skip
    if summary.get("storage"):
        st.caption(f"study storage: `{summary['storage']}` (the HPO page reads `automl dashboard --storage`, "
                   "by default the store itself)")  # fmt: skip
if run.get("parent_run_id"):
    st.page_link("pages/run.py", label=f"Parent run #{run['parent_run_id']}", icon=":material/arrow_upward:",
                 query_params={"run": str(run["parent_run_id"])})  # fmt: skip

live = st.toggle(
    "Live",
    value=run["liveness"] == "live",  # a dead or stale run has nothing new to show
    key="live",
    help=f"Re-read the store every {LIVE_REFRESH_SECONDS:g} s while the run is going.",
)


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def live_panel() -> None:
    """Header metrics and curves; alone re-executed every few seconds when Live is on."""
    current = queries.get_run(engine, run_id) or run
    epochs = queries.run_epochs(engine, run_id, with_samples=False)
    rows = queries.list_runs(engine, queries.RunFilter(ids=(run_id,)), limit=1)
    wall = rows[0]["wall_s"] if rows else None
    best = rows[0]["best_val_metric"] if rows else None
    total_epochs = plan.get("total_epochs") or plan.get("epochs") or plan.get("search_epochs")
    m = st.columns(5)
    m[0].metric("State", current.get("shown_state") or current["state"])
    m[1].metric("Epochs", f"{len(epochs)}" + (f" / {total_epochs}" if isinstance(total_epochs, int) else ""))
    m[2].metric("Best val metric", ui.fmt_number(best))
    last_val = next((e["val_loss"] for e in reversed(epochs) if e.get("val_loss") is not None), None)
    m[3].metric("Last val loss", ui.fmt_number(last_val))
    m[4].metric("Wall time", ui.fmt_seconds(wall))
    if epochs:
        metric_label = summary.get("metric_name") or {"au": "mean F1", "fer": "accuracy"}.get(
            str(current.get("task")), "metric"
        )
        st.plotly_chart(charts.curves_figure(epochs, metric_label=metric_label), key="curves")
    else:
        st.info(
            "No epoch recorded yet."
            + (" The run is starting." if current["state"] in ("created", "running") else "")
        )


live_panel()

tab_dist, tab_arch, tab_samples, tab_files, tab_config = st.tabs(
    ["Distribution", "Architecture", "Sampled architectures", "Artifacts", "Config"]
)


# -- the DDPNAS distribution ---------------------------------------------------------------------
def _theta_moved() -> None:
    """The user moved the slider: keep following new updates only if they chose the newest."""
    st.session_state["theta_follow"] = st.session_state["theta_update"] == st.session_state.get("theta_last")


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def distribution_panel() -> None:
    """Theta heatmap with a slider over updates; live, it follows the newest update unless the
    user moved the slider back to an older one."""
    updates = queries.distribution_updates(engine, run_id)
    if not updates:
        st.info("This run recorded no distribution (only DDPNAS and DARTS searches do).")
        return
    stops = [int(u["update_index"]) for u in updates]
    epoch_of = {int(u["update_index"]): u["epoch"] for u in updates}
    chosen = stops[-1]
    if len(stops) > 1:
        state = st.session_state
        if state.get("theta_run") != run_id:  # another run: start by following its newest update
            state["theta_run"], state["theta_follow"] = run_id, True
        if state.get("theta_follow", True) or state.get("theta_update") not in stops:
            state["theta_update"] = stops[-1]
        state["theta_last"] = stops[-1]
        chosen = st.select_slider(
            "Distribution after update",
            options=stops,
            key="theta_update",
            format_func=lambda u: f"{u} (epoch {epoch_of[u]})",
            on_change=_theta_moved,
        )
    snap = queries.distribution_at(engine, run_id, chosen)
    if snap is not None:
        theta = snap["theta"]
        alive = snap["alive"]
        n_rows, n_cols = len(theta), max((len(r) for r in theta), default=0)
        decisions, candidates = charts.plan_axes(plan, n_rows, n_cols)
        n_alive = sum(bool(a) for row in alive for a in row) if alive else n_rows * n_cols
        c = st.columns(3)
        c[0].metric("Update", f"{chosen} of {stops[-1]}")
        c[1].metric("Ops alive", f"{n_alive} / {n_rows * n_cols}")
        c[2].metric("Pruned ops", n_rows * n_cols - n_alive)
        st.plotly_chart(
            charts.theta_heatmap(
                theta,
                alive,
                decisions,
                candidates,
                names=charts.cell_names(plan, n_rows, n_cols),
                title=f"theta after update {chosen} (epoch {snap['epoch']})",
            ),
            key="theta_heatmap",
        )
    st.subheader("Dynamic distribution pruning")
    st.plotly_chart(charts.pruning_figure(updates), key="pruning")


with tab_dist:
    distribution_panel()

# -- the genotype -------------------------------------------------------------------------------
with tab_arch:
    archs = queries.run_architectures(engine, run_id)
    if not archs:
        st.info("No architecture recorded yet: the genotype appears when the search finishes.")
    else:
        roles = [f"{a['role']} (#{a['id']})" for a in archs]
        finals = [i for i, a in enumerate(archs) if a["role"] == "final"]
        pick = st.selectbox(
            "Architecture",
            range(len(archs)),
            index=finals[-1] if finals else len(archs) - 1,
            format_func=lambda i: roles[i],
            key="arch_pick",
        )
        arch = archs[pick]
        c = st.columns(4)
        c[0].metric("Params (M)", f"{arch['params'] / 1e6:.3f}" if arch["params"] is not None else "-")
        c[1].metric("MFLOPs", f"{arch['mflops']:.1f}" if arch["mflops"] is not None else "-")
        c[2].metric("Latency (ms)", f"{arch['latency_ms']:.2f}" if arch["latency_ms"] is not None else "-")
        c[3].metric("Genotype", arch["genotype_hash"][:8], help=f"sha256 {arch['genotype_hash']}")
        graphs = genotype_graph.genotype_dots(arch["genotype"], plan)
        for dot in graphs.values():  # each graph carries its own title (normal / reduce cell)
            st.graphviz_chart(dot)
        with st.expander("Genotype JSON", expanded=not graphs):
            st.json(arch["genotype"])
        st.download_button(
            "Download genotype JSON",
            json.dumps(arch["genotype"], indent=2),
            file_name=f"run{run_id}_{arch['role']}_genotype.json",
            mime="application/json",
            key="dl_genotype",
            on_click="ignore",
            icon=":material/download:",
        )

# -- the sampled-architecture timeline -------------------------------------------------------------
with tab_samples:
    epochs_s = queries.run_epochs(engine, run_id, with_samples=True)
    width = max((len(e["sample"]) for e in epochs_s if isinstance(e.get("sample"), list)), default=0)
    n_ops = max((len(c) for c in charts.plan_candidates(plan)), default=0)
    decisions, candidates = charts.plan_axes(plan, width, n_ops)
    fig = charts.sample_timeline(epochs_s, decisions, candidates, names=charts.cell_names(plan, width, n_ops))
    if fig is None:
        st.info("No sampled architectures: this strategy trains a mixed supernet (DARTS) or has not started.")
    else:
        st.plotly_chart(fig, key="timeline")


# -- checkpoints and exports ----------------------------------------------------------------------
def _reader(path: Path):  # noqa: ANN202 - a deferred download (the file is read only on click)
    return lambda: path.read_bytes()


with tab_files:
    ckpts = queries.run_checkpoints(engine, run_id)
    if ckpts:
        st.subheader("Checkpoints")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "kind": c["kind"],
                        "path": c["path"],
                        "sha256": c["sha256"][:16],
                        "metrics": json.dumps(c["metrics"]),
                    }
                    for c in ckpts
                ]
            ),
            hide_index=True,
            key="ckpt_table",
        )
        for c in ckpts:
            path = Path(c["path"])
            if path.is_file() and path.stat().st_size <= MAX_DOWNLOAD_BYTES:
                st.download_button(
                    f"Download {path.name}",
                    _reader(path),
                    file_name=path.name,
                    key=f"dl_ckpt_{c['id']}",
                    on_click="ignore",
                    icon=":material/download:",
                )
    art_dir = Path(run["artifact_dir"]) if run.get("artifact_dir") else None
    exports = []
    if art_dir is not None and art_dir.is_dir():
        known = {Path(c["path"]).resolve() for c in ckpts}
        exports = sorted(
            p
            for p in art_dir.rglob("*")
            if p.is_file()
            and p.suffix in EXPORT_SUFFIXES
            and p.resolve() not in known
            and p.stat().st_size <= MAX_DOWNLOAD_BYTES
        )
    if exports:
        st.subheader("Exports and files")
        for i, path in enumerate(exports[:50]):
            st.download_button(
                f"Download {path.relative_to(art_dir)} ({path.stat().st_size / 1e6:.2f} MB)",
                _reader(path),
                file_name=path.name,
                key=f"dl_file_{i}",
                on_click="ignore",
                icon=":material/download:",
            )
    if not ckpts and not exports:
        st.info(f"No checkpoint or export yet (artifacts go to `{art_dir}`).")
    children = queries.child_runs(engine, run_id)
    if children:
        st.subheader("Runs started from this one")
        st.dataframe(pd.DataFrame(children), hide_index=True, key="children")

with tab_config:
    st.subheader("Resolved configuration")
    st.json(run.get("config") or {}, expanded=False)
    rest = {k: v for k, v in summary.items() if k != "plan"}
    if rest:
        st.subheader("Summary")
        st.json(rest, expanded=True)
    if plan:
        st.subheader("Plan")
        st.json(plan, expanded=False)
