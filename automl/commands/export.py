"""``automl export RUN_ID --format torchscript|onnx|json|nni [--out PATH]``.

Parses, calls :func:`automl.export_job.export_run` and prints. A train run's weights export in
every format; a search (or other) run has only its untrained genotype (json, nni), and the error
for a weights format names the command that gets weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from automl.commands.common import console, print_json, resolve_db_url
from automl.commands.options import JSON_RESULT_OPTION
from automl.errors import UserError
from automl.export_formats import EXPORT_FORMATS, check_format

if TYPE_CHECKING:
    from automl.export_job import NoTrainedWeightsError


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def _weights_hint(exc: NoTrainedWeightsError) -> UserError:
    """The library's error with the command that gets (or exports) trained weights."""
    run_id, fmt, trained = exc.run_id, exc.fmt, exc.trained_runs
    hint = (
        f"export its train run instead: `automl export {trained[0]} --format {fmt}`"
        if trained
        else f"train it first with `automl train {run_id}`, then export that train run"
    )
    return UserError(
        f"run {run_id} is a {exc.kind} run without trained weights, so it cannot be exported as {fmt}; "
        f"{hint} (or use --format json)"
    )


def export_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(
        ..., metavar="RUN_ID", help="A train run (weights) or a search run (json only)."
    ),
    fmt: str = typer.Option(..., "--format", "-f", help=f"One of: {', '.join(EXPORT_FORMATS)}."),
    out: Path = typer.Option(
        None,
        "--out",
        help="Output file (default in the run's directory: model.pt, model.onnx, genotype.json, "
        "nni_arch.json).",
    ),
    space: str = typer.Option(
        None,
        "--space",
        help="The run's search space; needed to export a user's NNI space (nni:module:Class) from a "
        "run whose stored config does not name it.",
    ),
    json_out: bool = JSON_RESULT_OPTION,
) -> None:
    """Export a trained network (TorchScript / ONNX) or a genotype (JSON) as a standalone file."""
    from automl.export_job import NoTrainedWeightsError, export_run, export_summary

    check_format(fmt)
    try:
        info = export_run(resolve_db_url(ctx), run_id, fmt, out, space=space)
    except NoTrainedWeightsError as exc:
        raise _weights_hint(exc) from None
    if json_out:
        print_json(export_summary(run_id, info))
        return
    console.print(f"[bold green]exported[/] run {run_id} as {info.format}: {info.path}")
    if info.sidecar:
        console.print(f"sidecar: {info.sidecar} (embedding_dim {info.meta.get('embedding_dim')})")
