"""The registry of search strategies: one name -> one factory, one :func:`create_strategy`.

The config (``search.strategy``), the CLI's ``--strategy`` choices, ``automl bench nas`` and the
library all validate against :func:`strategy_names`. A factory takes the resolved
:class:`~automl.config.Config` and the :class:`~search_spaces.base.SearchSpace` and returns a
:class:`~automl.nas.strategy.Strategy`; :func:`register_strategy` adds one of your own (it then
works from Python; the CLI lists the built-in three). Module import is cheap: the strategy
classes (and torch) load only when a factory runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from automl.errors import UserError

if TYPE_CHECKING:
    from automl.config import Config
    from automl.nas.strategy import Strategy
    from search_spaces.base import SearchSpace

StrategyFactory = Callable[["Config", "SearchSpace"], "Strategy"]


def scaled_epochs(n: int, scale: float) -> int:
    """``n`` epochs times ``scale``, at least one."""
    return max(1, int(round(n * scale)))


def _ddpnas(cfg: Config, space: SearchSpace) -> Strategy:
    from automl.nas.ddpnas import DDPNASStrategy

    d = cfg.ddpnas
    return DDPNASStrategy(
        space,
        pruning_step=d.pruning_step,
        warmup_epochs=d.warmup_epochs,
        update_rule=d.update_rule,
        temperature=d.temperature,
        momentum_gamma=d.momentum_gamma,
        skip_caps=d.skip_caps,
        seed=cfg.search.seed,
    )


def _darts(cfg: Config, space: SearchSpace) -> Strategy:
    from automl.nas.darts import DartsStrategy

    d = cfg.darts
    return DartsStrategy(
        space,
        epochs=scaled_epochs(d.epochs, cfg.search.epochs_scale),
        arch_lr=d.arch_lr,
        arch_weight_decay=d.arch_weight_decay,
        skip_caps=cfg.ddpnas.skip_caps,
    )


def _random(cfg: Config, space: SearchSpace) -> Strategy:
    from automl.nas.random_ws import RandomWSStrategy

    r = cfg.random
    return RandomWSStrategy(
        space,
        epochs=scaled_epochs(r.epochs, cfg.search.epochs_scale),
        candidates=r.candidates,
        seed=cfg.search.seed,
    )


_STRATEGIES: dict[str, StrategyFactory] = {"ddpnas": _ddpnas, "darts": _darts, "random": _random}
BUILTIN_STRATEGIES = tuple(_STRATEGIES)


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy name, built-in ones first."""
    return tuple(_STRATEGIES)


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make ``name`` a valid ``search.strategy`` (from Python) built by ``factory(cfg, space)``."""
    if not name or not name.isidentifier():
        raise ValueError(f"a strategy name must be an identifier, not {name!r}")
    if name in BUILTIN_STRATEGIES:
        raise ValueError(f"'{name}' is a built-in strategy")
    _STRATEGIES[name] = factory


def check_strategy_name(name: str) -> str:
    if name not in _STRATEGIES:
        raise UserError(f"unknown strategy '{name}' (choose one of: {', '.join(_STRATEGIES)})")
    return name


def create_strategy(strategy: str | Strategy | Any, space: SearchSpace, cfg: Config) -> Strategy:
    """A :class:`~automl.nas.strategy.Strategy` from a registered name, or the object itself.

    ``search.epochs_scale`` multiplies DARTS' and random WS' epoch budgets; DDPNAS' epoch count
    is fixed by the ops per decision and ``pruning_step`` (each op trains once per round), so for
    DDPNAS the scale changes the steps per epoch instead (:func:`automl.nas.search.epoch_steps`).
    """
    if not isinstance(strategy, str):
        return strategy
    return _STRATEGIES[check_strategy_name(strategy)](cfg, space)
