"""Where the dashboard reads from: the store URL and the saved index directories.

``automl dashboard`` passes both through environment variables (``AUTOML_DB``,
``AUTOML_INDEXES``), because Streamlit re-executes page scripts and a plain module-level lookup
survives that; ``streamlit run dashboard/app.py -- --db URL --index DIR`` works too for people
who start Streamlit by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///automl.db"
LIVE_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    db_url: str
    index_dirs: tuple[Path, ...]
    optuna_storage: str


def _split_paths(value: str | None) -> list[Path]:
    return [Path(p).expanduser() for p in (value or "").split(os.pathsep) if p.strip()]


def load_settings(argv: list[str] | None = None) -> Settings:
    """Arguments after ``--`` win over the environment, which wins over the defaults."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    parser.add_argument("--index", action="append", default=[])
    parser.add_argument("--storage", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    db_url = args.db or os.environ.get("AUTOML_DB") or DEFAULT_DB_URL
    index_dirs = [Path(p).expanduser() for p in args.index] or _split_paths(os.environ.get("AUTOML_INDEXES"))
    storage = args.storage or os.environ.get("AUTOML_OPTUNA_STORAGE") or db_url
    return Settings(db_url=db_url, index_dirs=tuple(index_dirs), optuna_storage=storage)


def safe_url(url: str) -> str:
    """The URL with any password hidden (it is shown in the sidebar): :func:`automl.redact.safe_url`."""
    from automl.redact import safe_url as _safe_url

    return _safe_url(url)
