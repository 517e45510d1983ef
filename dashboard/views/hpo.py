"""HPO: an Optuna study's history, intermediate values, parameters and Pareto front; its trials.

Plots use ``optuna.visualization`` on an in-memory copy of the study holding only the trial states
the user keeps (so "hide pruned" applies to the plots too, and nothing can write to the storage).
The trial table is paginated in SQL (in Python for a journal-file storage).
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
from dashboard.settings import safe_url

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
studies = source.studies()
if not studies:
    st.info("No Optuna study in this storage yet.")
    st.markdown(
        "Tune the training of a searched network (trials are stored beside the runs):\n\n"
        "```bash\nautoml hpo RUN_ID --trials 20 --study my-study\n```"
    )
    st.stop()


@st.cache_data(ttl=15, show_spinner="Loading trials...")
def load_trials(url: str, study_name: str, version: tuple) -> tuple[list[str], list[FrozenTrial]]:
    """All trials of a study through Optuna's storage API; ``version`` (the trial count per state)
    keys the cache so a finished or new trial shows up."""
    return studies_mod.load_study_trials(url, study_name)


@st.cache_resource(ttl=60, max_entries=8, show_spinner=False)
def plot_study(url: str, study_name: str, version: tuple, states: tuple[str, ...]) -> tuple[Any, bool, dict]:
    """The in-memory study the plots draw (capped, see dashboard.study_plots), whether it was
    subsampled, and the best trial(s) of the full selection. Cached as a resource and only read:
    building it is the slow part for big studies."""
    directions, trials = load_trials(url, study_name, version)
    study = study_plots.memory_study(directions, study_plots.kept_trials(trials, states))
    best = study_plots.summary(study)
    subset, capped = study_plots.plot_subset(study)
    return (study_plots.memory_study(directions, subset) if capped else study), capped, best


@st.cache_data(ttl=60, max_entries=64, show_spinner="Drawing...")
def cached_figure(
    url: str, study_name: str, version: tuple, states: tuple[str, ...], kind: str, objective: int
):
    study, _, _ = plot_study(url, study_name, version, states)
    return study_plots.figure(study, kind, objective)


by_name = {s["name"]: s for s in studies}
names = list(by_name)
wanted = st.query_params.get("study")
name = st.selectbox(
    "Study", names, index=names.index(wanted) if wanted in by_name else 0, key="study",
    format_func=lambda n: f"{n} ({by_name[n]['n_trials']} trials)",
)  # fmt: skip
info = by_name[name]
counts = info["counts"]
st.caption(
    f"{'Directions' if len(info['directions']) > 1 else 'Direction'}: "
    + ", ".join(d.lower() for d in info["directions"])
)
cols = st.columns(len(queries.TRIAL_STATES))
for col, state in zip(cols, queries.TRIAL_STATES, strict=True):
    col.metric(state.lower(), counts.get(state, 0))

present = [s for s in queries.TRIAL_STATES if counts.get(s)]
c1, c2 = st.columns([3, 1])
hide_pruned = c2.toggle("Hide pruned trials", value=False, key="hide_pruned")
states = c1.multiselect(
    "Trial states",
    present,
    default=[s for s in present if not (hide_pruned and s == "PRUNED")],
    key="trial_states",
)
if hide_pruned:
    states = [s for s in states if s != "PRUNED"]

version = tuple(sorted(counts.items()))
directions, trials = load_trials(storage_url, name, version)
key = (storage_url, name, version, tuple(states))
multi = len(directions) > 1
_, capped, best = plot_study(*key)
if best.get("complete"):
    if multi:
        st.caption(f"{best['pareto']} trial(s) on the Pareto front.")
    else:
        st.success(
            f"Best trial #{best['best_number']}: value {best['best_value']:.6g} with {best['best_params']}"
        )
if capped:
    st.caption(f"Plots draw {study_plots.PLOT_TRIAL_CAP:,} of the selected trials (evenly spaced, best ones "
               "included); the Trials tab lists every one.")  # fmt: skip

objective = 0
if multi:
    objective = st.selectbox(
        "Objective for the single-objective plots",
        range(len(directions)),
        format_func=lambda i: f"objective {i} ({directions[i]})",
        key="objective",
    )


def show(kind: str) -> None:
    fig = cached_figure(*key, kind, objective)
    if isinstance(fig, str):
        st.info(fig)
    else:
        st.plotly_chart(fig, key=kind)


tabs = st.tabs(
    [
        "History",
        "Intermediate values",
        "Parallel coordinates",
        "Importances",
        "Pareto front",
        "Timeline",
        "Trials",
    ]
)
for tab, kind in zip(tabs[:6], study_plots.KINDS, strict=True):
    with tab:
        show(kind)
with tabs[6]:
    total = source.count_trials(info, states, trials)
    page_size = 50
    pages = max(1, math.ceil(total / page_size))
    t1, t2 = st.columns([1, 1])
    page = int(t1.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="trial_page"))
    newest_first = t2.toggle("Newest first", value=False, key="trial_desc")
    rows = source.trials_page(
        info,
        states,
        trials,
        limit=page_size,
        offset=(page - 1) * page_size,
        descending=newest_first,
    )
    st.caption(f"{total} trial(s) in the selected states.")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="trials_table")
