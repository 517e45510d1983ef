"""``automl dashboard``: start the Streamlit app on the store (read-only), bound to 127.0.0.1.

The app runs as a ``streamlit run`` subprocess so that Streamlit owns its event loop and signal
handling; the store URL and index directories travel in environment variables (``AUTOML_DB``,
``AUTOML_INDEXES``), which every page script reads on each rerun.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import typer

from automl.commands.common import console, resolve_db_url
from automl.errors import UserError
from automl.redact import safe_url

APP_PATH = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def _app_path() -> Path:
    """``dashboard/app.py`` of this installation (source checkout or installed package)."""
    if APP_PATH.is_file():
        return APP_PATH
    try:
        import dashboard

        candidate = Path(dashboard.__file__).resolve().parent / "app.py"
    except ImportError:
        candidate = APP_PATH
    if not candidate.is_file():
        raise UserError(
            "the dashboard app is not installed (missing dashboard/app.py); "
            "install with pip install 'face-automl[dashboard]'"
        )
    return candidate


def streamlit_command(app: Path, *, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]


def dashboard_env(db_url: str, indexes: list[Path], storage: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["AUTOML_DB"] = db_url
    env["AUTOML_INDEXES"] = os.pathsep.join(str(p) for p in indexes)
    if storage:
        env["AUTOML_OPTUNA_STORAGE"] = storage
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env


def check_indexes(index: list[Path] | None) -> list[Path]:
    """The ``--index`` directories, resolved; a missing one is a one-line :class:`UserError`."""
    indexes = [p.expanduser().resolve() for p in (index or [])]
    missing = [str(p) for p in indexes if not p.is_dir()]
    if missing:
        problem = (
            f"not a directory: {', '.join(missing)}"
            if all(Path(m).exists() for m in missing)
            else f"index directory not found: {', '.join(missing)}"
        )
        raise UserError(f"--index: {problem} (build an index with automl index build)")
    return indexes


def check_bindable(host: str, port: int) -> None:
    """Fail now, in one line, where Streamlit would fail later with a traceback: a ``--host``
    that is not an address of this machine, a ``--port`` another program holds."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"--host {host}: not a known address ({reason})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            hint = "pick another --port" if exc.errno == errno.EADDRINUSE else "check --host and --port"
            raise UserError(f"cannot serve on {host}:{port}: {reason} ({hint})") from None


def dashboard(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; the default keeps it on this machine."
    ),
    index: list[Path] = typer.Option(None, "--index", help="A saved retrieval index directory (repeatable)."),
    storage: str = typer.Option(
        None, "--storage", help="Optuna storage URL of the HPO studies (default: the store URL)."
    ),
) -> None:
    """Open the dashboard: runs, live search curves, the DDPNAS distribution, HPO studies, retrieval.

    It serves on http://127.0.0.1:8501 unless --host / --port say otherwise, reads the store
    (--db) without writing to it, and stops with Ctrl+C.
    """
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise UserError(
            "streamlit is not installed; install the extra: pip install 'face-automl[dashboard]'"
        ) from None
    indexes = check_indexes(index)
    check_bindable(host, port)
    db_url = resolve_db_url(ctx)
    cmd = streamlit_command(_app_path(), host=host, port=port)
    console.print(f"dashboard on [bold]http://{host}:{port}[/] (store {safe_url(db_url)}); Ctrl+C stops it")
    proc = subprocess.Popen(cmd, env=dashboard_env(db_url, indexes, storage))
    # A SIGTERM to `automl dashboard` stops Streamlit too instead of orphaning it.
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code not in (0, -2, -15):
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
