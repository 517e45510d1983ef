"""Wiring a distilled training run: the teacher, the second student, the training-loop hooks.

:mod:`automl.distill` holds the losses and modules (docs/algorithms.md, distillation); this
module finds the networks a training job names -- by train run id or checkpoint path -- checks
that they fit the data, and turns :class:`DistillOptions` into the hooks
:func:`automl.training.train_genotype` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.genotype_source import InputError

if TYPE_CHECKING:
    from automl.store import Store

OCCLUDE_PARTS = ("none", "lower", "upper")


def check_occlude(occlude: str) -> None:
    if occlude not in OCCLUDE_PARTS:
        raise InputError(
            f"occlude must be one of {', '.join(OCCLUDE_PARTS)}, not {occlude!r}", argument="occlude"
        )


@dataclass(frozen=True)
class DistillOptions:
    """What a distilled run asked for: the teacher (train run id or checkpoint path) and the
    loss settings (stored with the run as given)."""

    teacher: str
    temperature: float = 4.0
    kd_weight: float = 1.0
    triplet_weight: float = 0.0
    margin: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "teacher", str(self.teacher))  # a Path is stored as its text

    def config(self) -> Any:
        from automl.distill import DistillConfig

        return DistillConfig(
            temperature=self.temperature,
            kd_weight=self.kd_weight,
            triplet_weight=self.triplet_weight,
            margin=self.margin,
        )


def checkpoint_path(
    store: Store | None, spec: str | Path, argument: str = "teacher"
) -> tuple[Path, int | None]:
    """``(checkpoint path, train run id or None)`` for a checkpoint path (or its directory) or a
    train run id of ``store``. ``argument`` names the job argument ``spec`` came from."""
    from automl.export_job import weights_checkpoint

    text = str(spec)
    path = Path(text)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors", None
    if path.is_file():
        return path, None
    if text.strip().isdigit() and store is not None:
        run_id = int(text)
        run = store.get_run(run_id)
        if run["kind"] != "train":
            raise InputError(
                f"run {run_id} is a {run['kind']} run; name a train run or a model.safetensors checkpoint",
                argument=argument,
            )
        return Path(weights_checkpoint(store, run_id)["path"]), run_id
    raise InputError(
        f"checkpoint not found: {text} (name a train run id or the path of a model.safetensors "
        "written by a training run)",
        argument=argument,
    )


def check_fits(path: Path, meta: dict[str, Any], data: Any, role: str) -> None:
    """A distillation partner must be a fer network for this data's classes, channels and size."""
    if meta.get("task", "fer") != "fer" or data.task != "fer":
        raise UserError(
            "distillation needs expression (fer) data and fer networks: soft targets are class "
            f"probabilities ({role} task: {meta.get('task')}, data task: {data.task})"
        )
    expected = {
        "in_channels": data.in_channels,
        "image_size": data.image_size,
        "num_outputs": data.num_outputs,
    }
    wrong = [f"{k} {meta.get(k)} != {v}" for k, v in expected.items() if int(meta.get(k, -1)) != int(v)]
    if wrong:
        raise UserError(
            f"{role} {path} does not fit this data ({'; '.join(wrong)}); train it on the same data, "
            "image size and channels"
        )


def load_teacher(
    store: Store | None, teacher: str | Path, data: Any, *, allow_user_code: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The teacher network (eval mode) and a description of it; it must fit ``data``."""
    from automl.exporting import model_from_checkpoint

    path, run_id = checkpoint_path(store, teacher, "teacher")
    model, meta = model_from_checkpoint(path, allow_user_code=allow_user_code)
    check_fits(path, meta, data, "teacher")
    if meta.get("occlude") not in (None, "none"):
        raise UserError(
            f"teacher {path} was trained on occluded faces (occlude={meta['occlude']}); distill from a "
            "teacher trained on full faces"
        )
    info = {
        "teacher_checkpoint": str(path),
        "teacher_run_id": run_id,
        "teacher_sha256": meta.get("sha256"),
        "teacher_genotype": meta.get("genotype"),
        "teacher_test_metrics": {
            k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, int | float)
        },
    }
    return model, info


def load_partner(
    store: Store | None, spec: str | Path, data: Any, occlude: str, *, allow_user_code: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The second student of a concatenated model: a network trained on the same occluded faces."""
    from automl.exporting import model_from_checkpoint

    path, run_id = checkpoint_path(store, spec, "concat_with")
    model, meta = model_from_checkpoint(path, allow_user_code=allow_user_code)
    check_fits(path, meta, data, "second student")
    if meta.get("occlude") != occlude:
        raise UserError(
            f"second student {path} was trained with occlude={meta.get('occlude')}, this student "
            f"with occlude={occlude}; concatenate students trained on the same occlusion"
        )
    return model, {"checkpoint": str(path), "run_id": run_id, "sha256": meta.get("sha256")}


def train_concatenated(
    student: Any,
    partner: Any,
    data: Any,
    task: Any,
    train_cfg: Any,
    *,
    transform: Any,
    device: Any,
    seed: int,
) -> dict[str, Any]:
    """The paper's final model: both students frozen, their L2-normalised embeddings concatenated
    under a new linear classifier trained on the occluded training faces; its test metrics."""
    from automl.distill import ConcatenatedStudents
    from automl.training import fit

    model = ConcatenatedStudents(student, partner, data.num_outputs)
    result = fit(
        model,
        data.train_x,
        data.train_y,
        task,
        train_cfg,
        test_x=data.test_x,
        test_y=data.test_y,
        device=device,
        seed=seed,
        transform=transform,
    )
    student.cpu()
    return result.metrics


@dataclass
class Distillation:
    """The training-loop hooks of a distilled student, and the settings to record."""

    transform: Callable[[Any], Any]
    extra_loss: Callable[[Any, Any, Any], Any]
    prepare_model: Callable[[Any], None]
    settings: dict[str, Any]


def make_distillation(
    teacher: Any, occlude: str, options: DistillOptions, *, seed: int = 0, init: bool = True
) -> Distillation:
    """Hooks for :func:`automl.training.train_genotype`: occlude every batch, add the distillation
    loss, and start the student from the teacher's weights when it is the same network (``init``)."""
    from automl.distill import OcclusionDistiller, init_from_teacher

    config = options.config()
    distiller = OcclusionDistiller(teacher, occlude=occlude, config=config, seed=seed)
    settings: dict[str, Any] = {**asdict(options), **asdict(config), "occlude": occlude}

    def prepare_model(student: Any) -> None:
        settings["init_from_teacher"] = bool(init and init_from_teacher(student, teacher))
        distiller.attach(student)

    return Distillation(distiller.transform, distiller.extra_loss, prepare_model, settings)
