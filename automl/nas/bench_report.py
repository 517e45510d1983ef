"""The report of :func:`automl.nas.bench.run_nas_bench` as tables of text, for a console or a notebook.

Each ``*_table`` function returns ``(title, columns, rows)``: plain strings, numbers already
formatted (``mean ± std`` over seeds where there are several, ``-`` for a value no seed had).
An empty row marks the end of a group of rows. ``automl bench nas`` prints them with
:func:`automl.commands.common.print_table`; ``pandas.DataFrame(rows, columns=columns)`` shows
them in a notebook (drop the empty rows first). Pure Python: nothing here imports torch or numpy.
"""

from __future__ import annotations

from typing import Any

Table = tuple[str, list[str], list[list[str]]]


def num(value: float | None, fmt: str = ".3f") -> str:
    """``value`` formatted, ``-`` for None."""
    return "-" if value is None else format(value, fmt)


def spread(summary: dict[str, Any], fmt: str = ".3f", scale: float = 1.0) -> str:
    """``mean`` for one seed, ``mean ± std`` over several; ``-`` when no seed had the value."""
    mean, std = summary["mean"], summary["std"]
    if mean is None:
        return "-"
    text = format(mean / scale, fmt)
    return text if std is None else f"{text} ± {format(std / scale, fmt.lstrip('+'))}"


def _vs_ddpnas(ddpnas: dict[str, Any] | None, name: str, agg: dict[str, Any]) -> str:
    """DDPNAS' search time over ``name``'s, wall and CPU (``-`` for DDPNAS itself or without it)."""
    if ddpnas is None or name == "ddpnas":
        return "-"
    wall = ddpnas["search_seconds"]["mean"] / agg["search_seconds"]["mean"]
    cpu = ddpnas["search_cpu_seconds"]["mean"] / agg["search_cpu_seconds"]["mean"]
    return f"{wall:.3f}x, {cpu:.3f}x"


def results_table(report: dict[str, Any]) -> Table:
    """Search cost and retrained metric per strategy (mean ± std over seeds when there are several),
    then the random architectures' row; with NNI's strategies, DDPNAS' search time over each one's."""
    seeds = report["seeds"]
    title = (
        f"NAS benchmark on {report['data']} ({report['device']}, retrain {report['retrain_epochs']} ep"
        + (f", {len(seeds)} seeds" if len(seeds) > 1 else "")
        + ")"
    )
    agg = report["aggregate"]["strategies"]
    with_nni = any(r["strategy"].startswith("nni-") for r in report["strategies"])
    metric = report["metric"]
    columns = ["strategy", "search s", "CPU s", "epochs", "s/epoch", "params", f"retrained {metric}"]
    if with_nni:
        columns.append("DDPNAS / it: wall, CPU")
    rows = []
    for r in report["strategies"]:
        a = agg[r["strategy"]]
        rows.append([
            r["strategy"],
            spread(a["search_seconds"], ".1f"),
            spread(a["search_cpu_seconds"], ".1f"),
            str(r["epochs"]),
            spread(a["seconds_per_epoch"], ".2f"),
            f"{a['params']['mean'] / 1e3:.1f} k",
            spread(a["retrained_metric"]),
            *([_vs_ddpnas(agg.get("ddpnas"), r["strategy"], a)] if with_nni else []),
        ])  # fmt: skip
    refs = [s["random_reference"] for s in report["per_seed"]]
    if refs[0]["count"]:
        archs = [a for ref in refs for a in ref["archs"]]
        params = sum(a["params"] for a in archs) / len(archs)
        ref_agg = report["aggregate"]["random_reference"]
        label = f"{refs[0]['count']} random archs" + (" / seed" if len(refs) > 1 else "")
        spread_text = f"{ref_agg['mean']['mean']:.3f} ± {num(ref_agg['std']['mean'])}"
        rows.append([label, "-", "-", "-", "-", f"{params / 1e3:.1f} k", spread_text, *(["-"] * with_nni)])
    return title, columns, rows


def _tau(tau: dict[str, Any] | None) -> str:
    return "-" if tau is None else f"{num(tau['tau'], '+.2f')} ({num(tau['p_value'], '.2f')})"


def quality_table(report: dict[str, Any]) -> Table:
    """Per strategy and seed (plus the mean ± std over seeds): is the found architecture better
    than chance, were DDPNAS' prunes decided by ties, does the supernet rank architectures?

    In a mean row, "random mean ± std" is the mean over seeds of each seed's random mean and of
    each seed's random std (the spread of random architectures, not of the seeds)."""
    metric = report["metric"]
    columns = ["strategy", "seed", f"last supernet val {metric}", "tie fraction", f"retrained {metric}",
               "random mean ± std", "percentile", "z", "supernet tau (p)"]  # fmt: skip
    agg = report["aggregate"]
    rows: list[list[str]] = []
    for name in (r["strategy"] for r in report["strategies"]):
        for s in report["per_seed"]:
            r = next(x for x in s["strategies"] if x["strategy"] == name)
            ref = s["random_reference"]
            rows.append([
                name, str(s["seed"]), num(r["final_val_metric"]), num(r["tie_fraction"], ".2f"),
                num(r["retrained_metric"]),
                "-" if ref["mean"] is None else f"{ref['mean']:.3f} ± {ref['std']:.3f}",
                num(r["percentile"], ".0f"), num(r["z_score"], "+.2f"), _tau(s["tau"].get(name)),
            ])  # fmt: skip
        if len(report["seeds"]) > 1:
            a, ref, tau = agg["strategies"][name], agg["random_reference"], agg["tau"].get(name)
            rows.append([
                name, "mean", spread(a["final_val_metric"]), spread(a["tie_fraction"], ".2f"),
                spread(a["retrained_metric"]), f"{num(ref['mean']['mean'])} ± {num(ref['std']['mean'])}",
                spread(a["percentile"], ".0f"), spread(a["z_score"], "+.2f"),
                "-" if tau is None else spread(tau["tau"], "+.2f"),
            ])  # fmt: skip
            rows.append([])
    if rows and not rows[-1]:
        rows.pop()
    return f"Search quality against {report['random_archs']} random architectures per seed", columns, rows


def summary_lines(report: dict[str, Any]) -> list[str]:
    """One line each: DDPNAS' search time over DARTS' (and NNI's), and the supernets' Kendall tau."""
    r = report["ratios"]
    lines = []
    if r.get("ddpnas_over_darts_search_time") is not None:
        lines.append(
            f"DDPNAS / DARTS search time: {r['ddpnas_over_darts_search_time']:.3f}x wall, "
            f"{r['ddpnas_over_darts_search_cpu_time']:.3f}x CPU; "
            f"DDPNAS minus random mean: {num(r['ddpnas_minus_random_mean_metric'], '+.3f')} "
            f"{report['metric']}"
        )
    if r.get("ddpnas_over_nni_darts_search_time") is not None:
        lines.append(
            f"DDPNAS / NNI DARTS search time: {r['ddpnas_over_nni_darts_search_time']:.3f}x wall, "
            f"{r['ddpnas_over_nni_darts_search_cpu_time']:.3f}x CPU; "
            f"DDPNAS / NNI RandomOneShot: {r['ddpnas_over_nni_random_search_time']:.3f}x wall, "
            f"{r['ddpnas_over_nni_random_search_cpu_time']:.3f}x CPU"
        )
    tau = report["tau"]
    if tau["supernet"] is not None:
        lines.append(
            f"Kendall tau, {tau['supernet']} supernet estimate vs retrained {report['metric']}: "
            f"{num(tau['mean'], '+.3f')} mean over {len(report['seeds'])} seed(s)"
            + ("" if tau["std"] is None else f" (std {tau['std']:.3f})")
        )
    return lines
