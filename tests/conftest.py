"""Shared fixtures: a fresh SQLite store per test and an in-process CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'automl.db'}"


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., CliResult]:
    """Run ``automl ARGS...`` in-process (same code path as the console script)."""
    from automl.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def require_or_skip(reason: str | None) -> None:
    """Skip for a missing system dependency, but fail in CI where it must be installed."""
    if reason is None:
        return
    if os.environ.get("AUTOML_REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(f"required system dependency missing in CI: {reason}")
    pytest.skip(reason)


def _nni_missing() -> str | None:
    try:
        import pytorch_lightning  # noqa: F401

        import search_spaces.nni_import  # noqa: F401  (imports NNI without its torch-version warnings)
    except ImportError as exc:
        return f"the optional NNI extra is not installed ({exc}); pip install -e '.[nni]'"
    return None


@pytest.fixture
def nni_installed() -> None:
    """Tests of the NNI adapter: skipped without the ``nni`` extra, but failed in CI, which installs it."""
    require_or_skip(_nni_missing())


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole test session."""
    from automl import pgserver as pg

    require_or_skip(pg.missing_reason())
    server = pg.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh database on the throwaway server for each test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", f"t_{request.node.name.lower()}")[:40] + "_" + uuid.uuid4().hex[:8]
    return postgres_server.create_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_url(request, tmp_path: Path) -> str:
    """The same test against SQLite and against a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'automl.db'}"
    return request.getfixturevalue("postgres_url")


NNI_USER_SPACE = '''
import nni
import torch
from torch import nn
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace


class TinyFaceSpace(ModelSpace):
    """A user's NNI space: a named LayerChoice, an indexed LayerChoice, a 2-of-3 InputChoice."""

    def __init__(self, in_channels: int = 1, num_classes: int = 7, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.block1 = LayerChoice(
            {"conv3": nn.Conv2d(width, width, 3, padding=1), "conv5": nn.Conv2d(width, width, 5, padding=2),
             "pool": nn.MaxPool2d(3, 1, 1)},
            label="block1",
        )
        self.block2 = LayerChoice([nn.Conv2d(width, width, 1), nn.Identity()], label="block2")
        self.skip = InputChoice(3, n_chosen=2, reduction="sum", label="skip")
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        a = self.stem(x)
        b = self.block1(a)
        c = self.block2(b)
        return self.head(self.skip([a, b, c]).mean((2, 3)))


class WithDropout(ModelSpace):
    def __init__(self):
        super().__init__()
        self.rate = nni.uniform("dropout", 0.0, 0.5)
        self.add_mutable(self.rate)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class NotASpace(nn.Module):
    pass
'''


@pytest.fixture
def nni_space_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nni_installed: None) -> Path:
    """``user_nni_space.py`` (an NNI ModelSpace a user would write) in ``tmp_path``, the cwd."""
    path = tmp_path / "user_nni_space.py"
    path.write_text(NNI_USER_SPACE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return path
