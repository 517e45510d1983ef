"""``automl export RUN_ID --format torchscript|onnx|json|nni [--out PATH]``.

For a ``train`` run the latest weights checkpoint is rebuilt into its network and exported; the
exported file is registered with the run (``store.add_checkpoint(kind=FORMAT)``) so the hashing
side and the dashboard can find it. For a search (or any other) run only the untrained genotype
can be exported, as JSON or as an NNI frozen architecture; TorchScript and ONNX need trained
weights, and the error says how to get them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from automl.commands.common import (
    allowed_space,
    check_space_option,
    console,
    guard_genotype_space,
    print_json,
    resolve_db_url,
)
from automl.errors import UserError
from automl.export import DEFAULT_FILENAMES, EXPORT_FORMATS, check_format


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def weights_checkpoint(store: Any, run_id: int) -> dict[str, Any]:
    """The latest ``weights`` checkpoint of a train run, its file present and unchanged."""
    ckpts = [c for c in store.list_checkpoints(run_id) if c["kind"] == "weights"]
    if not ckpts:
        state = store.get_run(run_id)["state"]
        raise UserError(
            f"train run {run_id} has no checkpoint (state: {state}); train again with `automl train`"
        )
    ckpt = ckpts[-1]
    if not Path(ckpt["path"]).is_file():
        raise UserError(
            f"checkpoint of run {run_id} is missing on disk: {ckpt['path']} (was the run directory moved?)"
        )
    return ckpt


def export_run(
    store: Any, run_id: int, fmt: str, out: Path | None = None, *, space: str | None = None
) -> Any:
    """Export run ``run_id`` in ``fmt``; returns :class:`automl.export.ExportInfo`.

    A genotype of a user's NNI space is rebuilt only when ``space`` (``--space``) or the run's
    stored config names that space (:func:`automl.commands.common.allowed_space`)."""
    from automl.checkpoint import sha256_file
    from automl.export import export_checkpoint, export_genotype

    check_format(fmt)
    run = store.get_run(run_id)
    allow = allowed_space(space, run.get("config"))  # what rebuilding an nni: genotype needs
    default_name = DEFAULT_FILENAMES[fmt]
    if run["kind"] == "train":
        ckpt = weights_checkpoint(store, run_id)
        if sha256_file(ckpt["path"]) != ckpt["sha256"]:
            raise UserError(
                f"checkpoint {ckpt['path']} of run {run_id} differs from the one the store recorded "
                "(sha256 mismatch): it was modified; retrain with `automl train`"
            )
        target = Path(out) if out is not None else store.run_dir(run_id) / default_name
        info = export_checkpoint(ckpt["path"], fmt, target, allow_user_code=allow)
    else:
        arch = store.final_architecture(run_id)
        if fmt == "nni":  # rebuilds the network: an nni: genotype imports the user's module
            guard_genotype_space(arch["genotype"], space, run.get("config"))
        else:
            check_space_option(arch["genotype"], space)
        if fmt not in ("json", "nni"):
            trained = _trained_children(store, run_id)
            hint = (
                f"export its train run instead: `automl export {trained[0]} --format {fmt}`"
                if trained
                else f"train it first with `automl train {run_id}`, then export that train run"
            )
            raise UserError(
                f"run {run_id} is a {run['kind']} run without trained weights, so it cannot be exported "
                f"as {fmt}; {hint} (or use --format json)"
            )
        meta = {
            "run_id": run_id,
            "run_kind": run["kind"],
            "task": run.get("task"),
            "data": run.get("data"),
            "strategy": run.get("strategy"),
            "params": arch.get("params"),
            "mflops": arch.get("mflops"),
            "trained": False,
        }
        target = Path(out) if out is not None else store.run_dir(run_id) / default_name
        sizes, options = _search_sizes(run)
        info = export_genotype(
            arch["genotype"], fmt, target, meta, sizes=sizes, network_options=options, allow_user_code=allow
        )
    store.add_checkpoint(run_id, info.path, sha256=info.sha256, kind=fmt)
    return info


def _search_sizes(run: dict[str, Any]) -> tuple[dict[str, int] | None, dict[str, Any]]:
    """Input/output sizes a search run recorded in its plan, and its config's final-training size."""
    from automl.config import TrainSection
    from automl.export import NETWORK_SIZES
    from automl.train import network_options

    plan = (run.get("summary") or {}).get("plan") or {}
    sizes = None
    if all(k in plan for k in NETWORK_SIZES):
        sizes = {k: int(plan[k]) for k in NETWORK_SIZES}
    train = TrainSection(**((run.get("config") or {}).get("train") or {}))
    return sizes, network_options(train)


def _trained_children(store: Any, run_id: int) -> list[int]:
    """Completed train runs whose parent is ``run_id`` (newest first)."""
    runs = store.list_runs(kind="train", state="completed", limit=1000)
    return [r["id"] for r in runs if r.get("parent_run_id") == run_id]


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
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Export a trained network (TorchScript / ONNX) or a genotype (JSON) as a standalone file."""
    from automl.store import open_store

    check_format(fmt)
    store = open_store(resolve_db_url(ctx))
    info = export_run(store, run_id, fmt, out, space=space)
    payload = {
        "run_id": run_id,
        "format": info.format,
        "path": str(info.path),
        "sha256": info.sha256,
        "sidecar": str(info.sidecar) if info.sidecar else None,
        "embedding_dim": info.meta.get("embedding_dim"),
    }
    if json_out:
        print_json(payload)
        return
    console.print(f"[bold green]exported[/] run {run_id} as {info.format}: {info.path}")
    if info.sidecar:
        console.print(f"sidecar: {info.sidecar} (embedding_dim {info.meta.get('embedding_dim')})")
