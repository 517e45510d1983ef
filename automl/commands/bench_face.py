"""``automl bench face``: occlusion-robust expression recognition by distillation (seed 003), in one run.

Same data, genotype, epochs and seed for every row, so the rows differ only in what the network
saw and learned from:

1. **teacher**: trained and tested on full faces (the ceiling);
2. **teacher, occluded test**: that teacher tested on occluded faces (what occlusion costs a model
   that never saw it);
3. **occluded baseline**: trained and tested on occluded faces, from scratch;
4. **occluded, teacher init** (control, ``--init-control``): the baseline started from the
   teacher's weights but without the distillation loss, so the gain of row 5 over row 3 can be
   split into "pre-training on full faces" and "soft targets";
5. **distilled student**: trained on occluded faces against the teacher (soft targets at
   ``--temperature``, optional triplet term), started from the teacher's weights.

``recovered`` = (student - baseline) / (teacher - baseline): the share of the accuracy lost to
occlusion that distillation wins back (the issue's target is at least half).
"""

from __future__ import annotations

import os
import platform
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import console, guard_genotype_space, write_report
from automl.errors import UserError

FACE_GENOTYPE: dict[str, Any] = {
    "space": "face",
    "task": "fer",
    "head": "linear",
    "depths": [1, 1, 2],
    "ops": ["mb_k3_e3", "mb_k5_e3", "mb_k3_e3", "mb_k3_e6"],
}
# The DARTS (second order) cell, in this project's [op, input] form.
DARTS_GENOTYPE: dict[str, Any] = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
               ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
}  # fmt: skip


class Space(StrEnum):
    face = "face"
    darts = "darts"


class Part(StrEnum):
    lower = "lower"
    upper = "upper"


def bench_config(
    *,
    image_size: int,
    n: int,
    epochs: int,
    init_channels: int,
    layers: int,
    device: str,
    batch_size: int = 32,
    lr: float = 0.05,
) -> Any:
    """The quick preset on synthetic FER, resized to the benchmark's budget."""
    from automl.config import load_config

    return load_config(
        "quick",
        None,
        overrides={
            "search": {"data": "synth:fer", "device": device},
            "data": {"image_size": image_size, "n": n},
            "train": {
                "epochs": epochs,
                "init_channels": init_channels,
                "layers": layers,
                "batch_size": batch_size,
                "lr": lr,
            },
        },
    )


def _row(
    name: str, train_faces: str, test_faces: str, metrics: dict[str, Any], seconds: float | None
) -> dict:
    return {
        "name": name,
        "train_faces": train_faces,
        "test_faces": test_faces,
        "accuracy": float(metrics["accuracy"]),
        "loss": float(metrics.get("loss", float("nan"))),
        "train_seconds": None if seconds is None else round(seconds, 2),
    }


def run_bench(
    genotype: dict[str, Any],
    cfg: Any,
    *,
    occlude: str,
    temperature: float,
    triplet_weight: float,
    kd_weight: float = 1.0,
    init_control: bool = True,
    seed: int = 0,
    progress: Any = None,
    allow_user_code: str | None = None,
) -> dict[str, Any]:
    """Train the teacher, the occluded baseline (and control) and the distilled student; report.

    ``allow_user_code``: the ``nni:`` space the user chose explicitly (``--space``); a genotype of
    another user space is refused before anything is imported."""
    from automl.commands.train import DistillOptions, make_distillation
    from automl.data.augment import occlude as occlude_batch
    from automl.data.spec import load_data
    from automl.data.tasks import make_task
    from automl.distill import init_from_teacher
    from automl.train import evaluate, resolve_device, train_genotype

    device = resolve_device(cfg.search.device)
    data = load_data(
        "synth:fer",
        image_size=cfg.data.image_size,
        channels=cfg.data.channels,
        fold=cfg.data.fold,
        n=cfg.data.n,
        seed=seed,
    )
    task = make_task(data)

    def hide(x: Any) -> Any:
        return occlude_batch(x, occlude)

    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    def train(**hooks: Any) -> Any:
        return train_genotype(
            genotype, data, task, cfg.train, device=device, seed=seed, augment_cfg=cfg.augment,
            allow_user_code=allow_user_code, **hooks
        )

    rows = []
    say("teacher on full faces")
    teacher = train()
    rows.append(_row("teacher", "full", "full", teacher.metrics, teacher.wall_time))
    occluded_test = evaluate(teacher.model, data.test_x, data.test_y, task, device=device, transform=hide)
    rows.append(_row("teacher, occluded test", "full", occlude, occluded_test, None))
    say("occluded baseline")
    baseline = train(transform=hide)
    rows.append(_row("occluded baseline", occlude, occlude, baseline.metrics, baseline.wall_time))
    if init_control:
        say("occluded, started from the teacher (no distillation loss)")
        control = train(transform=hide, prepare_model=lambda m: init_from_teacher(m, teacher.model))
        rows.append(_row("occluded, teacher init", occlude, occlude, control.metrics, control.wall_time))
    say("distilled student")
    options = DistillOptions(
        "bench", temperature=temperature, kd_weight=kd_weight, triplet_weight=triplet_weight
    )
    distill = make_distillation(teacher.model, occlude, options, seed=seed)
    student = train(
        transform=distill.transform, extra_loss=distill.extra_loss, prepare_model=distill.prepare_model
    )
    rows.append(_row("distilled student", occlude, occlude, student.metrics, student.wall_time))

    top, base, dist = rows[0]["accuracy"], rows[2]["accuracy"], rows[-1]["accuracy"]
    lost = top - base
    settings = {k: v for k, v in distill.settings.items() if k != "teacher"}
    return {
        "benchmark": "face-occlusion-distillation",
        "data": "synth:fer (synthetic faces)",
        "synthetic": True,
        "genotype": genotype,
        "occlude": occlude,
        "image_size": data.image_size,
        "n": cfg.data.n,
        "train_samples": int(data.train_x.shape[0]),
        "test_samples": int(data.test_x.shape[0]),
        "epochs": cfg.train.epochs,
        "init_channels": cfg.train.init_channels,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "seed": seed,
        "device": str(device),
        "params": teacher.params,
        "distill": settings,
        "rows": rows,
        "lost_to_occlusion": lost,
        "recovered": (dist - base) / lost if lost > 0 else None,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }


def _table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"occlusion ({report['occlude']} half hidden), synthetic faces {report['image_size']}px, "
        f"{report['epochs']} epochs each"
    )
    for col in ("model", "trained on", "tested on", "accuracy", "test loss", "train s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in report["rows"]:
        table.add_row(
            r["name"],
            r["train_faces"],
            r["test_faces"],
            f"{r['accuracy']:.3f}",
            f"{r['loss']:.3f}",
            "-" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}",
        )
    return table


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
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", help="Write the JSON report here."),
) -> None:
    """Teacher vs occluded baseline vs distilled student on synthetic FER, same budget, one run."""
    from automl.commands.train import read_genotype_file

    allow_user_code = None
    if genotype_file:
        genotype = read_genotype_file(genotype_file)
        allow_user_code = guard_genotype_space(genotype, space)
    elif space in (None, Space.face.value, Space.darts.value):
        genotype = DARTS_GENOTYPE if space == Space.darts.value else FACE_GENOTYPE
    else:
        raise UserError(
            f"--space {space} has no built-in genotype (use face or darts, or pass --genotype FILE)"
        )
    cfg = bench_config(
        image_size=image_size,
        n=n,
        epochs=epochs,
        init_channels=init_channels,
        layers=layers,
        device=device,
        batch_size=batch_size,
        lr=lr,
    )
    t0 = time.perf_counter()
    with console.status("training") as status:
        report = run_bench(
            genotype,
            cfg,
            occlude=occlude.value,
            temperature=temperature,
            triplet_weight=triplet_weight,
            kd_weight=kd_weight,
            init_control=init_control,
            seed=seed,
            progress=lambda text: status.update(f"training: {text}"),
            allow_user_code=allow_user_code,
        )
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    console.print(_table(report))
    rec = report["recovered"]
    console.print(
        f"lost to occlusion: [bold]{report['lost_to_occlusion']:.3f}[/] accuracy; distillation recovered "
        + (
            "[bold]n/a[/] (the baseline is not below the teacher)"
            if rec is None
            else f"[bold]{rec:.0%}[/] of it"
        )
    )
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command lives on the shared ``bench`` group (registered by :mod:`automl.cli`)."""
    del app
