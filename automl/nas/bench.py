"""The NAS benchmark behind ``automl bench nas``: DDPNAS vs DARTS vs random WS, over seeds, against chance.

One run of three searches says little: a found architecture's test accuracy is only meaningful
against the spread of *random* architectures of the same space trained with the same recipe
(Li & Talwalkar 2019; Yang et al. 2020, "NAS evaluation is frustratingly hard"), and one seed
cannot tell a strategy from luck. So, for every seed (the search seed *and* the retraining seed):

* every strategy searches the same space on the same data and device, one after the other
  (search wall and CPU seconds, the supernet's last validation metric);
* for DDPNAS, the fraction of prune decisions that were decided by an *exact tie* of theta: on a
  small validation split many paths score the same accuracy, and then ``argmin`` picks the lowest
  index, not the worse op -- a high fraction says the pruning order was an artefact;
* ``random_archs`` uniformly random architectures of the space (the same draw the random-WS
  strategy uses, within the search's budget when there is one) are retrained with exactly the
  same recipe as the found ones; each found architecture gets its percentile rank among them and
  its distance to their mean in units of their standard deviation;
* each single-path supernet (DDPNAS, random WS) estimates those random architectures (the
  validation metric of each as a single path), and Kendall's tau between the estimates and the
  stand-alone test metrics says whether the supernet ranks architectures at all (NAS-Bench-201's
  check of weight sharing).

Per-seed figures and their mean and standard deviation over seeds go into one JSON-able dict;
the CLI (:mod:`automl.commands.bench_nas`) only parses options, calls :func:`run_nas_bench` and
prints.

Random architectures are drawn as *choices* (one candidate index per decision) and turned into
genotypes by the space. In the DARTS space ``DartsSpace.random_choice`` draws, per node, two
distinct inputs uniformly with a uniformly random non-``none`` op each and ``none`` on every other
edge: ``genotype_from_choice`` keeps exactly those two edges (the top-2 of the choice's one-hot
weights), and the same choice run as a single path on the supernet is exactly that cell (``none``
edges add zero), so the supernet's estimate and the retrained network are the same architecture.
"""

from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from automl.config import Config
from automl.nas.strategies import BUILTIN_STRATEGIES, strategy_names

STRATEGIES = BUILTIN_STRATEGIES  # the registry of automl.nas.strategies

# Per-strategy figures summarised over seeds (mean, std) in ``aggregate``.
SUMMARY_FIELDS = (
    "search_seconds",
    "search_cpu_seconds",
    "seconds_per_epoch",
    "params",
    "final_val_metric",
    "tie_fraction",
    "retrained_metric",
    "percentile",
    "z_score",
    "minus_random_mean",
    "supernet_tau",
    "supernet_tau_p_value",
)

Status = Callable[[str], None]


# --- pure helpers ---------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    """``float(value)``, or ``None`` for missing and NaN values (JSON has no NaN)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def percentile_rank(value: float, population: Sequence[float]) -> float | None:
    """Percent of ``population`` that ``value`` beats, ties counted half (0..100; ``None`` if empty).

    Ties count half so that an architecture as good as every random one ranks 50, not 100: on a
    small test split many networks score the same accuracy.
    """
    if len(population) == 0:
        return None
    below = sum(1 for p in population if p < value)
    equal = sum(1 for p in population if p == value)
    return 100.0 * (below + 0.5 * equal) / len(population)


def z_score(value: float, population: Sequence[float]) -> float | None:
    """``(value - mean) / std`` of ``population`` (sample std); ``None`` when the std is 0 or undefined.

    The found-minus-random-mean figure in units of the random spread: a difference smaller than 1
    is within what picking any architecture gives.
    """
    if len(population) < 2:
        return None
    std = statistics.stdev(population)
    if std == 0:
        return None
    return (value - statistics.fmean(population)) / std


def prune_ties(update: Mapping[str, Any]) -> list[bool | None]:
    """Per decision of one distribution update: was its prune decided by an exact tie of theta?

    ``True``: the pruned op's theta equalled another survivor's exactly, so the prune rule's
    tie-break, not the search, chose it; ``False``: pruned without a tie; ``None``: nothing pruned.
    ``theta`` in an update is the theta *after* the update, which is what pruning compared (a V3
    row renormalisation divides a row by one number and keeps equal entries equal); the survivors
    at pruning time are the ones alive after it plus the op pruned now.

    When the update carries its own per-decision ``tied`` (or ``ties``) list, that is used as is
    (any truthy entry: tied).
    """
    pruned = list(update["pruned"])
    supplied = update.get("tied", update.get("ties"))
    if isinstance(supplied, Sequence) and not isinstance(supplied, str) and len(supplied) == len(pruned):
        return [None if p is None else bool(t) for p, t in zip(pruned, supplied, strict=True)]
    theta = np.asarray(update["theta"], dtype=float)
    alive = np.asarray(update["alive"], dtype=bool)
    out: list[bool | None] = []
    for i, p in enumerate(pruned):
        if p is None:
            out.append(None)
            continue
        before = alive[i].copy()
        before[int(p)] = True
        others = np.flatnonzero(before)
        others = others[others != int(p)]
        out.append(bool(np.any(theta[i, others] == theta[i, int(p)])))
    return out


def tie_counts(updates: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(prune decisions decided by an exact tie, prune decisions) over all ``updates``."""
    tied = decided = 0
    for update in updates:
        for flag in prune_ties(update):
            if flag is None:
                continue
            decided += 1
            tied += int(flag)
    return tied, decided


def tie_fraction(updates: Iterable[Mapping[str, Any]]) -> float | None:
    """Fraction (0..1) of prune decisions decided by an exact tie; ``None`` when nothing was pruned."""
    tied, decided = tie_counts(updates)
    return tied / decided if decided else None


def tie_source(updates: Iterable[Mapping[str, Any]]) -> str:
    """``"recorder"`` when the updates carried their own ``tied``/``ties`` field, else ``"computed"``."""
    return "recorder" if any("tied" in u or "ties" in u for u in updates) else "computed"


def kendall_tau(estimates: Sequence[float], actual: Sequence[float]) -> tuple[float | None, float | None]:
    """Kendall's tau-b (``scipy.stats.kendalltau``) and its p-value; ``None``s when undefined.

    Undefined: fewer than two pairs, or either side constant (common on tiny validation splits,
    where every path may score the same accuracy) -- scipy returns NaN, which JSON cannot hold.
    """
    if len(estimates) != len(actual):
        raise ValueError(f"{len(estimates)} estimates but {len(actual)} actual values")
    if len(estimates) < 2:
        return None, None
    from scipy.stats import kendalltau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: a warning, and NaN we report as None
        res = kendalltau(list(map(float, estimates)), list(map(float, actual)))
    tau = _finite(res.statistic)
    if tau is not None:  # rounding can put a perfect (anti-)concordance a hair outside [-1, 1]
        tau = max(-1.0, min(1.0, tau))
    return tau, _finite(res.pvalue)


def summarize(values: Iterable[Any]) -> dict[str, Any]:
    """Mean and sample std over seeds of the values that exist (``None``s are skipped and counted out).

    ``std`` is ``None`` for fewer than two values: one seed says nothing about the spread.
    """
    raw = list(values)
    vals = [v for v in (_finite(x) for x in raw) if v is not None]
    return {
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
        "n": len(vals),
        "values": [_finite(x) for x in raw],
    }


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def bench_ratios(figures: Mapping[str, Mapping[str, Any]], random_mean: float | None) -> dict[str, Any]:
    """DDPNAS' search time over each other strategy's, and its metric minus the random mean.

    ``figures[strategy]`` holds ``search_seconds``, ``search_cpu_seconds``, ``retrained_metric``
    (one seed's, or means over seeds); a strategy not run gives no ratio.
    """
    d = figures.get("ddpnas", {})

    def over(name: str, key: str) -> float | None:
        return _ratio(d.get(key), figures.get(name, {}).get(key))

    ratios: dict[str, Any] = {
        "ddpnas_over_darts_search_time": over("darts", "search_seconds"),
        "ddpnas_over_darts_search_cpu_time": over("darts", "search_cpu_seconds"),
        "ddpnas_over_random_search_time": over("random", "search_seconds"),
        "ddpnas_minus_random_mean_metric": (
            d["retrained_metric"] - random_mean
            if random_mean is not None and d.get("retrained_metric") is not None
            else None
        ),
    }
    for key, name in (("nni_darts", "nni-darts"), ("nni_random", "nni-random")):
        if name in figures:
            ratios[f"ddpnas_over_{key}_search_time"] = over(name, "search_seconds")
            ratios[f"ddpnas_over_{key}_search_cpu_time"] = over(name, "search_cpu_seconds")
    return ratios


def bench_targets(
    ratios: Mapping[str, Any], *, ddpnas_z: float | None = None, tau: float | None = None
) -> dict[str, bool | None]:
    """Issue 13's targets (``None``: not measured in this run): DDPNAS searches in <= 0.25x DARTS'
    time, its architecture is at least the random mean and at least one random standard deviation
    above it (``ddpnas_z``: the z-score averaged over seeds), and the supernet ranks architectures
    (Kendall's ``tau`` averaged over seeds >= 0.3)."""

    def le(key: str, limit: float) -> bool | None:
        return None if ratios.get(key) is None else ratios[key] <= limit

    diff = ratios.get("ddpnas_minus_random_mean_metric")
    return {
        "search_time_le_0.25x_darts": le("ddpnas_over_darts_search_time", 0.25),
        "search_cpu_time_le_0.25x_darts": le("ddpnas_over_darts_search_cpu_time", 0.25),
        "metric_ge_random_mean": None if diff is None else diff >= 0,
        "ddpnas_z_ge_1": None if ddpnas_z is None else ddpnas_z >= 1.0,
        "tau_ge_0.3": None if tau is None else tau >= 0.3,
    }


# --- the parts that train ------------------------------------------------------------------


def draw_random_choices(
    space: Any, count: int, rng: np.random.Generator, budget: Any = None
) -> list[list[int]]:
    """``count`` uniformly random architectures as choices, drawn as the random-WS strategy draws.

    Within ``budget`` (the search's ``--max-mflops``/``--max-params``) when there is one, so that
    the reference is the space the strategies searched; else the space's own ``random_choice``
    (the DARTS space: a discrete cell, see the module docstring), else one candidate per decision.
    """
    draw = getattr(space, "random_choice", None)
    choices = []
    for _ in range(count):
        if budget is not None:
            choice = budget.sample(rng)
        elif draw is not None:
            choice = draw(rng)
        else:
            choice = [int(rng.integers(len(d.candidates))) for d in space.decisions()]
        choices.append([int(c) for c in choice])
    return choices


def search_strategy(
    cfg: Config, strategy: str, data: Any, device: str, status: Status | None = None
) -> tuple[dict[str, Any], Any]:
    """Search with one strategy; returns its record and the loop (its trained supernet still alive,
    so that the bench can evaluate random architectures on it)."""
    from automl.nas.recorder import MemoryRecorder
    from automl.nas.search import SearchLoop

    c = cfg.model_copy(deep=True)
    c.search.strategy = strategy  # type: ignore[assignment]
    rec = MemoryRecorder()

    def progress(info: dict[str, Any]) -> None:
        if status is not None:
            status(
                f"seed {c.search.seed}: searching with {strategy}: epoch {info['epoch']}/{info['total']} "
                f"val {info['val_metric']:.3f} ETA {info.get('eta_seconds', 0):.0f} s"
            )

    if status is not None:
        status(f"seed {c.search.seed}: searching with {strategy}...")
    cpu_started = time.process_time()
    started = time.perf_counter()
    loop = SearchLoop(c, rec, data=data, device=device, progress=progress)
    outcome = loop.run()
    total = time.perf_counter() - started
    cpu_total = time.process_time() - cpu_started
    assert outcome is not None
    updates = [rec.distributions[u] for u in sorted(rec.distributions)]
    ties: dict[str, Any] = {
        "tie_fraction": None,
        "tied_decisions": None,
        "prune_decisions": None,
        "tie_source": None,
    }
    if strategy == "ddpnas":
        tied, decided = tie_counts(updates)
        ties = {
            "tie_fraction": tied / decided if decided else None,
            "tied_decisions": tied,
            "prune_decisions": decided,
            "tie_source": tie_source(updates),
        }
    record = {
        "strategy": strategy,
        "seed": c.search.seed,
        "search_seconds": total,
        # CPU seconds of this process: on a shared machine, wall time follows other jobs' load.
        "search_cpu_seconds": cpu_total,
        "epochs": outcome.epochs,
        "seconds_per_epoch": float(np.mean(outcome.epoch_times)) if outcome.epoch_times else None,
        "genotype": outcome.genotype,
        "search_cost": outcome.summary.get("cost"),
        "final_val_metric": rec.epochs[max(rec.epochs)]["val_metric"] if rec.epochs else None,
        **ties,
    }
    return record, loop


def nni_search(
    cfg: Config, name: str, data: Any, device: str, status: Status | None = None
) -> dict[str, Any]:
    """One of NNI's strategies (``--with-nni``), with the same record keys as ours."""
    from automl.nas.nni_baselines import run_nni_strategy

    def progress(info: dict[str, Any]) -> None:
        if status is not None:
            status(f"seed {cfg.search.seed}: searching with {name}: epoch {info['epoch']}/{info['total']}")

    record = run_nni_strategy(name, cfg, data, device, progress=progress)
    record.setdefault("seed", cfg.search.seed)
    for key in ("tie_fraction", "tied_decisions", "prune_decisions", "tie_source"):
        record.setdefault(key, None)
    return record


def retrain(
    genotype: dict[str, Any], data: Any, task: Any, cfg: Config, device: str, seed: int, epochs: int
) -> tuple[float, int]:
    """(test metric, params) of ``genotype`` trained from scratch: the one recipe for found and
    random architectures alike, so that their metrics compare."""
    from automl.training import train_genotype

    result = train_genotype(
        genotype, data, task, cfg.train, device=device, seed=seed, epochs=epochs,
        allow_user_code=cfg.search.space,  # the space this bench searched, the user's --space
    )
    return float(result.metrics[task.primary_metric]), int(result.params)


def _single_path(loop: Any) -> bool:
    """Whether the loop's supernet can run one architecture as a path (DDPNAS, random WS; not
    DARTS' mixed ops, which would ignore the sample)."""
    return getattr(loop.strategy, "mode", None) == "single_path"


def _search_all(
    cfg: Config,
    data: Any,
    device: str,
    strategies: Sequence[str],
    with_nni: bool,
    status: Status | None,
) -> tuple[list[dict[str, Any]], dict[str, Any], Any, Any]:
    """``(records, single-path loops, space, budget)`` of every strategy's search, ours then NNI's.

    Only single-path supernets are kept (they can estimate the random architectures); the others
    are dropped as soon as their search ends, to free their memory before the next search.
    The space is the first search's, or built from the config when only NNI strategies ran.
    """
    results: list[dict[str, Any]] = []
    loops: dict[str, Any] = {}
    space = budget = None
    for name in strategies:
        record, loop = search_strategy(cfg, name, data, device, status)
        results.append(record)
        if space is None:
            space, budget = loop.space, loop.budget
        if _single_path(loop):
            loops[name] = loop
        else:
            del loop
    if with_nni:
        from automl.nas.nni_baselines import NNI_STRATEGIES

        results += [nni_search(cfg, name, data, device, status) for name in NNI_STRATEGIES]
    if space is None:  # only NNI strategies: the space and budget the search would have had
        from automl.nas.search import build_space

        space = build_space(cfg, data.task)
    return results, loops, space, budget


def _supernet_estimates(
    loops: dict[str, Any], choices: Sequence[Any], seed: int, status: Status | None
) -> dict[str, list[float]]:
    """Each kept supernet's metric estimate of every random architecture; the supernets are
    released afterwards (``loops`` is emptied) so that retraining does not share memory with them."""
    estimates: dict[str, list[float]] = {}
    for name, loop in loops.items():
        if status is not None:
            status(f"seed {seed}: {name} supernet estimates {len(choices)} random architectures...")
        estimates[name] = [float(loop.evaluate(list(choice))[1]) for choice in choices]
    loops.clear()
    return estimates


def _retrain_randoms(
    space: Any,
    choices: Sequence[Any],
    estimates: dict[str, list[float]],
    data: Any,
    task: Any,
    cfg: Config,
    device: str,
    seed: int,
    retrain_epochs: int,
    status: Status | None,
) -> list[dict[str, Any]]:
    """The random reference architectures retrained with the found ones' recipe, each row with
    the supernets' estimate of it (what the ranking correlation compares)."""
    randoms = []
    for k, choice in enumerate(choices):
        if status is not None:
            status(f"seed {seed}: retraining random architecture {k + 1}/{len(choices)}...")
        genotype = space.genotype_from_choice(choice)
        metric, params = retrain(genotype, data, task, cfg, device, seed, retrain_epochs)
        randoms.append(
            {
                "choice": choice,
                "genotype": genotype,
                "retrained_metric": metric,
                "params": params,
                "supernet_estimates": {name: est[k] for name, est in estimates.items()},
            }
        )
    return randoms


def _random_reference(randoms: list[dict[str, Any]], metrics: list[float]) -> dict[str, Any]:
    """Summary of the random architectures' retrained metrics (None where there are none)."""
    return {
        "count": len(randoms),
        "mean": statistics.fmean(metrics) if metrics else None,
        "std": statistics.stdev(metrics) if len(metrics) > 1 else 0.0,
        "min": min(metrics) if metrics else None,
        "max": max(metrics) if metrics else None,
        "archs": randoms,
    }


def _rank_against_randoms(
    results: list[dict[str, Any]],
    estimates: dict[str, list[float]],
    metrics: list[float],
    mean: float | None,
) -> dict[str, dict[str, Any]]:
    """Each supernet's Kendall tau (its estimates vs the retrained metrics), returned; and, written
    into each strategy's record, where its found architecture stands among the random ones."""
    taus: dict[str, dict[str, Any]] = {}
    for name, est in estimates.items():
        tau, p = kendall_tau(est, metrics)
        taus[name] = {"tau": tau, "p_value": p, "n": len(est)}
    for r in results:
        found = r["retrained_metric"]
        r["percentile"] = percentile_rank(found, metrics)
        r["z_score"] = z_score(found, metrics)
        r["minus_random_mean"] = found - mean if mean is not None else None
        t = taus.get(r["strategy"], {})
        r["supernet_tau"] = t.get("tau")
        r["supernet_tau_p_value"] = t.get("p_value")
    return taus


def run_seed(
    cfg: Config,
    data: Any,
    task: Any,
    device: str,
    *,
    strategies: Sequence[str],
    random_archs: int,
    retrain_epochs: int,
    with_nni: bool = False,
    status: Status | None = None,
) -> dict[str, Any]:
    """The whole comparison for ``cfg.search.seed`` (search seed and retraining seed alike)."""
    seed = cfg.search.seed
    results, loops, space, budget = _search_all(cfg, data, device, strategies, with_nni, status)
    rng = np.random.default_rng(seed + 1)
    choices = draw_random_choices(space, random_archs, rng, budget)
    # Estimates first, then free the supernets before the retraining.
    estimates = _supernet_estimates(loops, choices, seed, status)
    for r in results:
        if status is not None:
            status(f"seed {seed}: retraining the {r['strategy']} architecture ({retrain_epochs} epochs)...")
        r["retrained_metric"], r["params"] = retrain(
            r["genotype"], data, task, cfg, device, seed, retrain_epochs
        )
    randoms = _retrain_randoms(
        space, choices, estimates, data, task, cfg, device, seed, retrain_epochs, status
    )
    metrics = [a["retrained_metric"] for a in randoms]
    reference = _random_reference(randoms, metrics)
    taus = _rank_against_randoms(results, estimates, metrics, reference["mean"])
    ratios = bench_ratios({r["strategy"]: r for r in results}, reference["mean"])
    return {"seed": seed, "strategies": results, "random_reference": reference, "ratios": ratios, "tau": taus}


def _aggregate(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of every per-strategy figure, the random reference and tau."""
    names = [r["strategy"] for r in per_seed[0]["strategies"]]
    strategies = {}
    for name in names:
        rows = [next(r for r in s["strategies"] if r["strategy"] == name) for s in per_seed]
        strategies[name] = {f: summarize(r.get(f) for r in rows) for f in SUMMARY_FIELDS}
    tau_names = sorted({n for s in per_seed for n in s["tau"]})
    return {
        "strategies": strategies,
        "random_reference": {
            "mean": summarize(s["random_reference"]["mean"] for s in per_seed),
            "std": summarize(s["random_reference"]["std"] for s in per_seed),
        },
        "tau": {
            n: {
                "tau": summarize(s["tau"].get(n, {}).get("tau") for s in per_seed),
                "p_value": summarize(s["tau"].get(n, {}).get("p_value") for s in per_seed),
            }
            for n in tau_names
        },
    }


def _bench_plan(
    cfg: Config,
    seeds: int | Sequence[int],
    random_archs: int,
    strategies: Sequence[str],
    retrain_epochs: int | None,
) -> tuple[list[int], int]:
    """``(seeds to run, retraining epochs)``, refusing bad arguments before any data is loaded,
    so a typo fails in a second rather than after the first search."""
    from automl.errors import UserError

    unknown = [s for s in strategies if s not in strategy_names()]
    if unknown or not strategies:
        raise UserError(f"unknown strategies {unknown} (choose from {', '.join(strategy_names())})",
                        argument="strategies")
    if isinstance(seeds, int):
        seed_list = [cfg.search.seed + i for i in range(seeds)]
    else:
        seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise UserError("bench nas needs at least one seed", argument="seeds")
    if random_archs < 0:
        raise UserError(f"the number of random architectures must be >= 0, not {random_archs}",
                        argument="random_archs")
    epochs = cfg.train.epochs if retrain_epochs is None else int(retrain_epochs)
    if epochs < 1:
        raise UserError(f"the number of retraining epochs must be >= 1, not {epochs}",
                        argument="retrain_epochs")
    return seed_list, epochs


def _bench_data(cfg: Config, with_nni: bool) -> tuple[Config, Any, Any]:
    """``(config, data, task)``: the data loaded once for all seeds, the config's task set to the
    data's (a copy, the caller's is left alone), and NNI checked now rather than after the searches."""
    from automl.data import make_task
    from automl.nas.search import load_search_data

    data = load_search_data(cfg)
    if data.task != cfg.search.task:
        cfg = cfg.model_copy(deep=True)
        cfg.search.task = data.task  # type: ignore[assignment]
    task = make_task(data)
    if with_nni:  # fail before the long searches, not after them
        from automl.nas.nni_baselines import check_nni

        check_nni(cfg, data.task)
    return cfg, data, task


def _headline_tau(aggregate: dict[str, Any], per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ranking correlation the report leads with: DDPNAS' supernet when it ran, else the first
    supernet that has one, per seed and as mean/std over seeds."""
    headline = "ddpnas" if "ddpnas" in aggregate["tau"] else next(iter(aggregate["tau"]), None)
    return {
        "supernet": headline,
        "per_seed": [
            {"seed": s["seed"], **{k: s["tau"].get(headline, {}).get(k) for k in ("tau", "p_value", "n")}}
            for s in per_seed
        ],
        "mean": aggregate["tau"][headline]["tau"]["mean"] if headline else None,
        "std": aggregate["tau"][headline]["tau"]["std"] if headline else None,
    }


def run_nas_bench(
    cfg: Config,
    *,
    seeds: int | Sequence[int] = 1,
    random_archs: int = 10,
    strategies: Sequence[str] = STRATEGIES,
    retrain_epochs: int | None = None,
    device: str = "auto",
    with_nni: bool = False,
    status: Status | None = None,
) -> dict[str, Any]:
    """The benchmark as one JSON-able dict (the CLI prints and saves it).

    ``seeds``: a count N runs seeds ``cfg.search.seed + 0 .. N-1`` (0..N-1 by default), or an
    explicit list. The data set is loaded once, with ``cfg.search.seed``, and shared by all seeds:
    the spread over seeds is that of searching and training, not of the data. ``retrain_epochs``
    defaults to ``cfg.train.epochs``. ``with_nni`` adds NNI's DARTS and RandomOneShot after ours.
    ``status`` receives one-line progress messages.

    Keys kept from the single-seed bench: ``strategies`` and ``random_reference`` are the first
    seed's; ``ratios`` and ``targets_met`` are computed from the means over seeds (for one seed,
    that seed's). Everything per seed is under ``per_seed``, the summaries under ``aggregate``.
    """
    from automl.nas.search import resolve_device

    seed_list, epochs = _bench_plan(cfg, seeds, random_archs, strategies, retrain_epochs)
    dev = str(resolve_device(device if device != "auto" else cfg.search.device))
    cfg, data, task = _bench_data(cfg, with_nni)
    per_seed = []
    for seed in seed_list:
        c = cfg.model_copy(deep=True)
        c.search.seed = seed
        per_seed.append(
            run_seed(
                c, data, task, dev, strategies=strategies, random_archs=random_archs,
                retrain_epochs=epochs, with_nni=with_nni, status=status,
            )  # fmt: skip
        )
    aggregate = _aggregate(per_seed)
    means = {
        name: {f: s["mean"] for f, s in fields.items()} for name, fields in aggregate["strategies"].items()
    }
    ratios = bench_ratios(means, aggregate["random_reference"]["mean"]["mean"])
    tau = _headline_tau(aggregate, per_seed)
    ddpnas_records = [r for s in per_seed for r in s["strategies"] if r["strategy"] == "ddpnas"]
    return {
        "benchmark": "nas",
        "data": data.name,
        "task": data.task,
        "metric": task.primary_metric,
        "device": dev,
        "cpu_count": os.cpu_count(),
        "retrain_epochs": epochs,
        "seeds": seed_list,
        "random_archs": random_archs,
        "config": cfg.model_dump(mode="json"),
        "tie_source": next((r.get("tie_source") for r in ddpnas_records), None),
        "strategies": per_seed[0]["strategies"],
        "random_reference": per_seed[0]["random_reference"],
        "ratios": ratios,
        "targets_met": bench_targets(
            ratios,
            ddpnas_z=means.get("ddpnas", {}).get("z_score"),
            tau=tau["mean"],
        ),
        "tau": tau,
        "per_seed": per_seed,
        "aggregate": aggregate,
        "synthetic": data.name.startswith("synth"),
    }
