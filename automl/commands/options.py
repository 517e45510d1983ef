"""Choices shared by several commands' options (cheap to import: enums only)."""

from __future__ import annotations

from enum import StrEnum


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
