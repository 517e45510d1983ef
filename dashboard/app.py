"""Entry point of the dashboard: ``streamlit run dashboard/app.py -- [--db URL] [--index DIR ...]``.

Normally started by ``automl dashboard``, which passes the store URL in ``AUTOML_DB`` and the index
directories in ``AUTOML_INDEXES``. The app only reads: the run store, the Optuna studies in the same
database and saved retrieval indexes.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts dashboard/ (not the repository root) on sys.path; make `dashboard.*` importable
# from a source checkout too.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.settings import load_settings, safe_url  # noqa: E402

# The favicon ships with the package: a Material-icon favicon makes the browser fetch an SVG from
# fonts.gstatic.com on every load (it fails offline); the page and menu icons use the bundled font.
FAVICON = Path(__file__).resolve().parent / "static" / "favicon.png"
st.set_page_config(page_title="automl dashboard", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page("views/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    st.Page("views/run.py", title="Run", icon=":material/monitoring:", url_path="run"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("views/hpo.py", title="HPO", icon=":material/tune:", url_path="hpo"),
    st.Page("views/retrieval.py", title="Retrieval", icon=":material/image_search:", url_path="retrieval"),
]

page = st.navigation(PAGES)
settings = load_settings()
st.sidebar.caption(f"store: `{safe_url(settings.db_url)}`")
page.run()
