"""Export a stored run as one call: what ``automl export`` does, reachable from Python.

For a ``train`` run the latest weights checkpoint (checked against the sha256 the store recorded)
is rebuilt into its network and exported; for a search (or any other) run only the untrained
genotype can be exported, as JSON or as an NNI frozen architecture. Either way the exported file
is registered with the run (``store.add_checkpoint(kind=FORMAT)``) so that the hashing side and
the dashboard find it. The writing itself is :mod:`automl.exporting`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.export_formats import DEFAULT_FILENAMES, check_format
from automl.genotype_source import allowed_space, check_space_matches, guard_genotype_space

if TYPE_CHECKING:
    from automl.exporting import ExportInfo
    from automl.store import Store


class NoTrainedWeightsError(UserError):
    """A format that needs trained weights was asked of a run that has none."""

    def __init__(self, run_id: int, kind: str, fmt: str, trained_runs: list[int]) -> None:
        what = f"its train run {trained_runs[0]} has weights" if trained_runs else "train it first"
        super().__init__(
            f"run {run_id} is a {kind} run without trained weights, so it cannot be exported as {fmt}; "
            f"{what} (or export it as json)"
        )
        self.run_id, self.kind, self.fmt, self.trained_runs = run_id, kind, fmt, trained_runs


def weights_checkpoint(store: Store, run_id: int) -> dict[str, Any]:
    """The latest ``weights`` checkpoint of a train run, its file present."""
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


def trained_children(store: Store, run_id: int) -> list[int]:
    """Completed train runs whose parent is ``run_id`` (newest first)."""
    runs = store.list_runs(kind="train", state="completed", limit=1000)
    return [r["id"] for r in runs if r.get("parent_run_id") == run_id]


def search_sizes(run: dict[str, Any]) -> tuple[dict[str, int] | None, dict[str, Any]]:
    """Input/output sizes a search run recorded in its plan, and its config's final-training options."""
    from automl.config import TrainSection
    from automl.exporting import NETWORK_SIZES
    from automl.training import network_options

    plan = (run.get("summary") or {}).get("plan") or {}
    sizes = None
    if all(k in plan for k in NETWORK_SIZES):
        sizes = {k: int(plan[k]) for k in NETWORK_SIZES}
    train = TrainSection(**((run.get("config") or {}).get("train") or {}))
    return sizes, network_options(train)


def export_run(
    store: Store | str, run_id: int, fmt: str, out: str | Path | None = None, *, space: str | None = None
) -> ExportInfo:
    """Export run ``run_id`` of ``store`` (a :class:`~automl.store.Store` or its URL) in ``fmt``.

    ``out`` defaults to the format's file name in the run's directory. A genotype of a user's NNI
    space is rebuilt only when ``space`` or the run's stored config names that space
    (:func:`automl.genotype_source.allowed_space`). Returns :class:`automl.exporting.ExportInfo`.
    """
    from automl.nas.job import as_store

    store = as_store(store)
    assert store is not None
    check_format(fmt)
    run = store.get_run(run_id)
    target = Path(out) if out is not None else store.run_dir(run_id) / DEFAULT_FILENAMES[fmt]
    if run["kind"] == "train":
        info = _export_trained(store, run, fmt, target, allowed_space(space, run.get("config")))
    else:
        info = _export_untrained(store, run, fmt, target, space)
    store.add_checkpoint(run_id, info.path, sha256=info.sha256, kind=fmt)
    return info


def _export_trained(
    store: Store, run: dict[str, Any], fmt: str, target: Path, allow: str | None
) -> ExportInfo:
    from automl.checkpoint import sha256_file
    from automl.exporting import export_checkpoint

    run_id = run["id"]
    ckpt = weights_checkpoint(store, run_id)
    if sha256_file(ckpt["path"]) != ckpt["sha256"]:
        raise UserError(
            f"checkpoint {ckpt['path']} of run {run_id} differs from the one the store recorded "
            "(sha256 mismatch): it was modified; retrain with `automl train`"
        )
    return export_checkpoint(ckpt["path"], fmt, target, allow_user_code=allow)


def _export_untrained(
    store: Store, run: dict[str, Any], fmt: str, target: Path, space: str | None
) -> ExportInfo:
    from automl.exporting import export_genotype

    run_id = run["id"]
    arch = store.final_architecture(run_id)
    if fmt == "nni":  # rebuilds the network: an nni: genotype imports the user's module
        guard_genotype_space(arch["genotype"], space, run.get("config"))
    else:
        check_space_matches(arch["genotype"], space)
    if fmt not in ("json", "nni"):
        raise NoTrainedWeightsError(run_id, run["kind"], fmt, trained_children(store, run_id))
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
    sizes, options = search_sizes(run)
    return export_genotype(
        arch["genotype"], fmt, target, meta, sizes=sizes, network_options=options,
        allow_user_code=allowed_space(space, run.get("config")),
    )


def export_summary(run_id: int, info: ExportInfo) -> dict[str, Any]:
    """The plain-data description of an export (what ``automl export --json`` prints)."""
    return {
        "run_id": run_id,
        "format": info.format,
        "path": str(info.path),
        "sha256": info.sha256,
        "sidecar": str(info.sidecar) if info.sidecar else None,
        "embedding_dim": info.meta.get("embedding_dim"),
    }
