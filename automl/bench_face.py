"""The occlusion benchmark behind ``automl bench face``: distillation against occluded faces, one run.

The method: docs/algorithms.md, "Occlusion-robust FER by distillation".

Same data, genotype, epochs and seed for every row, so the rows differ only in what the network
saw and learned from:

1. **teacher**: trained and tested on full faces (the ceiling);
2. **teacher, occluded test**: that teacher tested on occluded faces (what occlusion costs a model
   that never saw it);
3. **occluded baseline**: trained and tested on occluded faces, from scratch;
4. **occluded, teacher init** (control, ``init_control``): the baseline started from the
   teacher's weights but without the distillation loss, so the gain of row 5 over row 3 can be
   split into "pre-training on full faces" and "soft targets";
5. **distilled student**: trained on occluded faces against the teacher (soft targets at
   ``temperature``, optional triplet term), started from the teacher's weights.

``recovered`` = (student - baseline) / (teacher - baseline): the share of the accuracy lost to
occlusion that distillation wins back (the target is at least half).

:func:`face_bench` returns the JSON-able report; the CLI (:mod:`automl.commands.bench_face`) only
parses options, calls it and prints the table.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.progress import ProgressCallback, ProgressEvent, emit

if TYPE_CHECKING:
    from automl.config import Config

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
BUILTIN_GENOTYPES = {"face": FACE_GENOTYPE, "darts": DARTS_GENOTYPE}


def bench_config(
    *,
    image_size: int = 32,
    n: int = 600,
    epochs: int = 8,
    init_channels: int = 8,
    layers: int = 6,
    device: str = "auto",
    batch_size: int = 32,
    lr: float = 0.05,
) -> Config:
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


def bench_genotype(
    genotype: dict[str, Any] | str | Path | None = None, space: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """``(genotype, allow_user_code)``: a genotype dict or JSON file checked against ``space`` (the
    user's explicit choice, required for an ``nni:`` space), else the built-in genotype of ``space``
    (face, the default, or darts)."""
    from automl.genotype_source import guard_genotype_space, read_genotype_file

    if genotype is not None:
        chosen = dict(genotype) if isinstance(genotype, dict) else read_genotype_file(genotype)
        return chosen, guard_genotype_space(chosen, space)
    if space is None or space in BUILTIN_GENOTYPES:
        return dict(BUILTIN_GENOTYPES[space or "face"]), None
    raise UserError(f"space {space} has no built-in genotype (use face or darts, or pass a genotype file)")


def _row(name: str, train_faces: str, test_faces: str, metrics: dict[str, Any], seconds: float | None
         ) -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "train_faces": train_faces,
        "test_faces": test_faces,
        "accuracy": float(metrics["accuracy"]),
        "loss": float(metrics.get("loss", float("nan"))),
        "train_seconds": None if seconds is None else round(seconds, 2),
    }


def face_bench(
    genotype: dict[str, Any] | str | Path | None = None,
    cfg: Config | None = None,
    *,
    space: str | None = None,
    occlude: str = "lower",
    temperature: float = 4.0,
    triplet_weight: float = 0.0,
    kd_weight: float = 1.0,
    init_control: bool = True,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train the teacher, the occluded baseline (and control) and the distilled student; the report.

    ``genotype`` / ``space``: see :func:`bench_genotype`. ``cfg``: default :func:`bench_config`.
    ``progress`` gets one event per network trained. Runs inside
    :func:`~automl.process_state.preserved_process_state`.
    """
    from automl.distill_setup import DistillOptions, check_occlude
    from automl.process_state import preserved_process_state

    check_occlude(occlude)
    if occlude == "none":
        raise UserError("the occlusion benchmark needs a half to hide: lower or upper")
    chosen, allow_user_code = bench_genotype(genotype, space)
    cfg = cfg if cfg is not None else bench_config()
    t0 = time.perf_counter()
    with preserved_process_state():
        options = DistillOptions("bench", temperature=temperature, kd_weight=kd_weight,
                                 triplet_weight=triplet_weight)  # fmt: skip
        report = _run(chosen, cfg, occlude, options, init_control, seed, progress, allow_user_code)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def _run(genotype: dict[str, Any], cfg: Config, occlude: str, options: Any, init_control: bool,
         seed: int, progress: ProgressCallback | None, allow: str | None) -> dict[str, Any]:  # fmt: skip
    from automl.data.augment import occlude as occlude_batch
    from automl.data.spec import load_data
    from automl.data.tasks import make_task
    from automl.distill import init_from_teacher
    from automl.distill_setup import make_distillation
    from automl.training import evaluate, resolve_device, train_genotype

    device = resolve_device(cfg.search.device)
    d = cfg.data
    data = load_data("synth:fer", image_size=d.image_size, channels=d.channels, fold=d.fold, n=d.n, seed=seed)
    task = make_task(data)
    steps = 4 if init_control else 3
    done = [0]

    def hide(x: Any) -> Any:
        return occlude_batch(x, occlude)

    def train(text: str, **hooks: Any) -> Any:
        emit(progress, ProgressEvent("bench face", done[0], steps, text))
        result = train_genotype(genotype, data, task, cfg.train, device=device, seed=seed,
                                augment_cfg=cfg.augment, allow_user_code=allow, **hooks)  # fmt: skip
        done[0] += 1
        emit(progress, ProgressEvent("bench face", done[0], steps, text))
        return result

    teacher = train("teacher on full faces")
    rows = [_row("teacher", "full", "full", teacher.metrics, teacher.wall_time)]
    occluded_test = evaluate(teacher.model, data.test_x, data.test_y, task, device=device, transform=hide)
    rows.append(_row("teacher, occluded test", "full", occlude, occluded_test, None))
    baseline = train("occluded baseline", transform=hide)
    rows.append(_row("occluded baseline", occlude, occlude, baseline.metrics, baseline.wall_time))
    if init_control:
        control = train("occluded, started from the teacher (no distillation loss)", transform=hide,
                        prepare_model=lambda m: init_from_teacher(m, teacher.model))  # fmt: skip
        rows.append(_row("occluded, teacher init", occlude, occlude, control.metrics, control.wall_time))
    distill = make_distillation(teacher.model, occlude, options, seed=seed)
    student = train("distilled student", transform=distill.transform, extra_loss=distill.extra_loss,
                    prepare_model=distill.prepare_model)  # fmt: skip
    rows.append(_row("distilled student", occlude, occlude, student.metrics, student.wall_time))
    return _report(genotype, cfg, data, occlude, seed, str(device), teacher.params, distill.settings, rows)


def _report(genotype: dict[str, Any], cfg: Config, data: Any, occlude: str, seed: int, device: str,
            params: int, distill: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    top, base, dist = rows[0]["accuracy"], rows[2]["accuracy"], rows[-1]["accuracy"]
    lost = top - base
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
        "device": device,
        "params": params,
        "distill": {k: v for k, v in distill.items() if k != "teacher"},
        "rows": rows,
        "lost_to_occlusion": lost,
        "recovered": (dist - base) / lost if lost > 0 else None,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }


def report_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """:func:`face_bench`'s rows as ``(title, columns, rows)`` of text: accuracy and test loss of
    each network, which faces it was trained and tested on, its training time."""
    title = (
        f"occlusion ({report['occlude']} half hidden), synthetic faces {report['image_size']}px, "
        f"{report['epochs']} epochs each"
    )
    rows = [
        [r["name"], r["train_faces"], r["test_faces"], f"{r['accuracy']:.3f}", f"{r['loss']:.3f}",
         "-" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}"]
        for r in report["rows"]
    ]  # fmt: skip
    return title, ["model", "trained on", "tested on", "accuracy", "test loss", "train s"], rows


def recovered_line(report: dict[str, Any]) -> str:
    """What occlusion cost in accuracy and the share of it distillation won back, in one line."""
    rec = report["recovered"]
    share = f"{rec:.0%} of it" if rec is not None else "n/a (no loss to recover)"
    return f"lost to occlusion: {report['lost_to_occlusion']:.3f} accuracy; distillation recovered {share}"
