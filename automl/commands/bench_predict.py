"""``automl bench predict``: the prediction pipeline against the raw forward pass on the same crops,
and peak memory of a 1-minute against a 10-minute video, on synthetic videos.

The benchmark is :mod:`automl.bench_predict`; this command parses the options, calls
:func:`automl.bench_predict.predict_bench`, prints the tables and targets and writes the JSON report.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, print_table, write_report
from automl.commands.options import FIXED_SEED_OPTION, REPORT_OUT_OPTION
from automl.errors import UserError


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--frame-size must be WIDTHxHEIGHT, e.g. 640x360, not {text!r}") from None
    if w < 64 or h < 64:
        raise UserError(f"--frame-size must be at least 64x64, not {text}")
    return w, h


@bench_app.command("predict")
def bench_predict(
    model: Path = typer.Option(
        None, "--model", help="An exported model (model.pt); default: the untrained face-space network."
    ),
    image_size: int = typer.Option(24, "--image-size", min=8, help="Crop side of the default network."),
    channels: int = typer.Option(1, "--channels", min=1, max=3, help="1 (grey) or 3 (RGB), default network."),
    seconds: float = typer.Option(60, "--seconds", min=0.1, help="Length of the pipeline's video."),
    long_seconds: float = typer.Option(600, "--long-seconds", min=0.1, help="Length of the long RSS video."),
    batch: int = typer.Option(64, "--batch", min=1, help="Faces per forward pass (pipeline and raw)."),
    faces: int = typer.Option(2, "--faces", min=1, max=6, help="Faces drawn per frame."),
    frame_size: str = typer.Option("640x360", "--frame-size", help="Video frame WIDTHxHEIGHT."),
    repeats: int = typer.Option(2, "--repeats", min=1, help="Interleaved rounds; the best of each is kept."),
    raw_faces: int = typer.Option(4096, "--raw-faces", min=1, help="Faces timed in the raw forward pass."),
    modes: str = typer.Option(
        "every1,every5,side320,nodetect",
        "--modes",
        help="Pipeline modes: every1, every5 (detect every 5th frame), side320 (detect on frames "
        "shrunk to 320 px), nodetect (aligned-crop video).",
    ),
    skip_rss: bool = typer.Option(False, "--skip-rss", help="No peak-RSS runs (no long video)."),
    rss_detect_every: int = typer.Option(
        None,
        "--rss-detect-every",
        min=1,
        help="Detection interval of the RSS runs (default: the smallest that keeps the long run near 3 min).",
    ),
    cpu_threads: int = typer.Option(
        None,
        "--cpu-threads",
        min=1,
        help="torch threads on CPU (default: predict's, one core fewer than the machine has).",
    ),
    stages: bool = typer.Option(True, "--stages/--no-stages", help="Also time each stage alone."),
    work_dir: Path = typer.Option(
        None, "--work-dir", help="Keep the videos and model here (default: temporary)."
    ),
    seed: int = FIXED_SEED_OPTION,
    out: Path = REPORT_OUT_OPTION,
) -> None:
    """Pipeline faces/s against the raw forward pass, and peak RSS over video length (synthetic)."""
    from automl.bench_predict import pipeline_table, predict_bench, rss_table, stage_table, target_lines

    if channels not in (1, 3):
        raise UserError(f"--channels must be 1 or 3, not {channels}")
    size = _frame_size(frame_size)
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with console.status("benchmarking") as status:
        report = predict_bench(
            model=model,
            seconds=seconds,
            long_seconds=long_seconds,
            image_size=image_size,
            channels=channels,
            batch=batch,
            faces=faces,
            size=size,
            repeats=repeats,
            raw_faces=raw_faces,
            modes=[m.strip() for m in modes.split(",") if m.strip()],
            rss=not skip_rss,
            rss_detect_every=rss_detect_every,
            cpu_threads=cpu_threads,
            stages=stages,
            seed=seed,
            work_dir=work_dir,
            progress=lambda s: status.update(s),
        )
    print_table(*pipeline_table(report), left=("device", "what"))
    for table in (stage_table(report), rss_table(report)):
        if table is not None:
            print_table(*table, left=("device", "stage", "per", "video"))
    for line in target_lines(report):
        console.print(line, markup=False)
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command attaches to the shared ``bench`` group at import; nothing else to add."""
    del app


@bench_app.command("crops")
def bench_crops(
    model: Path = typer.Argument(..., metavar="MODEL", help="A trained expression model of synth:fer."),
    n: int = typer.Option(400, "--n", min=10, help="Synthetic faces."),
    seed: int = typer.Option(5, "--seed", help="Seed of the faces (not the model's training seed)."),
    out: Path = REPORT_OUT_OPTION,
) -> None:
    """Accuracy of a trained expression model per crop rule: bare tiles, box + margin, training framing."""
    from automl.bench_crops import crop_bench, crop_table

    check_report_out(out)
    with console.status("benchmarking crops"):
        report = crop_bench(model, n=n, seed=seed)
    print_table(*crop_table(report), left=("crop",))
    write_report(out, report)
