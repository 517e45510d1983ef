"""What this machine and installation can do: versions, CUDA and GPUs, FAISS, the store.

:func:`collect` never raises for a missing package or an unreachable store: it reports them, so
that it can say what is wrong with an installation. Its store URL never shows a password.
"""

from __future__ import annotations

import importlib
import platform

from automl.errors import UserError
from automl.redact import redact, safe_url

PACKAGES = (
    "numpy", "faiss", "optuna", "sqlalchemy", "alembic", "streamlit", "onnx", "onnxruntime", "cv2", "psycopg",
    "nni",
)  # fmt: skip
"""Packages whose version :func:`collect` reports (an optional extra may be missing)."""


def package_version(module: str) -> str:
    """``module``'s ``__version__`` (``installed`` without one), or why it cannot be imported."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - report any import failure, never crash the doctor
        return f"not available ({type(exc).__name__})"
    return str(getattr(mod, "__version__", "installed"))


def _faiss_gpus() -> int:
    try:
        import faiss

        return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # noqa: BLE001
        return 0


def store_status(db_url: str) -> dict[str, object]:
    """``db_url`` (password hidden), whether a store opens there (without migrating it), and
    why not (``db_error``, redacted) when it does not."""
    info: dict[str, object] = {"db_url": safe_url(db_url)}  # never its password, reachable or not
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


def collect(db_url: str) -> dict[str, object]:
    """Python, platform, torch and CUDA (GPU names, CPU threads), the versions of
    :data:`PACKAGES`, FAISS' GPUs and :func:`store_status` of ``db_url``, as one flat dict."""
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
    info.update({name: package_version(name) for name in PACKAGES})
    info["faiss_gpus"] = _faiss_gpus()
    info.update(store_status(db_url))
    return info
