"""The one list of Optuna samplers and pruners ``automl hpo`` knows, by name or as objects.

Every place that names a sampler or a pruner -- ``automl hpo``'s checks and help, the library's
:func:`automl.hpo_job.tune_job` and the trial workers (:mod:`automl.hpo_workers`) -- asks this
module, so a new name is added once. A caller may also
pass an Optuna object (``optuna.samplers.CmaEsSampler()``, ``optuna.pruners.PercentilePruner(25)``);
it is used as it is (its own seed included: worker processes each get a copy of it).

Cheap to import: Optuna is imported only to build or to type-check an object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.errors import UserError

if TYPE_CHECKING:
    import optuna

SAMPLERS: dict[str, str] = {
    "tpe": "Tree-structured Parzen estimator (constant liar, so parallel workers spread out)",
    "random": "independent uniform draws",
    "nsga2": "NSGA-II, a genetic algorithm for several objectives",
}
PRUNERS: dict[str, str] = {
    "median": "stop a trial whose epoch score is below the median of earlier trials at that epoch",
    "hyperband": "Hyperband's successive halving brackets",
    "none": "never prune",
}

def _choices(names: dict[str, str]) -> str:
    keys = list(names)
    return ", ".join(keys[:-1]) + f" or {keys[-1]}"


def sampler_name(sampler: Any) -> str:
    """What is recorded with a run: the registry name, or the class name of an Optuna object."""
    return sampler if isinstance(sampler, str) else type(sampler).__name__


pruner_name = sampler_name


def check_sampler(sampler: Any) -> None:
    """Refuse (one-line :class:`UserError`) a name this registry lacks or an object that is no sampler."""
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise UserError(f"unknown sampler '{sampler}' (choose {_choices(SAMPLERS)})")
        return
    import optuna

    if not isinstance(sampler, optuna.samplers.BaseSampler):
        raise UserError(f"sampler must be a name ({_choices(SAMPLERS)}) or an Optuna sampler, "
                        f"not {type(sampler).__name__}")


def check_pruner(pruner: Any) -> None:
    """Refuse a pruner name this registry lacks or an object that is no Optuna pruner."""
    if isinstance(pruner, str):
        if pruner not in PRUNERS:
            raise UserError(f"unknown pruner '{pruner}' (choose {_choices(PRUNERS)})")
        return
    import optuna

    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise UserError(f"pruner must be a name ({_choices(PRUNERS)}) or an Optuna pruner, "
                        f"not {type(pruner).__name__}")


def create_sampler(sampler: Any, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for a registry name (seeded with ``seed``), or ``sampler`` itself."""
    import optuna

    check_sampler(sampler)
    if not isinstance(sampler, str):
        return sampler
    if sampler == "tpe":
        # constant_liar: running trials count as bad guesses, so parallel workers spread out.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.NSGAIISampler(seed=seed)


def create_pruner(pruner: Any) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a registry name, or ``pruner`` itself."""
    import optuna

    check_pruner(pruner)
    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()
