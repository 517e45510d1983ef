"""``automl dashboard``: the Streamlit command line and environment it starts, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl import dashboard_launch


class FakePopen:
    """Stands in for the Streamlit subprocess: records how it was started, exits at once."""

    calls: list[dict] = []

    def __init__(self, args, env=None, **_):
        FakePopen.calls.append({"args": list(args), "env": dict(env or {})})

    def wait(self, timeout=None) -> int:
        return 0


@pytest.fixture
def fake_popen(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    FakePopen.calls = []
    monkeypatch.setattr(dashboard_launch.subprocess, "Popen", FakePopen)
    return FakePopen.calls


def test_starts_streamlit_on_localhost_with_the_store_and_indexes(cli, fake_popen, tmp_path: Path) -> None:
    idx_a, idx_b = tmp_path / "a", tmp_path / "b"
    idx_a.mkdir()
    idx_b.mkdir()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    res = cli("dashboard", "--port", "8999", "--index", str(idx_a), "--index", str(idx_b), "--db", url)
    assert res.code == 0, res.err
    (call,) = fake_popen
    args = call["args"]
    assert (
        args[1:4] == ["-m", "streamlit", "run"] and Path(args[4]).name == "app.py" and Path(args[4]).is_file()
    )
    flags = dict(zip(args[5::2], args[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8999"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert call["env"]["AUTOML_DB"] == url
    assert call["env"]["AUTOML_INDEXES"].split(os.pathsep) == [str(idx_a), str(idx_b)]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:  # the command checks the port is free before starting Streamlit
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_explicit_host_and_storage(cli, fake_popen) -> None:
    port = str(_free_port())
    res = cli("dashboard", "--host", "0.0.0.0", "--port", port, "--storage", "sqlite:///optuna.db")
    assert res.code == 0, res.err
    args = fake_popen[0]["args"]
    assert args[args.index("--server.address") + 1] == "0.0.0.0"
    assert fake_popen[0]["env"]["AUTOML_OPTUNA_STORAGE"] == "sqlite:///optuna.db"


def test_missing_index_directory_is_a_user_error(cli, fake_popen, tmp_path: Path) -> None:
    res = cli("dashboard", "--index", str(tmp_path / "nope"))
    assert res.code == 2
    assert "index directory not found" in res.err and "automl index build" in res.err
    assert fake_popen == []
