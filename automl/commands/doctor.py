"""``automl doctor``: what this machine and installation can do, in one table."""

from __future__ import annotations

import importlib
import platform

import typer
from rich.markup import escape
from rich.table import Table

from automl.commands.common import console, print_json, resolve_db_url
from automl.errors import UserError
from automl.redact import redact, safe_url


def _version(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - report any import failure, never crash the doctor
        return f"not available ({type(exc).__name__})"
    return str(getattr(mod, "__version__", "installed"))


def collect(db_url: str) -> dict[str, object]:
    import torch

    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "gpu_count": torch.cuda.device_count(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
    }
    for name in (
        "numpy",
        "faiss",
        "optuna",
        "sqlalchemy",
        "alembic",
        "streamlit",
        "onnx",
        "onnxruntime",
        "cv2",
        "psycopg",
        "nni",
    ):
        info[name] = _version(name)
    try:
        import faiss

        info["faiss_gpus"] = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # noqa: BLE001
        info["faiss_gpus"] = 0
    info["db_url"] = safe_url(db_url)  # never its password, reachable or not
    try:
        from automl.store import open_store

        store = open_store(db_url, migrate=False)
        info["db_url"] = store.safe_url
        info["db_reachable"] = True
        store.close()
    except UserError as exc:
        info["db_reachable"] = False
        info["db_error"] = redact(exc)
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it never crashes (or leaks the URL)
        info["db_reachable"] = False
        first = (str(exc).strip().splitlines() or [""])[0]
        info["db_error"] = redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    return info


def doctor(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Versions, CUDA and GPUs, and whether the store is reachable.

    The store URL is shown with its password hidden.
    """
    info = collect(resolve_db_url(ctx))
    if json_out:
        print_json(info)
        return
    table = Table(title="automl doctor", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in info.items():
        cell = escape(str(value))  # a value is text, never markup
        if key == "db_reachable":
            cell = "[green]yes[/]" if value else "[red]no[/]"
        table.add_row(key, cell)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
