"""``automl dashboard``: start the Streamlit app on the store (read-only), bound to 127.0.0.1.

The checks and the subprocess are :mod:`automl.dashboard_launch`; this command parses and calls.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands.common import console, resolve_db_url
from automl.redact import safe_url


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
    from automl.dashboard_launch import check_launch, serve

    indexes = check_launch(host, port, index)
    db_url = resolve_db_url(ctx)
    console.print(f"dashboard on [bold]http://{host}:{port}[/] (store {safe_url(db_url)}); Ctrl+C stops it")
    code = serve(db_url, host=host, port=port, indexes=indexes, storage=storage)
    if code not in (0, -2, -15):
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
