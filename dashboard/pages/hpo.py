"""HPO: an Optuna study's history, intermediate values, parameters and Pareto front; its trials.

Plots use ``optuna.visualization`` on an in-memory copy of the study holding only the trial states
the user keeps (so "hide pruned" applies to the plots too, and nothing can write to the storage).
The trial table is paginated in SQL (in Python for a journal-file storage).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pandas as pd
import streamlit as st
from optuna.trial import FrozenTrial, TrialState

from dashboard import queries, ui
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
def load_trials(url: str, study_name: str, n_trials: int) -> tuple[list[str], list[FrozenTrial]]:
    """All trials of a study through Optuna's storage API (``n_trials`` keys the cache)."""
    return studies_mod.load_study_trials(url, study_name)


def memory_study(directions: list[str], trials: list[FrozenTrial]) -> optuna.Study:
    study = optuna.create_study(directions=directions)
    study.add_trials(trials)
    return study


def show_figure(name: str, build: Any, key: str) -> None:
    """Draw one optuna.visualization figure; a study that cannot make it gets a sentence instead."""
    try:
        with warnings.catch_warnings():
            # Optuna warns that custom targets are taken as minimised; target_kwargs() handles it.
            warnings.simplefilter("ignore", UserWarning)
            fig = build()
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        st.info(f"{name}: not available for these trials ({str(exc).splitlines()[0]}).")
        return
    st.plotly_chart(fig, key=key)


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

directions, trials = load_trials(storage_url, name, info["n_trials"])
kept = [
    t
    for t in trials
    if t.state.name in states and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
]
study = memory_study(directions, kept)
multi = len(directions) > 1
completed = [t for t in kept if t.state == TrialState.COMPLETE]
if completed:
    if multi:
        st.caption(f"{len(study.best_trials)} trial(s) on the Pareto front.")
    else:
        best = study.best_trial
        st.success(f"Best trial #{best.number}: value {best.value:.6g} with {best.params}")

objective = 0
if multi:
    objective = st.selectbox(
        "Objective for the single-objective plots",
        range(len(directions)),
        format_func=lambda i: f"objective {i} ({directions[i]})",
        key="objective",
    )


def target_kwargs(*, for_importance: bool = False) -> dict[str, Any]:
    """Multi-objective plots need one objective as target. Importance evaluators assume the target
    is minimised, so a maximised objective is negated there (its importances are unchanged)."""
    if not multi:
        return {}
    sign = -1.0 if for_importance and directions[objective] == "maximize" else 1.0
    return {"target": lambda t: sign * t.values[objective], "target_name": f"objective {objective}"}


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
vis = optuna.visualization
with tabs[0]:
    show_figure(
        "Optimisation history", lambda: vis.plot_optimization_history(study, **target_kwargs()), "history"
    )
with tabs[1]:
    show_figure("Intermediate values", lambda: vis.plot_intermediate_values(study), "intermediate")
with tabs[2]:
    show_figure(
        "Parallel coordinates", lambda: vis.plot_parallel_coordinate(study, **target_kwargs()), "parallel"
    )
with tabs[3]:
    if len(completed) < 2:
        st.info("Parameter importances need at least two completed trials.")
    else:
        show_figure(
            "Importances",
            lambda: vis.plot_param_importances(study, **target_kwargs(for_importance=True)),
            "importances",
        )
with tabs[4]:
    if not multi:
        st.info("This study has a single objective: its Pareto front is the best trial above.")
    elif len(directions) > 3:
        st.info("Pareto front plots are drawn for 2 or 3 objectives.")
    else:
        show_figure("Pareto front", lambda: vis.plot_pareto_front(study), "pareto")
with tabs[5]:
    show_figure("Timeline", lambda: vis.plot_timeline(study), "timeline")
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
