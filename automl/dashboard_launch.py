"""Start the Streamlit dashboard (``dashboard/app.py``) as a subprocess on a store, read-only.

The app runs as a ``streamlit run`` subprocess so that Streamlit owns its event loop and signal
handling; the store URL and index directories travel in environment variables (``AUTOML_DB``,
``AUTOML_INDEXES``, ``AUTOML_OPTUNA_STORAGE``), which every page script reads on each rerun.
:func:`check_launch` fails in one line (:class:`~automl.errors.UserError`) where Streamlit would
fail later with a traceback; :func:`serve` runs the app until it exits.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from automl.errors import UserError

APP_PATH = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
EXTRA_HINT = "install with pip install 'face-automl[dashboard]'"


def app_path() -> Path:
    """``dashboard/app.py`` of this installation (source checkout or installed package)."""
    if APP_PATH.is_file():
        return APP_PATH
    try:
        import dashboard

        candidate = Path(dashboard.__file__).resolve().parent / "app.py"
    except ImportError:
        candidate = APP_PATH
    if not candidate.is_file():
        raise UserError(f"the dashboard app is not installed (missing dashboard/app.py); {EXTRA_HINT}")
    return candidate


def streamlit_command(app: Path, *, host: str, port: int) -> list[str]:
    """``python -m streamlit run APP`` on ``host:port``: headless, no usage statistics, no file
    watcher, and the minimal toolbar (no "Deploy" button)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",  # no Deploy button: this dashboard is a local viewer
    ]  # fmt: skip


def dashboard_env(db_url: str, indexes: list[Path], storage: str | None) -> dict[str, str]:
    """This process' environment plus the store URL, the index directories and the Optuna storage."""
    env = dict(os.environ)
    env["AUTOML_DB"] = db_url
    env["AUTOML_INDEXES"] = os.pathsep.join(str(p) for p in indexes)
    if storage:
        env["AUTOML_OPTUNA_STORAGE"] = storage
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env


def check_indexes(index: list[Path] | None) -> list[Path]:
    """The index directories, resolved; a missing one is a one-line :class:`UserError`."""
    indexes = [p.expanduser().resolve() for p in (index or [])]
    missing = [str(p) for p in indexes if not p.is_dir()]
    if missing:
        problem = (
            f"not a directory: {', '.join(missing)}"
            if all(Path(m).exists() for m in missing)
            else f"index directory not found: {', '.join(missing)}"
        )
        raise UserError(f"{problem}; build an index with automl index build", argument="index")
    return indexes


def check_bindable(host: str, port: int) -> None:
    """Fail now, in one line, where Streamlit would fail later with a traceback: a ``host`` that
    is not an address of this machine, a ``port`` another program holds."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"host {host} is not a known address ({reason})", argument="host") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            hint, argument = ("pick another port", "port") if in_use else ("check the host and port", "host")
            reason = exc.strerror or str(exc)
            raise UserError(f"cannot serve on {host}:{port}: {reason}; {hint}", argument=argument) from None


def check_launch(host: str, port: int, index: list[Path] | None) -> list[Path]:
    """Everything a launch needs, checked before it starts: Streamlit and the app installed, the
    index directories there (returned, resolved), ``host:port`` free to bind."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise UserError(f"streamlit is not installed; {EXTRA_HINT}") from None
    app_path()
    indexes = check_indexes(index)
    check_bindable(host, port)
    return indexes


def serve(db_url: str, *, host: str, port: int, indexes: list[Path], storage: str | None = None) -> int:
    """Run the dashboard until it exits; its exit code (negative: the signal that stopped it).

    A SIGTERM to this process stops Streamlit too instead of orphaning it; Ctrl+C stops it
    (terminated, killed after 10 s) and is raised again.
    """
    cmd = streamlit_command(app_path(), host=host, port=port)
    proc = subprocess.Popen(cmd, env=dashboard_env(db_url, indexes, storage))
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
