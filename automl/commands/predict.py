"""``automl predict MODEL INPUT...``: per-face AU / expression predictions for photos, folders and
videos, as CSV (OpenFace's column names) or JSON Lines.

Parsing, calling :func:`automl.prediction.predict` and printing; the columns are documented there
and in the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from automl.commands.common import (
    console,
    err_console,
    hashing_errors,
    print_json,
    print_signal_warnings,
    progress_bar,
    resolve_db_url,
)
from automl.commands.options import DeviceName
from automl.errors import UserError

Opt, Arg = typer.Option, typer.Argument


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)


def predict_command(
    ctx: typer.Context,
    model: Annotated[
        str, Arg(metavar="MODEL", help="An exported model (model.pt / model.onnx) or a train run id.")
    ],
    inputs: Annotated[list[Path], Arg(metavar="INPUT...", help="Photos, folders (recursive) and videos.")],
    out: Annotated[
        str | None, Opt("--out", help="One file for all inputs (default predictions.csv; '-': stdout).")
    ] = None,
    out_dir: Annotated[
        Path | None, Opt("--out-dir", help="One file per input in this folder instead.")
    ] = None,
    fmt: Annotated[
        str | None, Opt("--format", help="csv or jsonl (default: from --out's name, else csv).")
    ] = None,
    batch: Annotated[int, Opt("--batch", help="Faces per forward pass (batched across frames).")] = 64,
    device: Annotated[DeviceName, Opt("--device", help="auto, cpu or cuda.")] = DeviceName.auto,
    no_detect: Annotated[
        bool, Opt("--no-detect", help="The inputs are aligned face crops: no detection.")
    ] = False,
    detect_every: Annotated[
        int, Opt("--detect-every", help="Videos: detect on every Nth frame, track in between.")
    ] = 1,
    detect_side: Annotated[
        int, Opt("--detect-side", help="Videos: detect on frames shrunk to this side (0: full).")
    ] = 640,
    frame_step: Annotated[int, Opt("--frame-step", help="Videos: every Nth frame only.")] = 1,
    threshold: Annotated[float, Opt("--threshold", help="AU models: probability for AU..._c = 1.")] = 0.5,
    cpu_threads: Annotated[int | None, Opt("--cpu-threads", min=1, help="torch threads on CPU.")] = None,
    json_out: Annotated[bool, Opt("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Apply a trained network to photos, folders and videos: one row per face and frame."""
    from automl.prediction import predict

    if json_out and out == "-":
        raise UserError("--json prints the summary on stdout; write the rows to a file (--out FILE)")
    target = out if out is not None or out_dir is not None else "predictions.csv"
    with hashing_errors(), progress_bar(stderr=True) as on_progress:
        result = predict(
            model, inputs, out=target, out_dir=out_dir, fmt=fmt, batch_size=batch,
            detect=not no_detect, detect_every=detect_every, detect_side=detect_side or None,
            frame_step=frame_step,
            threshold=threshold, device=device.value, cpu_threads=cpu_threads,
            store=resolve_db_url(ctx) if model.isdigit() else None, progress=on_progress,
        )  # fmt: skip
    if model.isdigit():  # say which file the run id stood for (exported on first use)
        err_console.print(f"model: train run {model}'s export {result.model['path']}", highlight=False,
                          soft_wrap=True, markup=False)  # fmt: skip
    for line in result.notes():
        err_console.print(f"WARNING: {line}", style="yellow", highlight=False, soft_wrap=True, markup=False)
    print_signal_warnings(result.model_signal, "the model's training run")
    print_signal_warnings(result.signal, "these predictions")
    if json_out:
        print_json(result.to_dict())
        return
    s = result.stats
    if result.outputs == ["-"]:
        where = "stdout"
    elif len(result.outputs) <= 3:
        where = ", ".join(result.outputs)
    else:
        where = f"{len(result.outputs)} files in {out_dir}"
    skipped = f", {len(s.skipped)} input(s) skipped" if s.skipped else ""
    report = (
        f"[bold green]predicted[/] {s.faces} face(s) in {s.frames} frame(s) of {s.inputs} input(s) "
        f"({s.empty_frames} frame(s) without a face{skipped}) in {result.wall_s:.1f} s "
        f"({result.frames_per_s:.0f} frames/s): {result.rows} rows -> {where}"
    )
    (err_console if result.outputs == ["-"] else console).print(report, highlight=False, soft_wrap=True)
