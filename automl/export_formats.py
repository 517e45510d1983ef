"""The export formats and their default file names: cheap to import (no torch).

:mod:`automl.exporting` does the exporting; the CLI needs only these names to build its options.
"""

from __future__ import annotations

from automl.errors import UserError

EXPORT_FORMATS = ("torchscript", "onnx", "json", "nni")
DEFAULT_FILENAMES = {
    "torchscript": "model.pt",
    "onnx": "model.onnx",
    "json": "genotype.json",
    "nni": "nni_arch.json",
}


def check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise UserError(
            f"unknown export format '{fmt}' (choose one of: {', '.join(EXPORT_FORMATS)})", argument="format"
        )
