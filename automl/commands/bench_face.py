"""``automl bench face``: occlusion-robust expression recognition by distillation, in one run.

The benchmark (rows, the ``recovered`` share, the built-in genotypes) is :mod:`automl.bench_face`;
this command parses the options, calls :func:`automl.bench_face.face_bench`, prints the table and
writes the JSON report.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, print_table, progress_bar, write_report
from automl.commands.options import FIXED_SEED_OPTION, REPORT_OUT_OPTION, DeviceName


class Part(StrEnum):
    lower = "lower"
    upper = "upper"


@bench_app.command("face")
def bench_face(
    occlude: Part = typer.Option(Part.lower, "--occlude", help="Half of the face hidden from the student."),
    space: str = typer.Option(
        None,
        "--space",
        help="face (default) or darts: the built-in genotype used for every row (face trains fastest); "
        "with --genotype, the genotype's space (required for a user's nni:module:Class space).",
    ),
    genotype_file: Path = typer.Option(None, "--genotype", help="JSON genotype (fer) instead of --space's."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Training epochs of every network."),
    n: int = typer.Option(600, "--n", min=16, help="Synthetic faces (train + test)."),
    image_size: int = typer.Option(32, "--image-size", min=8, help="Face crop side in pixels."),
    init_channels: int = typer.Option(8, "--init-channels", min=1, help="Network width."),
    layers: int = typer.Option(6, "--layers", min=1, help="Cells of a darts network."),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Training batch size."),
    lr: float = typer.Option(0.05, "--lr", min=1e-6, help="SGD learning rate (cosine schedule)."),
    temperature: float = typer.Option(4.0, "--temperature", help="Soft-target temperature T."),
    triplet_weight: float = typer.Option(0.0, "--triplet-weight", min=0, help="Triplet term weight."),
    kd_weight: float = typer.Option(
        1.0, "--kd-weight", min=0, help="Soft-target term weight (lambda / (1 - lambda) of the paper)."
    ),
    init_control: bool = typer.Option(
        True, "--init-control/--no-init-control", help="Also train the teacher-init control without KD."
    ),
    device: DeviceName = typer.Option(DeviceName.auto, "--device", help="auto, cpu or cuda."),
    seed: int = FIXED_SEED_OPTION,
    out: Path = REPORT_OUT_OPTION,
) -> None:
    """Teacher vs occluded baseline vs distilled student on synthetic FER, same budget, one run."""
    from automl.bench_face import bench_config, face_bench, recovered_line, report_table

    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    cfg = bench_config(image_size=image_size, n=n, epochs=epochs, init_channels=init_channels, layers=layers,
                       device=device.value, batch_size=batch_size, lr=lr)  # fmt: skip
    with progress_bar() as progress:
        report = face_bench(genotype_file, cfg, space=space, occlude=occlude.value, temperature=temperature,
                            triplet_weight=triplet_weight, kd_weight=kd_weight, init_control=init_control,
                            seed=seed, progress=progress)  # fmt: skip
    print_table(*report_table(report))
    console.print(recovered_line(report), markup=False)
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command lives on the shared ``bench`` group (registered by :mod:`automl.cli`)."""
    del app
