"""Run: results first (the found architecture, the test metric), live progress with an ETA and
curves, then the tabs this kind of run has (:mod:`dashboard.run_sections`): the genotype, the
DDPNAS/DARTS distribution, sampled paths, random WS's candidate ranking, trials, artifacts, config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from automl.redact import redact
from dashboard import charts, genotype_graph, queries, run_sections, ui
from dashboard.progress import run_progress, units_done
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
if run["kind"] == "search" and run_sections.strategy_text(run["strategy"]):
    st.caption(run_sections.strategy_text(run["strategy"]))
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
    st.page_link("views/hpo.py", label=f"Open Optuna study '{summary['study']}'", icon=":material/tune:",
                 query_params={"study": str(summary["study"])})  # fmt: skip
    if summary.get("storage"):
        st.caption(f"study storage: `{summary['storage']}` (the HPO page reads `automl dashboard --storage`, "
                   "by default the store itself)")  # fmt: skip
if run.get("parent_run_id"):
    st.page_link("views/run.py", label=f"Parent run #{run['parent_run_id']}", icon=":material/arrow_upward:",
                 query_params={"run": str(run["parent_run_id"])})  # fmt: skip

live = st.toggle(
    "Live",
    value=run["liveness"] == "live",  # a dead or stale run has nothing new to show
    key="live",
    help=f"Re-read the store every {LIVE_REFRESH_SECONDS:g} s while the run is going.",
)


STARTED_STATE = run["state"]  # the state this page was drawn for; a change redraws the whole page


def result_help(current: dict[str, Any]) -> str:
    """What the headline number is, so a search's best sampled path is not read as a test score."""
    if current["kind"] == "search" and current.get("strategy") == "random":
        return "The best random candidate's metric on the validation split (trained supernet weights)."
    if current["kind"] == "search":
        return (
            "The best single sampled path's metric on the validation split, with shared supernet "
            "weights: not a trained network's score. Train the found architecture for a test metric."
        )
    if current["kind"] == "hpo":
        return "The study's best trial value (its validation split)."
    return "The trained network's metric on the split named (test when training finished)."


def headline_metrics(current: dict[str, Any], epochs: list[dict[str, Any]]) -> None:
    """State, progress with ETA, the run's result in its metric's name and split, wall time."""
    rows = queries.list_runs(engine, queries.RunFilter(ids=(run_id,)), limit=1)
    page_row = rows[0] if rows else {**current, "summary": summary, "wall_s": None}
    head = page_row.get("headline")
    progress = run_progress(
        current, units_done(current, len(epochs)), [e.get("wall_time") for e in epochs],
        live=current["liveness"] == "live",
    )  # fmt: skip
    m = st.columns(5)
    m[0].metric("State", current.get("shown_state") or current["state"])
    m[1].metric(progress.unit.capitalize(), progress.label().removesuffix(f" {progress.unit}"))
    if head is not None and head.value is not None:
        m[2].metric(head.label(short=False), ui.fmt_number(head.value), help=result_help(current))
    else:
        m[2].metric("Result", "-")
    if current["kind"] == "hpo":
        counts = (current.get("summary") or {}).get("counts") or {}
        m[3].metric("Running trials", int(counts.get("running", 0)))
    else:
        last_val = next((e["val_loss"] for e in reversed(epochs) if e.get("val_loss") is not None), None)
        m[3].metric("Last val loss", ui.fmt_number(last_val))
    m[4].metric("Wall time", ui.fmt_seconds(page_row.get("wall_s")))
    if progress.fraction is not None and current["liveness"] == "live":  # a dead run shows no bar
        eta = f" · about {ui.fmt_seconds(progress.eta_s)} left" if progress.eta_s is not None else ""
        pace = (f" · {ui.fmt_seconds(progress.seconds_per_unit)} per epoch"
                if progress.seconds_per_unit is not None else "")  # fmt: skip
        st.progress(progress.fraction, text=f"{progress.label()}{pace}{eta}")


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def live_panel() -> None:
    """Header metrics, progress and curves; alone re-executed every few seconds when Live is on.
    When the run ends meanwhile, the whole page is redrawn: its architecture, results and files
    are written at the end, and the tabs below were drawn before."""
    current = queries.get_run(engine, run_id) or run
    if current["state"] != STARTED_STATE and live:
        st.rerun(scope="app")
    epochs = queries.run_epochs(engine, run_id, with_samples=False)
    headline_metrics(current, epochs)
    if run["kind"] == "hpo":
        return  # its trials are Optuna's: the Trials tab and the HPO page draw them
    if epochs:
        metric_label = summary.get("metric_name") or summary.get("primary_metric") or {
            "au": "mean_f1", "fer": "accuracy"}.get(str(current.get("task")), "metric")  # fmt: skip
        st.plotly_chart(charts.curves_figure(epochs, metric_label=metric_label), key="curves")
    else:
        st.info(
            "No epoch recorded yet."
            + (" The run is starting." if current["state"] in ("created", "running") else "")
        )


# -- results first --------------------------------------------------------------------------------
def search_result() -> None:
    """A finished search: its found ops and cost, and the trainings started from it (their test
    metric is the result that counts) or the command that trains it."""
    final = queries.final_architectures(engine, [run_id]).get(run_id) or {}
    ops = run_sections.found_ops(final.get("genotype"))
    cost = summary.get("cost") or {}
    trainings = [ch["id"] for ch in queries.child_runs(engine, run_id) if ch["kind"] == "train"]
    if not (ops or cost or trainings):
        return
    st.subheader("Result")
    if ops:
        st.markdown(f"**Found architecture:** {ops}")
    if cost:
        st.caption(f"{ui.fmt_number(cost['params'] / 1e6) if cost.get('params') else '-'} M params · "
                   f"{ui.fmt_number(cost.get('mflops'))} MFLOPs at the search's image size; the "
                   "Architecture tab draws it.")  # fmt: skip
    for child in queries.runs_by_id(engine, trainings)[-5:]:
        head = child["headline"]
        label = (f"Trained as run #{child['id']} ({child['shown_state']}): "
                 f"{head.label(short=False)} {ui.fmt_number(head.value)}")  # fmt: skip
        st.page_link("views/run.py", label=label, icon=":material/model_training:",
                     query_params={"run": str(child["id"])})  # fmt: skip
    if not trainings:
        st.caption(f"The search's metric is one sampled path's on the validation split. Train the "
                   f"found architecture for a test metric: `automl train {run_id}`.")  # fmt: skip


def results_panel() -> None:
    """What the run produced, before any detail: the found ops and their cost with the trainings
    started from them (a search), the test metrics (a training), the best trial (a study)."""
    if run["state"] in ("created", "running"):
        return
    if run["kind"] == "search":
        search_result()
    elif run["kind"] == "train" and isinstance(summary.get("test_metrics"), dict):
        st.subheader("Test metrics")
        metrics = {k: v for k, v in summary["test_metrics"].items() if isinstance(v, int | float)}
        cols = st.columns(min(5, max(1, len(metrics))))
        for i, (name, value) in enumerate(list(metrics.items())[:10]):
            cols[i % len(cols)].metric(name, ui.fmt_number(float(value)))
    elif run["kind"] == "hpo" and summary.get("best_params"):
        st.subheader("Best trial")
        best = summary.get("best") or {}
        objectives = ", ".join(summary.get("objectives") or []) or "value"
        st.metric(f"trial #{best.get('number', '?')}: {objectives}", ui.fmt_number(summary.get("best_value")))
        params = {k: ui.fmt_param(v) for k, v in summary["best_params"].items()}
        st.dataframe(ui.filled(pd.DataFrame([params])), hide_index=True, key="best_params")


results_panel()
live_panel()

TAB_NAMES = run_sections.run_tabs(run["kind"], run["strategy"], has_ranking=bool(summary.get("ranking")))
tabs = dict(zip(TAB_NAMES, st.tabs(TAB_NAMES), strict=True))


# -- the DDPNAS distribution ---------------------------------------------------------------------
def _theta_moved() -> None:
    """The user moved the slider: keep following new updates only if they chose the newest."""
    st.session_state["theta_follow"] = st.session_state["theta_update"] == st.session_state.get("theta_last")


@st.cache_data(max_entries=16, show_spinner=False)
def distribution_overview(url: str, rid: int, n_updates: int, n_ops: tuple[int, ...]) -> dict[str, Any]:
    """The run's fixed colour ranges (of theta, and of theta relative to uniform) and its
    decidedness per update, from every snapshot; keyed by the update count so a live run
    recomputes only when a new snapshot arrived."""
    snaps = queries.distribution_updates(engine, rid, with_theta=True)
    return {
        "theta": run_sections.color_range([s["theta"] for s in snaps]),
        "relative": run_sections.color_range(
            [run_sections.relative_to_uniform(s["theta"], n_ops) for s in snaps]
        ),
        "decided": [run_sections.decidedness(s["theta"], s["alive"]) for s in snaps],
    }


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def distribution_panel() -> None:
    """Theta heatmap with a slider over updates on one colour scale for the whole run; live, it
    follows the newest update unless the user moved the slider back to an older one."""
    current = queries.get_run(engine, run_id) or run
    updates = queries.distribution_updates(engine, run_id)
    if not updates:
        st.info(run_sections.no_distribution_message(run["strategy"], plan, current["state"]))
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
    decided = None
    if snap is not None:
        theta = snap["theta"]
        alive = snap["alive"]
        n_rows, n_cols = len(theta), max((len(r) for r in theta), default=0)
        decisions, candidates = charts.plan_axes(plan, n_rows, n_cols)
        names = charts.cell_names(plan, n_rows, n_cols)
        real = ~charts.padding_mask(names, (n_rows, n_cols))  # cells that are an op of their decision
        kept = np.asarray(alive, dtype=bool) if alive else np.ones((n_rows, n_cols), dtype=bool)
        n_ops = int(real.sum())
        per_row = tuple(int(r) for r in real.sum(axis=1))
        overview = distribution_overview(ui.settings().db_url, run_id, len(stops), per_row)
        decided = overview["decided"]
        relative = st.toggle("Relative to uniform (theta x #ops)", value=run["strategy"] == "darts",
                             key="theta_relative", help="1 = the uniform share of its decision, so decisions "
                             "with different numbers of ops share one scale.")  # fmt: skip
        n_alive = int((kept & real).sum()) if kept.shape == real.shape else n_ops
        c = st.columns(4)
        c[0].metric("Update", f"{chosen} of {stops[-1]}")
        c[1].metric("Ops alive", f"{n_alive} / {n_ops}")
        c[2].metric("Pruned ops", n_ops - n_alive)
        share = run_sections.decidedness(theta, alive)
        c[3].metric("Top-op share", f"{share:.1%}" if share is not None else "-",
                    help="Mean over decisions of the strongest op's share of its row: 1/#ops undecided, "
                    "100% decided.")  # fmt: skip
        st.plotly_chart(
            charts.theta_heatmap(
                run_sections.relative_to_uniform(theta, real.sum(axis=1)) if relative else theta,
                alive,
                decisions,
                candidates,
                names=names,
                title=f"theta after update {chosen} (epoch {snap['epoch']})",
                zrange=overview["relative" if relative else "theta"],
                colour_title="theta x #ops" if relative else "theta",
            ),
            key="theta_heatmap",
        )
        st.caption(run_sections.theta_note(run["strategy"], plan))
    pruning = run["strategy"] == "ddpnas"
    st.subheader("Dynamic distribution pruning" if pruning else "How decided the search is")
    st.plotly_chart(charts.pruning_figure(updates, decided), key="pruning")


def architecture_panel() -> None:
    """The genotype(s) the run recorded: graphs, costs, JSON."""
    archs = queries.run_architectures(engine, run_id)
    if not archs:
        st.info(
            "No architecture recorded yet: the genotype appears when the search finishes."
            if run["state"] in ("created", "running") else "This run recorded no architecture."
        )  # fmt: skip
        return
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


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def samples_panel() -> None:
    """Which op each decision sampled in each epoch; live like the curves (it lagged before)."""
    epochs_s = queries.run_epochs(engine, run_id, with_samples=True)
    width = max((len(e["sample"]) for e in epochs_s if isinstance(e.get("sample"), list)), default=0)
    n_ops = max((len(c) for c in charts.plan_candidates(plan)), default=0)
    decisions, candidates = charts.plan_axes(plan, width, n_ops)
    fig = charts.sample_timeline(epochs_s, decisions, candidates, names=charts.cell_names(plan, width, n_ops))
    if fig is None:
        current = queries.get_run(engine, run_id) or run
        st.info(run_sections.no_samples_message(run["strategy"], current["state"]))
    else:
        st.plotly_chart(fig, key="timeline")


def ranking_panel() -> None:
    """Random WS's result: the candidates ranked on the trained supernet, best first."""
    ranking = summary.get("ranking") or []
    if not ranking:
        st.info("The candidates are ranked when the supernet's training ends." if run["state"] == "running"
                else "This run recorded no candidate ranking.")  # fmt: skip
        return
    decisions, _ = charts.plan_axes(plan, len(ranking[0].get("choice") or []), 0)
    names = charts.plan_candidates(plan)
    rows = []
    for r in sorted(ranking, key=lambda r: -float(r.get("val_metric") or float("-inf"))):
        choice = r.get("choice") or []
        ops = [names[i][c] if i < len(names) and isinstance(c, int) and c < len(names[i]) else str(c)
               for i, c in enumerate(choice)]  # fmt: skip
        rows.append({"val metric": r.get("val_metric"), "ops": " · ".join(ops)})
    st.caption(f"{len(rows)} random candidates evaluated on the trained supernet's validation split; the "
               "first is the result.")  # fmt: skip
    st.dataframe(ui.filled(pd.DataFrame(rows)), hide_index=True, key="ranking",
                 column_config={"val metric": st.column_config.NumberColumn(format="%.4f")})  # fmt: skip


def trials_panel() -> None:
    """An HPO run: its study (the HPO page draws it) and the trainings its trials recorded."""
    counts = summary.get("counts") or {}
    if counts:
        cols = st.columns(max(1, len(counts)))
        for col, (state_name, n) in zip(cols, sorted(counts.items()), strict=False):
            col.metric(state_name, n)
    if summary.get("study"):
        st.page_link("views/hpo.py", label=f"Open Optuna study '{summary['study']}' on the HPO page",
                     icon=":material/tune:", query_params={"study": str(summary["study"])})  # fmt: skip
    children = queries.runs_by_id(engine, [c["id"] for c in queries.child_runs(engine, run_id, limit=500)])
    if children:
        st.caption("Each trial trains the architecture in a run of its own; open one for its curves.")
        trials = pd.DataFrame({
            "trial": [c["summary"].get("hpo_trial") for c in children],
            "run": [f"run?run={c['id']}" for c in children],
            "state": [c["shown_state"] for c in children],
            "metric": [c["headline"].label(short=False) for c in children],
            "result": [ui.fmt_number(c["headline"].value) for c in children],
            "epochs": [c["epochs"] for c in children],
            "wall time": [ui.fmt_seconds(c["wall_s"]) for c in children],
        }).sort_values("trial", ascending=False, na_position="last")  # fmt: skip
        link = st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)")
        st.dataframe(ui.filled(trials), hide_index=True, key="hpo_children", column_config={"run": link})
    elif not summary.get("study"):
        st.info("This study has recorded no trial yet.")


# -- checkpoints and exports ----------------------------------------------------------------------
def _reader(path: Path):  # noqa: ANN202 - a deferred download (the file is read only on click)
    return lambda: path.read_bytes()


def _download(label: str, path: Path, key: str) -> None:
    st.download_button(label, _reader(path), file_name=path.name, key=key, on_click="ignore",
                       icon=":material/download:")  # fmt: skip


def artifacts_panel() -> None:
    """Checkpoints, exports and the runs started from this one, each downloadable."""
    ckpts = queries.run_checkpoints(engine, run_id)
    if ckpts:
        st.subheader("Checkpoints")
        st.dataframe(
            ui.filled(pd.DataFrame([
                {"kind": c["kind"], "path": c["path"], "sha256": c["sha256"][:16],
                 "metrics": ", ".join(f"{k}={ui.fmt_number(v)}" for k, v in (c["metrics"] or {}).items())}
                for c in ckpts
            ])),
            hide_index=True,
            key="ckpt_table",
        )  # fmt: skip
        for c in ckpts:
            path = Path(c["path"])
            if path.is_file() and path.stat().st_size <= MAX_DOWNLOAD_BYTES:
                _download(f"Download {path.name}", path, f"dl_ckpt_{c['id']}")
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
            size_mb = path.stat().st_size / 1e6
            _download(f"Download {path.relative_to(art_dir)} ({size_mb:.2f} MB)", path, f"dl_file_{i}")
    if not ckpts and not exports:
        st.info(f"No checkpoint or export yet (artifacts go to `{art_dir}`).")
    children = queries.child_runs(engine, run_id)
    if children and run["kind"] != "hpo":
        st.subheader("Runs started from this one")
        st.dataframe(ui.filled(pd.DataFrame(children)), hide_index=True, key="children")


def config_panel() -> None:
    """The resolved config, the summary and the plan; big numeric arrays (theta) as tables with
    their shape, not one number per line."""
    st.subheader("Resolved configuration")
    st.json(run.get("config") or {}, expanded=False)
    rest = {k: v for k, v in summary.items() if k != "plan"}
    if rest:
        st.subheader("Summary")
        st.json(run_sections.compact(rest), expanded=True)
        for name, array in run_sections.numeric_arrays(rest).items():
            with st.expander(f"{name} ({len(array)} x {len(array[0])})"):
                st.dataframe(pd.DataFrame(array).round(4), key=f"array_{name}")
    if plan:
        st.subheader("Plan")
        st.json(run_sections.compact(plan), expanded=False)


PANELS = {
    "Architecture": architecture_panel,
    "Distribution": distribution_panel,
    "Sampled architectures": samples_panel,
    "Candidate ranking": ranking_panel,
    "Trials": trials_panel,
    "Artifacts": artifacts_panel,
    "Config": config_panel,
}
for name, tab in tabs.items():
    with tab:
        PANELS[name]()
