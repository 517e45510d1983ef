"""Options and choices shared by several commands, declared once (cheap to import: Typer and enums).

Each ``*_OPTION`` is one :func:`typer.Option`, the default of that parameter in every command that
has it, so the option reads (and is checked) the same everywhere.
"""

from __future__ import annotations

from enum import StrEnum

import typer


class TaskKind(StrEnum):
    fer = "fer"
    au = "au"


class StrategyName(StrEnum):
    ddpnas = "ddpnas"
    darts = "darts"
    random = "random"


class Preset(StrEnum):
    quick = "quick"
    paper = "paper"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


JSON_TABLE_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")
JSON_RESULT_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")
REPORT_OUT_OPTION = typer.Option(None, "--out", help="Write the JSON report here.")
FIXED_SEED_OPTION = typer.Option(0, "--seed", help="Random seed.")

# The options of a run (search, train, hpo, bench nas): None takes the configuration's value.
DATA_OPTION = typer.Option(None, "--data", help="KIND:PATH, e.g. synth:fer (default: the config's data).")
DEVICE_OPTION = typer.Option(None, "--device", help="auto, cpu or cuda (default: the config's).")
SEED_OPTION = typer.Option(
    None, "--seed", help="Random seed of weights, batches and sampling (default: the config's, 0)."
)
CONFIG_OPTION = typer.Option(None, "--config", help="TOML file layered over the preset.")
CPU_THREADS_OPTION = typer.Option(
    None, "--cpu-threads", min=1, help="torch threads on CPU (default: the config's search.cpu_threads)."
)
EPOCHS_SCALE_OPTION = typer.Option(
    None, "--epochs-scale", help="DARTS/random: multiply the epochs; DDPNAS: multiply the steps per epoch."
)
SEARCH_PRESET_OPTION = typer.Option(Preset.quick, "--preset", help="quick (minutes on a CPU) or paper.")
RUN_PRESET_OPTION = typer.Option(
    None, "--preset", help="quick|paper (default: the run's stored config, or quick for a file)."
)
SPACE_OPTION = typer.Option(
    None,
    "--space",
    help="The genotype's search space. Required, and must match, to train a genotype of a user's NNI "
    "space (nni:module:Class): a genotype is data and never names code to import by itself.",
)
