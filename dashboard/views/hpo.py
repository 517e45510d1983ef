"""HPO: an Optuna study's history, intermediate values, parameters and Pareto front; its trials.

Plots use ``optuna.visualization`` on an in-memory copy of the study holding only the trial states
the user keeps (so "hide pruned" applies to the plots too, and nothing can write to the storage).
The trials come from plain SQL (:func:`dashboard.queries.study_trials`; Optuna's journal reader for
a journal file) and are cached per study version, as are the plot study and each figure; only the
picked plot is built. The trial table is paginated in SQL (in Python for a journal-file storage).
``python -m dashboard.bench_hpo_page`` times the page on a 600-trial study.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd
import streamlit as st
from optuna.trial import FrozenTrial

from dashboard import queries, study_plots, ui
from dashboard import studies as studies_mod
from dashboard.settings import LIVE_REFRESH_SECONDS, safe_url

optuna.logging.set_verbosity(optuna.logging.WARNING)

st.title("Hyper-parameter studies")
storage_url = ui.settings().optuna_storage
st.caption(f"Optuna storage: `{safe_url(storage_url)}`")
if studies_mod.is_journal(storage_url):
    if not studies_mod.journal_file(storage_url).is_file():
        st.info(f"No Optuna journal at `{studies_mod.journal_file(storage_url)}` yet.")
        st.stop()
    source = studies_mod.StudySource(storage_url, None)
else:
    engine = ui.engine_or_none(storage_url, need_runs_tables=False)
    if engine is None:
        st.stop()
    source = studies_mod.StudySource(storage_url, engine)


@st.cache_data(ttl=600, max_entries=4, show_spinner=False)
def journal_studies(url: str, size: int, mtime_ns: int) -> list[dict[str, Any]]:
    """A journal's studies, re-read only when the file changed: listing them replays the whole
    journal, and the page lists them twice a rerun (the picker, then the live view)."""
    return studies_mod.StudySource(url, None).studies()


def list_studies() -> list[dict[str, Any]]:
    """The storage's studies with their trial counts (one cheap SQL query for an RDB)."""
    if source.engine is not None:
        return source.studies()
    stat = studies_mod.journal_file(storage_url).stat()
    return journal_studies(storage_url, stat.st_size, stat.st_mtime_ns)


studies = list_studies()
if not studies:
    st.info("No Optuna study in this storage yet.")
    st.markdown(
        "Tune the training of a searched network (trials are stored beside the runs):\n\n"
        "```bash\nautoml hpo RUN_ID --trials 20 --study my-study\n```"
    )
    st.stop()


@st.cache_resource(ttl=600, max_entries=8, show_spinner="Loading trials...")
def load_trials(
    url: str, study_name: str, version: tuple, _info: dict[str, Any]
) -> tuple[list[str], list[FrozenTrial]]:
    """All trials of a study (:meth:`StudySource.trials`). ``version`` (trial counts per state and
    the values recorded, :meth:`StudySource.version`) keys the cache: a new report of a running
    trial reloads it, an unchanged study never does. A resource, not data: st.cache_data would
    unpickle every trial on every rerun; the trials are only read (the plot study copies them)."""
    return source.trials(_info)


@st.cache_resource(ttl=600, max_entries=8, show_spinner=False)
def plot_study(
    url: str, study_name: str, version: tuple, states: tuple[str, ...], _info: dict[str, Any]
) -> tuple[Any, bool, dict]:
    """The in-memory study the plots draw (capped, see dashboard.study_plots), whether it was
    subsampled, and the best trial(s) of the full selection. Cached as a resource and only read:
    building it is the slow part for big studies."""
    directions, trials = load_trials(url, study_name, version, _info)
    study = study_plots.memory_study(directions, study_plots.kept_trials(trials, states))
    best = study_plots.summary(study)
    subset, capped = study_plots.plot_subset(study)
    return (study_plots.memory_study(directions, subset) if capped else study), capped, best


@st.cache_resource(ttl=600, max_entries=32, show_spinner="Drawing...")
def cached_figure(
    url: str, study_name: str, figure_version: tuple, states: tuple[str, ...], kind: str, objective: int,
    names: tuple[str, ...] | None, _version: tuple, _info: dict[str, Any],
):  # fmt: skip
    """One figure, built once per ``figure_version`` (a resource: returned as is, not unpickled on
    every rerun as st.cache_data would). The plots of finished trials' values are keyed on the
    finished trials alone (:meth:`StudyVersion.for_plot`), so a running trial's reports redraw
    its intermediate values and timeline but not the importances (seconds on a big study)."""
    study, _, _ = plot_study(url, study_name, _version, states, _info)
    return study_plots.figure(study, kind, objective, list(names) if names else None)


PLOT_NAMES = {
    "history": "History",
    "intermediate": "Intermediate values",
    "parallel": "Parallel coordinates",
    "importances": "Importances",
    "pareto": "Pareto front",
    "timeline": "Timeline",
}

by_name = {s["name"]: s for s in studies}
names = list(by_name)
wanted = st.query_params.get("study")
name = st.selectbox(
    "Study", names, index=names.index(wanted) if wanted in by_name else 0, key="study",
    format_func=lambda n: f"{n} ({by_name[n]['n_trials']} trials)",
)  # fmt: skip
running_now = by_name[name]["counts"].get("RUNNING", 0)
live = st.toggle(
    "Live",
    value=running_now > 0,
    key="hpo_live",
    help=f"Re-read the study every {LIVE_REFRESH_SECONDS:g} s (on by default while trials are running).",
)


def best_trial(best: dict[str, Any], objective_labels: list[str], log: frozenset[str]) -> None:
    """The best trial: its value under the objective's name and its params as a small table."""
    st.success(
        f"Best trial #{best['best_number']}: {objective_labels[0]} {ui.fmt_number(best['best_value'])}"
    )
    params = {k: studies_mod.fmt_hparam(k, v, log) for k, v in best["best_params"].items()}
    st.dataframe(ui.filled(pd.DataFrame([params])), hide_index=True, key="best_params")


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def study_view() -> None:
    """Everything below the study picker; alone re-executed while Live is on. Only the plot the
    user picked is built (a segmented control, not tabs: Streamlit renders every tab's content on
    every rerun, and six figures of a 600-trial study cost seconds)."""
    info = {s["name"]: s for s in list_studies()}.get(name)
    if info is None:
        st.warning(f"Study '{name}' is no longer in this storage.")
        return
    counts = info["counts"]
    version = source.version(info)
    directions, trials = load_trials(storage_url, name, version.key, info)
    attributes = source.attributes(info)
    directions_shown = [d.lower() for d in info["directions"]]
    stored_names = studies_mod.stored_objective_names(attributes, len(directions_shown))
    labels = studies_mod.objective_names(directions_shown, attributes, studies_mod.primary_metric(trials))
    st.caption(
        ("Objectives: " if len(labels) > 1 else "Objective: ")
        + ", ".join(f"{label} ({d})" for label, d in zip(labels, directions_shown, strict=True))
    )
    cols = st.columns(len(queries.TRIAL_STATES))
    for col, state in zip(cols, queries.TRIAL_STATES, strict=True):
        col.metric(state.lower(), counts.get(state, 0))
    if counts.get("RUNNING"):
        st.caption(f"{counts['RUNNING']} trial(s) running: their intermediate values and timeline bars are "
                   "drawn as they report.")  # fmt: skip

    present = [s for s in queries.TRIAL_STATES if counts.get(s)]
    c1, c2 = st.columns([3, 1])
    hide_pruned = c2.toggle("Hide pruned trials", value=False, key="hide_pruned")
    if "trial_states" in st.session_state:  # a state can vanish (the last running trial ended)
        st.session_state["trial_states"] = [s for s in st.session_state["trial_states"] if s in present]
        states = c1.multiselect("Trial states", present, key="trial_states")
    else:
        states = c1.multiselect("Trial states", present, default=present, key="trial_states")
    if hide_pruned:
        states = [s for s in states if s != "PRUNED"]

    multi = len(directions) > 1
    log = studies_mod.log_params(trials)
    _, capped, best = plot_study(storage_url, name, version.key, tuple(states), info)
    if best.get("complete"):
        if multi:
            st.caption(f"{best['pareto']} trial(s) on the Pareto front.")
        else:
            best_trial(best, labels, log)
    if capped:
        st.caption(f"Plots draw {study_plots.PLOT_TRIAL_CAP:,} of the selected trials (evenly spaced, "
                   "best ones included); the trial table lists every one.")  # fmt: skip

    objective = 0
    if multi:
        objective = st.selectbox(
            "Objective for the single-objective plots",
            range(len(directions)),
            format_func=lambda i: f"{labels[i]} ({directions[i]})",
            key="objective",
        )
    kinds = [k for k in study_plots.KINDS if multi or k != "pareto"]
    kind = st.segmented_control(
        "Plot", kinds, format_func=PLOT_NAMES.get, default="history", key="hpo_plot"
    ) or "history"  # fmt: skip
    fig = cached_figure(storage_url, name, version.for_plot(kind), tuple(states), kind, objective,
                        tuple(labels) if stored_names else None, version.key, info)  # fmt: skip
    if isinstance(fig, str):
        st.info(fig)
    else:
        st.plotly_chart(fig, key=f"plot_{kind}")
    trial_table(info, states, trials, labels, log)


def trial_table(
    info: dict[str, Any], states: list[str], trials: list[FrozenTrial], labels: list[str], log: frozenset[str]
) -> None:
    """The trials, paged in SQL (in Python for a journal), with their objectives named, their
    train run linked and automl's attributes (latency, params, MFLOPs, learning checks)."""
    st.subheader("Trials")
    total = source.count_trials(info, states, trials)
    page_size = 50
    pages = max(1, math.ceil(total / page_size))
    t1, t2 = st.columns([1, 1])
    page = int(t1.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="trial_page"))
    newest_first = t2.toggle("Newest first", value=False, key="trial_desc")
    rows = source.trials_page(
        info, states, trials, limit=page_size, offset=(page - 1) * page_size, descending=newest_first
    )
    st.caption(f"{total} trial(s) in the selected states.")
    if rows:
        frame = ui.filled(pd.DataFrame(studies_mod.table_rows(rows, labels, log)))
        link = st.column_config.LinkColumn("train run", display_text=r"run\?run=(\d+)",
                                           help="The training run this trial recorded.")  # fmt: skip
        st.dataframe(frame, hide_index=True, key="trials_table", column_config={"train run": link})


study_view()
