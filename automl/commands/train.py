"""``automl train GENOTYPE_FILE|RUN_ID``: train a searched architecture from scratch.

The architecture comes from a JSON genotype file (a bare genotype, or any JSON object holding one
under ``"genotype"``: an ``automl export --format json`` file or a checkpoint sidecar) or from a
run in the store (its final architecture). Training is recorded as a ``train`` run whose parent is
that run: one row per epoch, the checkpoint (safetensors + sidecar) in the run's directory, the
test metrics in its summary.

Configuration: for a run id, the run's stored config (so the retraining sees the same image
size, sample cap and ``[train]`` section as the search); for a file, the ``quick`` preset. An
explicit ``--preset`` replaces that base, ``--config FILE`` is layered on top, then the options.

Occlusion (seed 003): ``--occlude lower|upper`` hides half of every face in training and testing
(the plain occluded baseline); adding ``--distill-from TEACHER`` (a train run id or checkpoint of
a network trained on full faces) trains the student against that teacher with
:class:`automl.distill.OcclusionDistiller` (soft targets at ``--temperature``, optional triplet
term). The settings are stored in the run's summary and the checkpoint's description.

``--save-attention DIR`` writes, after training, one grey PNG per (test face, AU) of the per-AU
attention maps of an attention AU head (face space, ``--task au``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from automl.commands.common import (
    SPACE_OPTION_HELP,
    console,
    err_console,
    guard_genotype_space,
    print_json,
    print_signal_warnings,
    resolve_db_url,
)
from automl.config import Config, preset, validate_config
from automl.errors import UserError

OCCLUDE_PARTS = ("none", "lower", "upper")
ATTENTION_SAMPLES = 4


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


# ---------------------------------------------------------------------------------- inputs


def read_genotype_file(path: Path) -> dict[str, Any]:
    """The genotype in a JSON file (bare, or under a ``"genotype"`` key)."""
    if not path.is_file():
        raise UserError(f"genotype file not found: {path} (pass a JSON genotype file or a run id)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"genotype file {path} is not valid JSON: {exc}") from None
    if isinstance(payload, dict) and isinstance(payload.get("genotype"), dict):
        payload = payload["genotype"]
    if not isinstance(payload, dict) or "space" not in payload:
        raise UserError(
            f"genotype file {path} must hold a JSON object with a 'space' key "
            "(e.g. from `automl export RUN_ID --format json`)"
        )
    return payload


def resolve_target(store: Any, target: str) -> tuple[dict[str, Any], int | None, dict[str, Any] | None]:
    """``(genotype, parent run id, the parent's stored config)`` for a file path or a run id."""
    path = Path(target)
    if path.exists() or not target.strip().isdigit():
        return read_genotype_file(path), None, None
    run_id = int(target)
    run = store.get_run(run_id)
    genotype = store.final_architecture(run_id)["genotype"]
    return genotype, run_id, run.get("config") or None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def option_overrides(
    *,
    data: str | None,
    seed: int | None,
    device: str | None,
    epochs: int | None,
    cpu_threads: int | None = None,
) -> dict[str, Any]:
    """The config overrides of the options ``train`` and ``hpo`` share (None: keep the config's)."""
    overrides: dict[str, Any] = {"search": {}, "train": {}}
    for key, value in (("data", data), ("seed", seed), ("device", device), ("cpu_threads", cpu_threads)):
        if value is not None:
            overrides["search"][key] = value
    if epochs is not None:
        overrides["train"]["epochs"] = epochs
    return overrides


def resolve_config(
    stored: dict[str, Any] | None,
    *,
    preset_name: str | None,
    config_file: Path | None,
    overrides: dict[str, Any],
) -> Config:
    """Stored run config or a preset, then ``--config FILE``, then command-line overrides."""
    if preset_name is not None or stored is None:
        raw, source = preset(preset_name or "quick"), f"preset '{preset_name or 'quick'}'"
    else:
        raw, source = stored, "the run's stored config"
    if config_file is not None:
        if not config_file.is_file():
            raise UserError(f"config file not found: {config_file} (pass an existing TOML file to --config)")
        try:
            raw = _merge(raw, tomllib.loads(config_file.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"config file {config_file} is not valid TOML: {exc}") from None
        source = str(config_file)
    return validate_config(_merge(raw, overrides), source)


# ---------------------------------------------------------------------------------- output


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def print_result(run_id: int, result: Any, task: Any, checkpoint: Path) -> None:
    metrics = result.metrics
    table = Table(title=f"train run {run_id}: test split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(task.primary_metric, _fmt(metrics.get(task.primary_metric)))
    table.add_row("loss", _fmt(metrics.get("loss")))
    table.add_row("params (M)", _fmt(result.params / 1e6))
    table.add_row("MFLOPs", _fmt(result.mflops))
    table.add_row("epochs", str(len(result.history)))
    table.add_row("wall time (s)", _fmt(result.wall_time))
    console.print(table)
    if isinstance(metrics.get("per_au_f1"), dict):
        au = Table(title="per-AU F1")
        for name in metrics["per_au_f1"]:
            au.add_column(name, justify="right")
        au.add_row(*(_fmt(v) for v in metrics["per_au_f1"].values()))
        console.print(au)
    if isinstance(metrics.get("confusion"), list):
        names = list(getattr(task, "class_names", [])) or [str(i) for i in range(len(metrics["confusion"]))]
        cm = Table(title="confusion (rows: true, columns: predicted)")
        cm.add_column("")
        for name in names:
            cm.add_column(name[:8], justify="right")
        for name, row in zip(names, metrics["confusion"], strict=False):
            cm.add_row(name, *(str(int(v)) for v in row))
        console.print(cm)
    console.print(f"checkpoint: {checkpoint}")
    console.print(f"export it with: automl export {run_id} --format torchscript")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}"),
        TextColumn("{task.fields[metric]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


# ---------------------------------------------------------------------------------- distillation


@dataclass(frozen=True)
class DistillOptions:
    """What ``--distill-from`` and its companions asked for (stored with the run as given)."""

    teacher: str
    temperature: float = 4.0
    kd_weight: float = 1.0
    triplet_weight: float = 0.0
    margin: float = 0.2

    def config(self) -> Any:
        from automl.distill import DistillConfig

        return DistillConfig(
            temperature=self.temperature,
            kd_weight=self.kd_weight,
            triplet_weight=self.triplet_weight,
            margin=self.margin,
        )


def checkpoint_path(store: Any, spec: str, option: str = "--distill-from") -> tuple[Path, int | None]:
    """``(checkpoint path, train run id or None)`` for a checkpoint path or a train run id."""
    path = Path(spec)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors", None
    if path.is_file():
        return path, None
    if spec.strip().isdigit():
        from automl.commands.export import weights_checkpoint

        run_id = int(spec)
        run = store.get_run(run_id)
        if run["kind"] != "train":
            raise UserError(
                f"{option} {run_id}: run {run_id} is a {run['kind']} run; pass a train run "
                "(from `automl train`) or a model.safetensors checkpoint"
            )
        return Path(weights_checkpoint(store, run_id)["path"]), run_id
    raise UserError(
        f"{option}: checkpoint not found: {spec} (pass a train run id or the path of "
        "a model.safetensors written by `automl train`)"
    )


def _check_fits(path: Path, meta: dict[str, Any], data: Any, role: str) -> None:
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
            f"{role} {path} does not fit this data ({'; '.join(wrong)}); train it on the same "
            "--data, image size and channels"
        )


def load_teacher(
    store: Any, teacher: str, data: Any, *, allow_user_code: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The teacher network (eval mode) and a description of it; it must fit ``data``."""
    from automl.export import model_from_checkpoint

    path, run_id = checkpoint_path(store, teacher)
    model, meta = model_from_checkpoint(path, allow_user_code=allow_user_code)
    _check_fits(path, meta, data, "teacher")
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
    store: Any, spec: str, data: Any, occlude: str, *, allow_user_code: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The second student of ``--concat-with``: a network trained on the same occluded faces."""
    from automl.export import model_from_checkpoint

    path, run_id = checkpoint_path(store, spec, "--concat-with")
    model, meta = model_from_checkpoint(path, allow_user_code=allow_user_code)
    _check_fits(path, meta, data, "--concat-with student")
    if meta.get("occlude") != occlude:
        raise UserError(
            f"--concat-with student {path} was trained with occlude={meta.get('occlude')}, this student "
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
    from automl.train import fit

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
    """Hooks for :func:`automl.train.train_genotype`: occlude every batch, add the distillation
    loss, and start the student from the teacher's weights when it is the same network (``init``)."""
    from automl.distill import OcclusionDistiller, init_from_teacher

    config = options.config()
    distiller = OcclusionDistiller(teacher, occlude=occlude, config=config, seed=seed)
    settings: dict[str, Any] = {**asdict(options), **asdict(config), "occlude": occlude}

    def prepare_model(student: Any) -> None:
        settings["init_from_teacher"] = bool(init and init_from_teacher(student, teacher))
        distiller.attach(student)

    return Distillation(distiller.transform, distiller.extra_loss, prepare_model, settings)


# ---------------------------------------------------------------------------------- attention maps


def _has_attention(model: Any) -> bool:
    maps = getattr(model, "attention_maps", None)
    return callable(maps) and maps() is not None


def check_attention_head(
    genotype: dict[str, Any], data: Any, train_cfg: Any, *, allow_user_code: str | None = None
) -> None:
    """Fail before training when the network has no per-AU attention maps to save."""
    import torch

    from automl.train import build_network, network_options

    model, _ = build_network(
        genotype,
        in_channels=data.in_channels,
        num_outputs=data.num_outputs,
        image_size=data.image_size,
        options=network_options(train_cfg),
        allow_user_code=allow_user_code,
    )
    if callable(getattr(model, "attention_maps", None)):
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, data.in_channels, data.image_size, data.image_size))
    if not _has_attention(model):
        head = genotype.get("head")
        what = f"the {genotype['space']} genotype" + (f" with head {head!r}" if head else "")
        raise UserError(
            f"--save-attention: {what} has no attention maps; use a face-space AU genotype whose head is "
            "au_attention, au_transformer or au_graph (`automl search --space face --task au`)"
        )


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "x"


def _png_bytes(image: Any) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_attention_maps(
    model: Any,
    data: Any,
    out_dir: Path,
    *,
    transform: Callable[[Any], Any] | None = None,
    samples: int = ATTENTION_SAMPLES,
) -> list[str]:
    """For the first ``samples`` test faces write ``faceNN.png`` (what the network saw) and
    ``faceNN_<AU>.png`` (that AU's attention map, min-max scaled, upsampled to the face size).
    Each file is written atomically. Returns the file names."""
    import torch

    from automl.checkpoint import atomic_write_bytes
    from automl.data.augment import to_float
    from search_spaces.face import attention_images

    x = to_float(data.test_x[:samples].cpu())
    if transform is not None:
        x = transform(x)
    model = model.cpu().eval()
    with torch.no_grad():
        model(x)
    maps = model.attention_maps() if callable(getattr(model, "attention_maps", None)) else None
    if maps is None:
        raise UserError("--save-attention: the trained network produced no attention maps")
    try:
        images = attention_images(maps, data.image_size).numpy()
    except ValueError as exc:
        raise UserError(f"--save-attention: {exc}") from None
    faces = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    names = [_file_part(str(n)) for n in data.class_names]
    if len(names) != images.shape[1]:
        names = [f"au{j}" for j in range(images.shape[1])]
    written: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(images.shape[0]):
        face = faces[i].transpose(1, 2, 0)
        face = face[..., 0] if face.shape[-1] == 1 else face
        files = [(f"face{i:02d}.png", face)]
        files += [(f"face{i:02d}_{name}.png", images[i, j]) for j, name in enumerate(names)]
        for file_name, image in files:
            atomic_write_bytes(out_dir / file_name, _png_bytes(image))
            written.append(file_name)
    return written


# ---------------------------------------------------------------------------------- command


def train_command(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="GENOTYPE_FILE|RUN_ID", help="JSON genotype file or a run id."),
    data: str = typer.Option(None, "--data", help="KIND:PATH, e.g. synth:fer (default: the config's data)."),
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Training epochs (default: the config's train.epochs)."
    ),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda (default: the config's device)."),
    seed: int = typer.Option(None, "--seed", help="Seed of weights, batches and augmentation."),
    cpu_threads: int = typer.Option(
        None, "--cpu-threads", min=1, help="torch threads on CPU (default: the config's search.cpu_threads)."
    ),
    out: Path = typer.Option(None, "--out", help="Also write the checkpoint + sidecar into this directory."),
    occlude: str = typer.Option(
        "none",
        "--occlude",
        help="Hide the lower or upper half of every face (train and test): none|lower|upper.",
    ),
    distill_from: str = typer.Option(
        None,
        "--distill-from",
        metavar="TEACHER",
        help="Train run id or checkpoint of a teacher trained on full faces (needs --occlude).",
    ),
    temperature: float = typer.Option(4.0, "--temperature", help="Soft-target temperature T (distillation)."),
    kd_weight: float = typer.Option(1.0, "--kd-weight", min=0, help="Weight of the soft-target term."),
    triplet_weight: float = typer.Option(
        0.0, "--triplet-weight", min=0, help="Weight of the triplet term (0: soft targets only)."
    ),
    margin: float = typer.Option(0.2, "--margin", help="Triplet margin (L2-normalised embeddings)."),
    concat_with: str = typer.Option(
        None,
        "--concat-with",
        metavar="CKPT",
        help="Train run id or checkpoint of a second distilled student: also fit a classifier on both "
        "students' concatenated embeddings (needs --distill-from).",
    ),
    save_attention: Path = typer.Option(
        None,
        "--save-attention",
        metavar="DIR",
        help="Write the AU attention maps of a few test faces as PNGs.",
    ),
    preset_name: str = typer.Option(
        None, "--preset", help="quick|paper (default: the run's stored config, or quick for a file)."
    ),
    config_file: Path = typer.Option(None, "--config", help="TOML file layered over the preset."),
    space: str = typer.Option(None, "--space", help=SPACE_OPTION_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a searched architecture from scratch, evaluate it, store the checkpoint."""
    from automl.store import open_store

    if occlude not in OCCLUDE_PARTS:
        raise UserError(f"--occlude must be one of {', '.join(OCCLUDE_PARTS)}, not {occlude!r}")
    distill = None
    if distill_from is not None:
        if occlude == "none":
            raise UserError(
                "--distill-from trains a student on occluded faces: add --occlude lower or --occlude upper"
            )
        distill = DistillOptions(distill_from, temperature, kd_weight, triplet_weight, margin)
        distill.config()  # bad settings fail before anything is loaded
    if concat_with is not None and distill is None:
        raise UserError(
            "--concat-with joins two distilled students: add --distill-from TEACHER and --occlude"
        )
    store = open_store(resolve_db_url(ctx))
    genotype, parent_id, stored = resolve_target(store, target)
    allow_user_code = guard_genotype_space(genotype, space, stored)
    overrides = option_overrides(data=data, seed=seed, device=device, epochs=epochs, cpu_threads=cpu_threads)
    if space:  # recorded, so that retraining this run later is the same explicit choice
        overrides["search"]["space"] = space
    cfg = resolve_config(stored, preset_name=preset_name, config_file=config_file, overrides=overrides)
    result, run_id, checkpoint, task = run_training(
        store,
        genotype,
        cfg,
        allow_user_code=allow_user_code,
        parent_run_id=parent_id,
        occlude=occlude,
        out_dir=out,
        show_progress=not json_out,
        distill=distill,
        save_attention=save_attention,
        concat_with=concat_with,
    )
    if json_out:
        print_json(
            {
                "run_id": run_id,
                "parent_run_id": parent_id,
                "primary_metric": task.primary_metric,
                "metrics": result.metrics,
                "params": result.params,
                "mflops": result.mflops,
                "checkpoint": str(checkpoint),
                "history": result.history,
                "wall_time": result.wall_time,
                "occlude": occlude,
                "distill": result.meta.get("distill"),
                "attention_files": result.meta.get("attention_files"),
                "concat": result.meta.get("concat"),
                "signal": result.signal,
            }
        )
    else:
        print_result(run_id, result, task, checkpoint)
        concat = result.meta.get("concat")
        if concat:
            console.print(
                f"concatenated students: test {task.primary_metric} "
                f"{_fmt(concat['test_metrics'].get(task.primary_metric))} (with {concat['checkpoint']})"
            )
        if result.meta.get("attention_files"):
            console.print(f"attention maps: {len(result.meta['attention_files'])} PNGs in {save_attention}")
    print_signal_warnings(result.signal, f"train run {run_id}")


def run_training(
    store: Any,
    genotype: dict[str, Any],
    cfg: Config,
    *,
    parent_run_id: int | None = None,
    occlude: str = "none",
    out_dir: Path | None = None,
    show_progress: bool = True,
    distill: DistillOptions | None = None,
    save_attention: Path | None = None,
    concat_with: str | None = None,
    allow_user_code: str | None = None,
) -> tuple[Any, int, Path, Any]:
    """Load the data, train ``genotype`` as a new ``train`` run; returns (result, run id, ckpt, task).

    ``allow_user_code``: the space the user chose explicitly (``--space``, or the parent run's
    stored config): a genotype of a user's NNI space (``nni:...``) is built only when it is that
    space (:func:`search_spaces.registry.check_user_code`).

    With ``distill`` (needs ``occlude``) the student is distilled from the teacher; with
    ``save_attention`` the attention maps of a few test faces are written there after training;
    with ``concat_with`` (a second distilled student) the concatenated model's metrics are added.
    On CPU it runs on ``search.cpu_threads`` torch threads (:mod:`automl.threads`; torch's count
    is restored afterwards) and the run's summary records the count as ``cpu_threads``.
    """
    from automl.threads import cpu_threads
    from automl.train import resolve_device

    device = resolve_device(cfg.search.device)
    with cpu_threads(device, cfg.search.cpu_threads) as threads:
        return _run_training(
            store,
            genotype,
            cfg,
            threads=threads,
            parent_run_id=parent_run_id,
            occlude=occlude,
            out_dir=out_dir,
            show_progress=show_progress,
            distill=distill,
            save_attention=save_attention,
            concat_with=concat_with,
            allow_user_code=allow_user_code,
        )


def _run_training(
    store: Any,
    genotype: dict[str, Any],
    cfg: Config,
    *,
    threads: int,
    parent_run_id: int | None,
    occlude: str,
    out_dir: Path | None,
    show_progress: bool,
    distill: DistillOptions | None,
    save_attention: Path | None,
    concat_with: str | None,
    allow_user_code: str | None,
) -> tuple[Any, int, Path, Any]:
    from automl.checkpoint import save_checkpoint
    from automl.data.augment import occlude as occlude_batch
    from automl.data.spec import load_data
    from automl.data.tasks import make_task
    from automl.store.recorder import StoreRecorder
    from automl.train import resolve_device, train_genotype
    from search_spaces import UserCodeRefusedError, create_space

    # Fail on bad input before a run is created: genotype, device, data.
    try:
        space = create_space(genotype["space"], allow_user_code=allow_user_code)
        genotype = space.validate_genotype(genotype)
    except UserCodeRefusedError as exc:  # before anything of the user's module is imported
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"invalid genotype: {exc}") from None
    device = resolve_device(cfg.search.device)
    spec = cfg.search.data
    seed = cfg.search.seed
    data = load_data(
        spec,
        image_size=cfg.data.image_size,
        channels=cfg.data.channels,
        fold=cfg.data.fold,
        n=cfg.data.n,
        seed=seed,
    )
    task = make_task(data)
    transform = None
    if occlude != "none":

        def transform(x):  # noqa: ANN001, ANN202 - a batch transform
            return occlude_batch(x, occlude)

    if save_attention is not None:
        check_attention_head(genotype, data, cfg.train, allow_user_code=allow_user_code)
    distillation = None
    extra_meta: dict[str, Any] = {"occlude": occlude}
    if distill is not None:
        if occlude == "none":
            raise UserError("distillation trains a student on occluded faces: pass --occlude lower or upper")
        teacher, teacher_info = load_teacher(store, distill.teacher, data, allow_user_code=allow_user_code)
        distillation = make_distillation(teacher, occlude, distill, seed=seed)
        distillation.settings.update(teacher_info)
        transform = distillation.transform
        extra_meta["distill"] = distillation.settings
    partner = None
    if concat_with is not None:
        if distillation is None:
            raise UserError("--concat-with joins two distilled students: add --distill-from TEACHER")
        partner, partner_info = load_partner(
            store, concat_with, data, occlude, allow_user_code=allow_user_code
        )

    run_id = store.create_run(
        kind="train",
        config=cfg.model_dump(mode="json"),
        seed=seed,
        space=genotype["space"],
        task=data.task,
        strategy=None,
        data=spec,
        parent_run_id=parent_run_id,
    )
    recorder = StoreRecorder(store, run_id)
    store.set_state(run_id, "running")
    store.set_summary(run_id, {**extra_meta, "device": str(device), "cpu_threads": threads})
    try:
        with _progress() if show_progress else _NullProgress() as bar:
            bar_task = bar.add_task("train", total=None, epoch="-", metric="")

            def progress(step: int, total: int, info: dict[str, Any]) -> None:
                bar.update(
                    bar_task, completed=step, total=total, epoch=f"{info['epoch'] + 1}/{info['epochs']}"
                )

            def on_epoch(epoch: int, record: dict[str, Any]) -> None:
                recorder.on_epoch(epoch, record)
                if "val_metric" in record:
                    bar.update(bar_task, metric=f"test {task.primary_metric} {record['val_metric']:.3f}")

            result = train_genotype(
                genotype,
                data,
                task,
                cfg.train,
                device=device,
                seed=seed,
                progress=progress,
                on_epoch=on_epoch,
                run_dir=store.run_dir(run_id),
                transform=transform,
                extra_loss=distillation.extra_loss if distillation else None,
                prepare_model=distillation.prepare_model if distillation else None,
                extra_meta={**extra_meta, "run_id": run_id, "parent_run_id": parent_run_id},
                augment_cfg=cfg.augment,
                allow_user_code=allow_user_code,
            )
        checkpoint = result.checkpoint
        assert checkpoint is not None
        store.add_checkpoint(run_id, checkpoint, kind="weights", metrics=result.metrics)
        if out_dir is not None:
            save_checkpoint(Path(out_dir) / checkpoint.name, result.model, result.meta)
        store.add_architecture(
            run_id, result.genotype, params=result.params, mflops=result.mflops, role="final"
        )
        after: dict[str, Any] = {}
        if partner is not None:
            concat_metrics = train_concatenated(
                result.model,
                partner,
                data,
                task,
                cfg.train,
                transform=lambda x: occlude_batch(x, occlude),
                device=device,
                seed=seed,
            )
            result.meta["concat"] = {**partner_info, "test_metrics": concat_metrics}
            after["concat"] = {
                **partner_info,
                "test_metric": concat_metrics.get(task.primary_metric),
                "test_metrics": concat_metrics,
            }
        if save_attention is not None:
            files = write_attention_maps(result.model, data, Path(save_attention), transform=transform)
            result.meta["attention_files"] = files
            after.update(attention_dir=str(save_attention), attention_files=len(files))
        store.set_summary(
            run_id,
            {
                **after,
                **({"distill": distillation.settings} if distillation else {}),
                "test_metric": result.metrics.get(task.primary_metric),
                "primary_metric": task.primary_metric,
                "test_metrics": result.metrics,
                "params": result.params,
                "mflops": result.mflops,
                "checkpoint": str(checkpoint),
                "wall_time": result.wall_time,
                "augment": result.meta.get("augment"),
                "signal": result.signal,  # automl.learning_checks: did it learn anything?
            },
        )
        store.set_state(run_id, "completed")
    except KeyboardInterrupt:
        store.set_state(run_id, "interrupted")
        raise
    except BaseException as exc:
        store.set_state(run_id, "failed", error=(str(exc).splitlines() or [type(exc).__name__])[0][:500])
        raise
    return result, run_id, checkpoint, task


class _NullProgress:
    """Stands in for the rich progress bar under ``--json`` (stdout must stay pure JSON)."""

    def __enter__(self) -> _NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None
