"""Library errors speak of the thing (``argument`` names the parameter); the CLI adds the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl.commands.flags import ARGUMENT_FLAGS, with_flag_hint
from automl.errors import UserError


def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _library_error(call) -> UserError:
    with pytest.raises(UserError) as info:
        call()
    exc = info.value
    assert "--" not in str(exc), str(exc)
    return exc


def test_a_bad_device_seed_or_data_names_the_argument_not_a_flag(monkeypatch: pytest.MonkeyPatch):
    from automl.data import load_data
    from automl.nas.job import search_config
    from automl.nas.search import resolve_device as search_device
    from automl.training import resolve_device

    _no_gpu(monkeypatch)
    for device in (resolve_device, search_device):
        exc = _library_error(lambda device=device: device("cuda"))
        assert exc.argument == "device" and "no CUDA GPU is visible" in str(exc)
    assert _library_error(lambda: resolve_device("tpu9")).argument == "device"
    exc = _library_error(lambda: load_data("synth:fer", n=20, seed=-1))
    assert exc.argument == "seed" and "between 0 and 2**32-1" in str(exc)
    exc = _library_error(lambda: load_data("imagenet:/x"))
    assert exc.argument == "data" and "unknown data kind 'imagenet'" in str(exc)
    assert _library_error(lambda: load_data("")).argument == "data"
    # a config value set by an argument is that argument's error, not the preset's
    exc = _library_error(lambda: search_config(seed=-1))
    assert exc.argument == "seed" and not str(exc).startswith("preset")


def test_a_bad_value_from_a_config_file_names_the_file(tmp_path: Path):
    from automl.nas.job import search_config

    cfg = tmp_path / "bad.toml"
    cfg.write_text("[search]\nseed = -1\n")
    exc = _library_error(lambda: search_config(config_file=cfg))
    assert exc.argument is None and str(exc).startswith(f"{cfg}: bad value for 'search.seed'")
    exc = _library_error(lambda: search_config(config_file=tmp_path / "none.toml"))
    assert exc.argument == "config_file" and "config file not found" in str(exc)


def _one_line(res) -> str:
    assert res.code == 2, (res.code, res.out, res.err)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return lines[0]


def test_the_cli_prints_the_library_message_with_the_flag(cli, monkeypatch: pytest.MonkeyPatch, db_url):
    from automl.data import load_data
    from automl.training import resolve_device

    _no_gpu(monkeypatch)
    cases = [
        (("--db", db_url, "search", "--device", "cuda", "--json"), lambda: resolve_device("cuda"),
         "--device"),
        (("data", "preview", "--seed", "-1", "--out", "g.png"), lambda: load_data("synth:fer", seed=-1),
         "--seed"),
        (("data", "info", "--data", "imagenet:/x"), lambda: load_data("imagenet:/x"), "--data"),
    ]  # fmt: skip
    for args, call, flag in cases:
        message = str(_library_error(call))
        assert _one_line(cli(*args)) == f"error: {message} ({flag})", args


def test_the_hint_is_added_once_and_only_for_known_arguments():
    assert with_flag_hint("bad device", "device") == "bad device (--device)"
    assert with_flag_hint("--device cuda is not here", "device") == "--device cuda is not here"
    assert with_flag_hint("--nproc 2 is too many", "n") == "--nproc 2 is too many (--n)"  # --n is not --nproc
    assert with_flag_hint("bad thing", "no_such_parameter") == "bad thing"
    assert with_flag_hint("bad thing", None) == "bad thing"


def test_every_flag_in_the_table_is_a_real_option():
    from automl.cli import build_command

    options: set[str] = set()

    def walk(command) -> None:
        for param in getattr(command, "params", []):
            options.update(o for o in getattr(param, "opts", []) if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(build_command())
    for argument, hint in ARGUMENT_FLAGS.items():
        flags = [part.strip() for part in hint.split("/") if part.strip().startswith("--")]
        assert flags and all(f in options for f in flags), (argument, hint)


def test_input_error_is_a_user_error_with_an_argument():
    from automl.genotype_source import InputError, SpaceMismatchError

    exc = InputError("occlude must be one of none, lower, upper", argument="occlude")
    assert isinstance(exc, UserError) and exc.argument == "occlude" and exc.exit_code == 2
    assert SpaceMismatchError("darts", "face").argument == "space"
    assert UserError("plain").argument is None
