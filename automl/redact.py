"""Passwords out of everything shown or stored: database / storage URLs and free text.

``automl`` shows its store URL (``automl doctor``, the dashboard, ``automl hpo``) and stores
error messages (``automl_runs.error``) that may quote a URL. Both go through here:

* :func:`safe_url` -- a URL as SQLAlchemy renders it with ``hide_password=True``
  (``postgresql://u:***@host/db``), then :func:`redact` for what SQLAlchemy leaves (a
  ``?password=`` query argument) or cannot parse (``journal:PATH`` is returned as it is).
* :func:`redact` -- free text (exception messages): the password of every
  ``scheme://user:password@`` and every ``password=...`` becomes ``***``.
"""

from __future__ import annotations

import re

HIDDEN = "***"

_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):(?P<password>[^\s/]*)@")
"""``scheme://user:password@``: the password runs to the last ``@`` before a space or ``/``."""

_KEY_VALUE = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>[^\s&;'\"]+)", re.IGNORECASE)
"""``password=...`` in a URL's query string or a libpq ``key=value`` connection string."""


def redact(text: object) -> str:
    """``text`` with the password of every URL / connection string in it replaced by ``***``."""
    out = _USERINFO.sub(lambda m: f"{m['head']}:{HIDDEN}@", str(text))
    return _KEY_VALUE.sub(lambda m: f"{m['head']}{HIDDEN}", out)


def safe_url(url: object) -> str:
    """A database or Optuna storage URL fit to print or store: its password hidden."""
    text = str(url)
    try:
        from sqlalchemy.engine import make_url

        text = make_url(text).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL (journal:PATH, a typo): redact as text
        pass
    return redact(text)
