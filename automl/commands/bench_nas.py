"""``automl bench nas``: DDPNAS vs DARTS (first order) vs random search with weight sharing.

All three search the same space on the same data, device and preset budget, in one process, one
after the other; then every found architecture, and for reference ``--random-archs`` uniformly
random architectures, is retrained with the same short schedule and evaluated on the test split.
``--seeds N`` repeats all of it for N seeds (search and retraining seed). Besides search time, the
report says whether a strategy beats chance: each found architecture's percentile rank and
z-score among the random ones, the fraction of DDPNAS prune decisions decided by exact ties, and
Kendall's tau between the supernet's estimates of the random architectures and their retrained
metrics. The work is in :mod:`automl.nas.bench`; this module parses, calls and prints.

``--with-nni`` adds NNI's own DARTS and RandomOneShot (:mod:`automl.nas.nni_baselines`) on the
same space, data, device and budgets, after ours in the same run, retrained the same way: an
outside reference for both the search time and the found architecture's accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, write_report
from automl.commands.options import DeviceName, Preset, StrategyName
from automl.errors import UserError

STRATEGIES = tuple(s.value for s in StrategyName)  # automl.nas.bench.STRATEGIES, without numpy


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _spread(summary: dict[str, Any], fmt: str = ".3f", scale: float = 1.0) -> str:
    """``mean`` for one seed, ``mean ± std`` over several; ``-`` when no seed had the value."""
    mean, std = summary["mean"], summary["std"]
    if mean is None:
        return "-"
    text = format(mean / scale, fmt)
    return text if std is None else f"{text} ± {format(std / scale, fmt.lstrip('+'))}"


def _table(report: dict[str, Any]) -> Table:
    """Search cost and retrained metric per strategy (mean ± std over seeds when there are several)."""
    metric = report["metric"]
    seeds = report["seeds"]
    title = (
        f"NAS benchmark on {report['data']} ({report['device']}, retrain {report['retrain_epochs']} ep"
        + (f", {len(seeds)} seeds" if len(seeds) > 1 else "")
        + ")"
    )
    table = Table(title=title)
    agg = report["aggregate"]["strategies"]
    # With NNI's strategies beside ours, one more column: DDPNAS' search time over each one's.
    with_nni = any(r["strategy"].startswith("nni-") for r in report["strategies"])
    cols = ["strategy", "search s", "CPU s", "epochs", "s/epoch", "params", f"retrained {metric}"]
    if with_nni:
        cols.append("DDPNAS / it: wall, CPU")
    for col in cols:
        table.add_column(col, justify="right" if col != "strategy" else "left")
    ddpnas = agg.get("ddpnas")
    for r in report["strategies"]:
        a = agg[r["strategy"]]
        row = [
            r["strategy"],
            _spread(a["search_seconds"], ".1f"),
            _spread(a["search_cpu_seconds"], ".1f"),
            str(r["epochs"]),
            _spread(a["seconds_per_epoch"], ".2f"),
            f"{a['params']['mean'] / 1e3:.1f} k",
            _spread(a["retrained_metric"]),
        ]
        if with_nni:
            if ddpnas is None or r["strategy"] == "ddpnas":
                row.append("-")
            else:
                wall = ddpnas["search_seconds"]["mean"] / a["search_seconds"]["mean"]
                cpu = ddpnas["search_cpu_seconds"]["mean"] / a["search_cpu_seconds"]["mean"]
                row.append(f"{wall:.3f}x, {cpu:.3f}x")
        table.add_row(*row)
    refs = [s["random_reference"] for s in report["per_seed"]]
    if refs[0]["count"]:
        archs = [a for ref in refs for a in ref["archs"]]
        params = sum(a["params"] for a in archs) / len(archs)
        ref_agg = report["aggregate"]["random_reference"]
        table.add_row(
            f"{refs[0]['count']} random archs" + (" / seed" if len(refs) > 1 else ""),
            "-",
            "-",
            "-",
            "-",
            f"{params / 1e3:.1f} k",
            f"{ref_agg['mean']['mean']:.3f} ± {_num(ref_agg['std']['mean'])}",
            *(["-"] if with_nni else []),
        )
    return table


def _quality_table(report: dict[str, Any]) -> Table:
    """Per strategy and seed (plus the mean ± std over seeds): is the found architecture better
    than chance, were DDPNAS' prunes decided by ties, does the supernet rank architectures?

    In a mean row, "random mean ± std" is the mean over seeds of each seed's random mean and of
    each seed's random std (the spread of random architectures, not of the seeds)."""
    metric = report["metric"]
    many = len(report["seeds"]) > 1
    table = Table(title=f"Search quality against {report['random_archs']} random architectures per seed")
    cols = [
        "strategy",
        "seed",
        f"last supernet val {metric}",
        "tie fraction",
        f"retrained {metric}",
        "random mean ± std",
        "percentile",
        "z",
        "supernet tau (p)",
    ]
    for col in cols:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    agg = report["aggregate"]
    for name in (r["strategy"] for r in report["strategies"]):
        for s in report["per_seed"]:
            r = next(x for x in s["strategies"] if x["strategy"] == name)
            ref = s["random_reference"]
            tau = s["tau"].get(name)
            table.add_row(
                name,
                str(s["seed"]),
                _num(r["final_val_metric"]),
                _num(r["tie_fraction"], ".2f"),
                _num(r["retrained_metric"]),
                "-" if ref["mean"] is None else f"{ref['mean']:.3f} ± {ref['std']:.3f}",
                _num(r["percentile"], ".0f"),
                _num(r["z_score"], "+.2f"),
                "-" if tau is None else f"{_num(tau['tau'], '+.2f')} ({_num(tau['p_value'], '.2f')})",
            )
        if many:
            a = agg["strategies"][name]
            ref = agg["random_reference"]
            tau_agg = agg["tau"].get(name)
            table.add_row(
                f"[bold]{name}[/]",
                "mean",
                _spread(a["final_val_metric"]),
                _spread(a["tie_fraction"], ".2f"),
                _spread(a["retrained_metric"]),
                f"{_num(ref['mean']['mean'])} ± {_num(ref['std']['mean'])}",
                _spread(a["percentile"], ".0f"),
                _spread(a["z_score"], "+.2f"),
                "-" if tau_agg is None else _spread(tau_agg["tau"], "+.2f"),
                end_section=True,
            )
    return table


def _summary_lines(report: dict[str, Any]) -> list[str]:
    r = report["ratios"]
    lines = []
    if r.get("ddpnas_over_darts_search_time") is not None:
        diff = r["ddpnas_minus_random_mean_metric"]
        lines.append(
            f"DDPNAS / DARTS search time: [bold]{r['ddpnas_over_darts_search_time']:.3f}x[/] wall, "
            f"[bold]{r['ddpnas_over_darts_search_cpu_time']:.3f}x[/] CPU; "
            f"DDPNAS minus random mean: [bold]{_num(diff, '+.3f')}[/] {report['metric']}"
        )
    if r.get("ddpnas_over_nni_darts_search_time") is not None:
        lines.append(
            f"DDPNAS / NNI DARTS search time: [bold]{r['ddpnas_over_nni_darts_search_time']:.3f}x[/] wall, "
            f"[bold]{r['ddpnas_over_nni_darts_search_cpu_time']:.3f}x[/] CPU; "
            f"DDPNAS / NNI RandomOneShot: [bold]{r['ddpnas_over_nni_random_search_time']:.3f}x[/] wall, "
            f"[bold]{r['ddpnas_over_nni_random_search_cpu_time']:.3f}x[/] CPU"
        )
    tau = report["tau"]
    if tau["supernet"] is not None:
        lines.append(
            f"Kendall tau, {tau['supernet']} supernet estimate vs retrained {report['metric']}: "
            f"[bold]{_num(tau['mean'], '+.3f')}[/] mean over {len(report['seeds'])} seed(s)"
            + ("" if tau["std"] is None else f" (std {tau['std']:.3f})")
        )
    return lines


@bench_app.command("nas")
def bench_nas(
    space: str = typer.Option(
        None, "--space", help="darts, mobilenet, face or nni:module:Class (default: the preset's, face)."
    ),
    data: str = typer.Option(None, "--data", help="KIND:PATH (default: the preset's, synth:fer)."),
    preset: Preset = typer.Option(Preset.quick, "--preset"),
    config: Path = typer.Option(None, "--config", help="TOML layered over the preset."),
    epochs_scale: float = typer.Option(
        None,
        "--epochs-scale",
        help="DARTS/random: multiply the epochs; DDPNAS: multiply the steps per epoch.",
    ),
    device: DeviceName = typer.Option(None, "--device"),
    seed: int = typer.Option(None, "--seed", help="First seed (default: the config's, 0)."),
    seeds: int = typer.Option(
        1, "--seeds", min=1, help="Repeat everything for N seeds (search and retraining): seed .. seed+N-1."
    ),
    retrain_epochs: int = typer.Option(None, "--retrain-epochs", help="Default: the preset's train.epochs."),
    random_archs: int = typer.Option(
        10, "--random-archs", min=0, help="Random architectures retrained per seed (the chance reference)."
    ),
    strategies: str = typer.Option(
        ",".join(STRATEGIES), "--strategies", help="Comma-separated subset of ddpnas,darts,random."
    ),
    out: Path = typer.Option(None, "--out", help="Write the JSON report here."),
    with_nni: bool = typer.Option(
        False,
        "--with-nni",
        help="Also run NNI's DARTS and RandomOneShot on the same space and data (needs the nni extra).",
    ),
) -> None:
    """DDPNAS vs DARTS vs random WS: search time, retrained accuracy against random architectures,
    prune ties and supernet ranking (Kendall tau), over seeds."""
    from automl.nas.bench import run_nas_bench
    from automl.nas.job import search_config

    cfg = search_config(
        preset=preset.value,
        config_file=config,
        space=space,
        data=data,
        epochs_scale=epochs_scale,
        device=device.value if device else None,
        seed=seed,
    )
    if with_nni and cfg.search.space != "darts":
        raise UserError("--with-nni compares NNI's strategies on the darts space: add --space darts")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with console.status("bench nas...") as status:
        report = run_nas_bench(
            cfg,
            seeds=seeds,
            random_archs=random_archs,
            strategies=names,
            retrain_epochs=retrain_epochs,
            device=cfg.search.device,
            with_nni=with_nni,
            status=status.update,
        )
    console.print(_table(report))
    console.print(_quality_table(report))
    for line in _summary_lines(report):
        console.print(line)
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command lives on the shared ``bench`` group (registered by :mod:`automl.cli`)."""
