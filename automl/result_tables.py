"""A search's, a train job's and an HPO study's results as text, for a console or a notebook.

Each table is ``(title, columns, rows)`` of plain strings (numbers to 4 significant digits,
``-`` for a missing value); ``automl train`` and ``automl hpo`` print them with
:func:`automl.commands.common.print_table`, ``pandas.DataFrame(rows, columns=columns)`` shows one
in a notebook. Pure Python: nothing here imports torch or Optuna.
"""

from __future__ import annotations

import json
from typing import Any

from automl.store.run_views import fmt

Table = tuple[str, list[str], list[list[str]]]

HP_COLUMNS = ("lr", "weight_decay", "batch_size", "epochs_scale", "drop_path", "init_channels")
"""The hyperparameters of :func:`automl.hpo_job.tune_job`'s trials, in table order."""
TRAIN_KEYS = ("epochs", "lr", "weight_decay", "batch_size", "drop_path", "init_channels")
"""The ``[train]`` settings of a TOML configuration that a best trial fixes."""


def train_tables(result: Any) -> dict[str, Table]:
    """The tables of a :class:`automl.train_job.TrainJobResult`: ``metrics`` (the test split's
    primary metric and loss, size, cost, time), and where the task has them ``per_au_f1`` (one
    column per action unit) and ``confusion`` (rows: true class, columns: predicted)."""
    metrics, primary = result.metrics, result.primary_metric
    rows = [
        [primary, fmt(metrics.get(primary))],
        ["loss", fmt(metrics.get("loss"))],
        ["params (M)", fmt(result.params / 1e6)],
        ["MFLOPs", fmt(result.mflops)],
        ["epochs", str(len(result.history))],
        ["wall time (s)", fmt(result.wall_time)],
    ]
    tables = {"metrics": (f"train run {result.run_id}: test split", ["metric", "value"], rows)}
    if isinstance(f1 := metrics.get("per_au_f1"), dict):
        tables["per_au_f1"] = ("per-AU F1", list(f1), [[fmt(v) for v in f1.values()]])
    if isinstance(confusion := metrics.get("confusion"), list):
        names = result.class_names or [str(i) for i in range(len(confusion))]
        cells = [[name, *(str(int(v)) for v in row)] for name, row in zip(names, confusion, strict=False)]
        columns = ["", *(name[:8] for name in names)]
        tables["confusion"] = ("confusion (rows: true, columns: predicted)", columns, cells)
    return tables


def objective_labels(objectives: tuple[str, ...], metric: str) -> tuple[str, ...]:
    """Column names of a study's objectives: ``accuracy`` as the task's ``metric``, with units."""
    units = {"latency": "ms", "params": "M"}
    return tuple(metric if o == "accuracy" else f"{o} ({units.get(o, 'M')})" for o in objectives)


def trials_table(trials: list[dict[str, Any]], objectives: tuple[str, ...], title: str) -> Table:
    """Trials of a study summary (:meth:`automl.hpo_job.TuneResult.to_dict`): number, objective
    values, :data:`HP_COLUMNS` and the train run of each."""
    rows = []
    for trial in trials:
        values, params = trial.get("values") or [None] * len(objectives), trial.get("params") or {}
        hps = (fmt(params.get(k)) for k in HP_COLUMNS)
        rows.append([str(trial["number"]), *(fmt(v) for v in values), *hps, fmt(trial.get("train_run_id"))])
    return title, ["trial", *objectives, *HP_COLUMNS, "train run"], rows


def best_train_toml(summary: dict[str, Any]) -> str:
    """The best trial's settings as the ``[train]`` table of a TOML configuration file."""
    params = {**summary["best_params"], "epochs": summary["best"].get("epochs")}
    lines = [f"{k} = {params[k]!r}" for k in TRAIN_KEYS if params.get(k) is not None]
    return "\n".join(["[train]", *lines])


def search_lines(result: dict[str, Any]) -> list[str]:
    """A search's result (:meth:`automl.nas.job.SearchJobResult.to_dict`) in lines: each DARTS cell
    (``op<-input, ...``), the genotype as compact JSON, and the network's size and cost."""
    genotype, cost = result["genotype"], result.get("cost") or {}
    lines = [f"{key}: " + ", ".join(f"{op}<-{src}" for op, src in genotype[key])
             for key in ("normal", "reduce") if key in genotype]  # fmt: skip
    lines.append(json.dumps(genotype, separators=(",", ":")))
    if "params" in cost:
        lines.append(f"params {cost['params'] / 1e6:.3f} M, {cost.get('mflops', 0):.1f} MFLOPs (train size)")
    return lines
