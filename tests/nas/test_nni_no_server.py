"""Nothing we start with NNI listens on a port (NNI's experiment would start a web server on 0.0.0.0).

Every socket ``bind``/``listen`` made while NNI's strategies and our search over an NNI space run is
recorded; none may listen, and any bind must be to loopback.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
import torch

from automl.config import load_config
from automl.nas.recorder import MemoryRecorder

TINY = {
    "search": {"device": "cpu", "space": "darts", "steps_per_epoch": "pass", "cpu_threads": 1},
    "data": {"image_size": 8, "n": 40, "batch_size": 64},
    "supernet": {"init_channels": 2, "layers": 3, "nodes": 1},
    "ddpnas": {"pruning_step": 1, "warmup_epochs": 0},
    "darts": {"epochs": 1},
    "random": {"epochs": 1, "candidates": 2},
    "train": {"init_channels": 4, "layers": 3},
}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def socket_calls(monkeypatch):
    calls: list[tuple[str, object]] = []
    real_bind, real_listen = socket.socket.bind, socket.socket.listen

    def bind(self, address):
        calls.append(("bind", address))
        return real_bind(self, address)

    def listen(self, *args):
        calls.append(("listen", self.getsockname()))
        return real_listen(self, *args)

    class Popen(subprocess.Popen):  # NNI's web server is a Node process it spawns
        def __init__(self, args, *rest, **kwargs):
            calls.append(("spawn", args))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(subprocess, "Popen", Popen)
    return calls


def _check(calls):
    assert not [c for c in calls if c[0] in ("listen", "spawn")], calls
    for _, address in calls:
        if isinstance(address, tuple):
            assert address[0] in LOOPBACK, f"bound beyond loopback: {address}"


def test_the_guard_sees_a_server(socket_calls):
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
    with pytest.raises(AssertionError):
        _check(socket_calls)
    socket_calls.clear()
    subprocess.Popen(["true"]).wait()
    with pytest.raises(AssertionError):
        _check(socket_calls)


def test_nni_strategies_open_no_server(nni_installed, socket_calls):
    from automl.nas.nni_baselines import run_nni_strategy
    from automl.nas.search import load_search_data

    cfg = load_config("quick", overrides=TINY)
    data = load_search_data(cfg)
    threads = torch.get_num_threads()
    try:
        for name in ("nni-darts", "nni-random"):
            result = run_nni_strategy(name, cfg, data, "cpu")
            assert result["genotype"]["space"] == "darts"
    finally:
        torch.set_num_threads(threads)
    _check(socket_calls)


def test_ddpnas_over_an_nni_space_opens_no_server(nni_space_module, socket_calls, tmp_path):
    from automl.nas.search import SearchLoop

    over = {k: dict(v) for k, v in TINY.items()}
    over["search"]["space"] = "nni:user_nni_space:TinyFaceSpace"
    threads = torch.get_num_threads()
    try:
        outcome = SearchLoop(load_config("quick", overrides=over), MemoryRecorder(), run_dir=tmp_path).run()
    finally:
        torch.set_num_threads(threads)
    assert outcome is not None and outcome.genotype["space"] == "nni:user_nni_space:TinyFaceSpace"
    _check(socket_calls)
