"""Streamlit helpers shared by the pages: the read-only engine, empty states, formatting."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from automl.errors import UserError
from automl.redact import redact, safe_url
from automl.store.engine import sqlite_path
from automl.store.repository import Store
from dashboard import queries
from dashboard.settings import Settings, load_settings

START_HINT = """
**Nothing recorded yet.** Start an architecture search and watch it here:

```bash
automl search                          # DDPNAS on synthetic faces (FER), quick preset, a few minutes on CPU
automl search --task au --strategy random --epochs-scale 0.5
automl hpo RUN_ID --trials 20          # tune the training of the found network (Optuna)
automl dashboard --db {url}
```
Runs appear on the **Runs** page as soon as they start; the **Run** page follows them live.
"""


def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    return Store(url, readonly=True).engine


def engine_or_none(url: str | None = None, *, need_runs_tables: bool = True) -> Engine | None:
    """The read-only engine, or None (with a friendly message shown) when the store is not there.

    A SQLite file that does not exist yet is reported instead of opened: opening it would create
    an empty file, and the dashboard never writes.
    """
    url = url or settings().db_url
    try:
        db_file = sqlite_path(url)
        if db_file is not None and not db_file.exists():
            st.info(f"No store at `{db_file}` yet.")
            st.markdown(START_HINT.format(url=safe_url(url)))
            return None
        engine = _engine_for(url)
        if need_runs_tables and not queries.store_ready(engine):
            st.info("The store exists but has no runs tables yet.")
            st.markdown(START_HINT.format(url=safe_url(url)))
            return None
        return engine
    except (UserError, SQLAlchemyError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        st.error(f"Cannot read the store at `{safe_url(url)}`: {redact(first)}")
        return None


def quiet_engine(url: str | None = None) -> Engine | None:
    """The store's engine when it exists and has its tables, else None, without any message
    (for pages where the store is optional, like Retrieval)."""
    url = url or settings().db_url
    try:
        db_file = sqlite_path(url)
        if db_file is not None and not db_file.exists():
            return None
        engine = _engine_for(url)
        return engine if queries.store_ready(engine) else None
    except (UserError, SQLAlchemyError, OSError):
        return None


def require_runs(engine: Engine) -> bool:
    if queries.count_runs(engine) == 0:
        st.info("The store has no runs yet.")
        st.markdown(START_HINT.format(url=safe_url(settings().db_url)))
        return False
    return True


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def fmt_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


MISSING = "-"


def fmt_param(value: Any) -> str:
    """A hyper-parameter as a person reads it: ``3.16e-03`` for a small float (a log-scale lr),
    4 significant digits otherwise, integers and choices as they are."""
    if isinstance(value, bool) or not isinstance(value, float):
        return MISSING if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def filled(frame: pd.DataFrame, digits: int = 4, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """The frame as a table shows it without ``None``: Streamlit's grid prints a missing cell as a
    faded "None", which reads as a value. Text columns get ``-``; a numeric column with gaps
    becomes text (``digits`` significant digits, ``-`` for the gaps) -- it then sorts as text, which
    keeps the order of same-sign values of one magnitude, the common case of a metric column.
    Complete numeric columns keep their type (and their column_config number formats), and so do
    the ``keep`` columns (a progress bar's unknown total stays an empty bar)."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if name in keep or not column.isna().any():
            continue
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            out[name] = [MISSING if pd.isna(v) else fmt_number(float(v), digits) for v in column]
        elif column.dtype == object or pd.api.types.is_string_dtype(column):
            out[name] = [MISSING if _missing(v) else v for v in column]
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def signal_banner(signal: Any, what: str) -> None:
    """A red banner when the learning checks (:mod:`automl.learning_checks`) found no sign of
    learning, a yellow one for weak findings, nothing when they passed or never ran."""
    from automl.learning_checks import signal_flag

    flag = signal_flag(signal if isinstance(signal, dict) else None)
    if flag not in ("NO SIGNAL", "weak"):
        return
    lines = "\n".join(f"- `{w.get('code')}`: {w.get('message')}" for w in signal.get("warnings") or [])
    if flag == "NO SIGNAL":
        st.error(
            f"**NO SIGNAL: {what} shows no sign of learning** "
            f"({signal.get('split', 'evaluated')} split); do not present it as a result.\n\n{lines}",
            icon=":material/warning:",
        )
    else:
        st.warning(f"**Learning checks: weak findings for {what}**\n\n{lines}", icon=":material/info:")


def run_picker(engine: Engine, *, key: str = "run_pick") -> int | None:
    """Pick a run: the ``?run=ID`` query parameter, else a choice among the newest runs."""
    choices = queries.recent_run_choices(engine)
    labels = dict(choices)
    requested: int | None = None
    raw = st.query_params.get("run")
    if raw is not None and str(raw).isdigit():
        requested = int(raw)
        if requested not in labels and queries.get_run(engine, requested) is not None:
            labels = {requested: f"#{requested}", **labels}
    ids = list(labels)
    if not ids:
        return None
    # A link to another run (``?run=``) must win over the picker's remembered value, but only once:
    # afterwards the picker drives the query parameter. The value lives in session state only (no
    # ``index=``), so Streamlit does not warn about two sources of the default.
    seen = f"{key}__query"
    if requested in ids and st.session_state.get(seen) != raw:
        st.session_state[key] = requested
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    run_id = st.selectbox("Run", ids, format_func=lambda i: labels[i], key=key)
    if run_id is not None:
        st.query_params["run"] = str(run_id)
        st.session_state[seen] = str(run_id)
    return run_id
