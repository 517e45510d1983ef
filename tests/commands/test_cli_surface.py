"""The command line's surface: a cheap ``import automl.cli``, clean ``--help`` pages, one-line
usage errors, ``runs list`` in 100 columns, bad ``runs`` / ``dashboard`` / ``doctor`` input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from automl.store import open_store

HEAVY = ("torch", "numpy", "optuna", "sqlalchemy", "alembic", "faiss", "cv2", "streamlit", "scipy")
BOX_CHARS = set("─│╭╮╰╯┌┐└┘━┃")


def _automl(*args: str, columns: int = 100, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "automl", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


# ---------------------------------------------------------------------------------- import cost


def test_importing_the_cli_and_building_every_command_loads_nothing_heavy():
    code = (
        "import sys, automl.cli\n"
        "print('torch' in sys.modules)\n"
        "automl.cli.build_command()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["False", "[]"], res.stdout


def test_automl_help_runs_as_a_program():
    res = _automl("--help")
    assert res.returncode == 0, res.stderr
    assert "search" in res.stdout and "runs" in res.stdout and res.stderr == ""
    res = _automl("--version")
    assert res.returncode == 0 and res.stdout.startswith("automl ")


# ---------------------------------------------------------------------------------- help pages


def _command_paths() -> list[list[str]]:
    from automl.cli import build_command

    def walk(command, prefix):
        yield prefix
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*prefix, name])

    return list(walk(build_command(), []))


def test_every_help_page_exits_0_and_reads_as_user_text(cli):
    paths = _command_paths()
    assert len(paths) > 20  # every group and command, bench and index included
    for path in paths:
        res = cli(*path, "--help")
        shown = " ".join(["automl", *path])
        assert res.code == 0, (shown, res.err)
        assert "Usage: " + shown in " ".join(res.out.split()), shown
        for leftover in ("``", "Args:", ":func:", ":class:", "<bool>"):
            assert leftover not in res.out, (shown, leftover)


def test_placeholders_are_the_same_across_commands(cli):
    for path, expected in (
        (["search"], ["--data", "KIND:PATH", "--resume", "RUN_ID", "--db", "URL"]),
        (["train"], ["RUN_ID|GENOTYPE_FILE", "--data", "KIND:PATH", "--distill-from", "RUN_ID|CKPT"]),
        (["hpo"], ["RUN_ID|GENOTYPE_FILE", "--storage", "URL"]),
        (["export"], ["RUN_ID", "--out", "PATH"]),
        (["runs", "show"], ["RUN_ID"]),
        (["index", "query"], ["INDEX_DIR", "IMAGE"]),
        (["dashboard"], ["--storage", "URL", "--port", "INTEGER"]),
    ):
        out = cli(*path, "--help").out
        assert all(word in out for word in expected), (path, out)
        assert "<int>" not in out and "<str>" not in out and "<path>" not in out, path


# ---------------------------------------------------------------------------------- usage errors

USAGE_ERRORS = [
    (["search", "--strategy", "foo"], "--strategy: 'foo' is not one of ddpnas, darts, random"),
    (["search", "--device", "gpu"], "--device: 'gpu' is not one of auto, cpu, cuda"),
    (["search", "--epochs-scale", "x"], "--epochs-scale: "),
    (["search", "--nproc", "0"], "--nproc: "),
    (["runs", "show"], "missing argument RUN_ID (see automl runs show --help)"),
    (["runs", "show", "abc"], "RUN_ID: "),
    (["runs", "list", "--nope"], "no such option: --nope"),
    (["runs", "list", "--limit"], "'--limit' requires an argument (see automl runs list --help)"),
    (["runs", "list", "--limit", "0"], "--limit: "),
    (["runs", "list", "extra"], "unexpected extra argument"),
    (["runs", "list", "--state", "bogus"], "created, running, completed, failed, interrupted, pruned"),
    (["bogus"], "no such command 'bogus' (see automl --help)"),
    (["export", "1"], "missing option --format (see automl export --help)"),
    (["train"], "missing argument RUN_ID|GENOTYPE_FILE"),
    (["index", "query"], "missing argument INDEX_DIR (see automl index query --help)"),
    (["dashboard", "--port", "0"], "--port: "),
    (["dashboard", "--port", "abc"], "--port: "),
    (["bench", "nas", "--preset", "foo"], "--preset: 'foo' is not one of quick, paper (see automl bench nas"),
    (["--db"], "'--db' requires an argument (see automl --help)"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_usage_mistake_is_one_line_and_exit_2(cli, args, expected):
    res = cli(*args)
    assert res.code == 2, res
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in res.err and not BOX_CHARS & set(res.err + res.out)


def test_a_usage_mistake_from_the_program_is_one_line_too():
    res = _automl("search", "--strategy", "foo")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: --strategy: 'foo' is not one of ddpnas, darts, random (see automl search --help)"
    )


def test_ctrl_c_in_a_command_is_exit_130_with_one_line(cli, monkeypatch, tmp_path):
    import automl.store.run_views as run_views

    def interrupted(url):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_views, "open_existing", interrupted)
    res = cli("--db", f"sqlite:///{tmp_path / 'x.db'}", "runs", "list")
    assert res.code == 130 and res.err.strip().startswith("interrupted") and "Traceback" not in res.err


# ---------------------------------------------------------------------------------- runs list


def _seed(url: str) -> dict[str, int]:
    store = open_store(url)
    ddpnas = store.create_run(
        kind="search", space="face", task="fer", strategy="ddpnas", data="synth:fer", config={}
    )
    for epoch, value in enumerate([0.2, 0.45, 0.31]):  # DDPNAS stores no best in its summary
        store.record_epoch(ddpnas, epoch, {"val_metric": value, "metric_name": "accuracy"})
    store.set_summary(ddpnas, {"metric_name": "accuracy", "signal": {"learned": True, "warnings": []}})
    store.set_state(ddpnas, "completed")
    darts = store.create_run(kind="search", space="darts", task="fer", strategy="darts", data="synth:fer")
    store.record_epoch(darts, 0, {"val_metric": 0.3, "metric_name": "accuracy"})  # still running
    rand = store.create_run(
        kind="search", space="mobilenet", task="au", strategy="random",
        data="bp4d:/a/very/long/path/to/the/bp4d/frames/and/more",
    )  # fmt: skip
    store.set_summary(rand, {"best_val_metric": 0.61, "metric_name": "mean_f1"})
    train = store.create_run(kind="train", space="face", task="au", data="synth:au", parent_run_id=ddpnas)
    store.set_summary(train, {"test_metric": 0.533, "primary_metric": "mean_f1", "signal": {"split": "test"}})
    hpo = store.create_run(kind="hpo", space="nni:my_package.spaces:AVeryLongModelSpaceName", task="fer")
    store.set_state(hpo, "interrupted")
    store.close()
    return {"ddpnas": ddpnas, "darts": darts, "random": rand, "train": train, "hpo": hpo}


def test_runs_list_shows_metric_split_and_best_for_every_strategy_in_100_columns(db_url):
    ids = _seed(db_url)
    res = _automl("--db", db_url, "runs", "list", columns=100)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 100, res.stdout
    row = {int(line.split()[0]): line for line in lines if line.split() and line.split()[0].isdigit()}
    assert "val acc 0.45" in row[ids["ddpnas"]]  # the best of its epochs
    assert "val acc 0.3" in row[ids["darts"]]
    assert "val F1 0.61" in row[ids["random"]]
    assert "test F1 0.533" in row[ids["train"]]
    assert all(not BOX_CHARS - {"─"} & set(line) for line in lines)


def test_runs_list_json_carries_the_best(cli, db_url):
    ids = _seed(db_url)
    rows = {r["id"]: r for r in json.loads(cli("--db", db_url, "runs", "list", "--json").out)}
    assert rows[ids["ddpnas"]]["best"] == {"split": "val", "metric": "accuracy", "value": 0.45}
    assert rows[ids["train"]]["best"] == {"split": "test", "metric": "mean_f1", "value": 0.533}
    assert rows[ids["hpo"]]["best"]["value"] is None


def test_runs_state_choices_are_the_stores(cli):
    from automl.store.repository import RUN_STATES

    res = cli("runs", "list", "--state", "nope")
    assert res.code == 2 and f"'nope' is not one of {', '.join(RUN_STATES)} (" in res.err


def test_bench_nas_strategies_are_the_benchmarks(cli):
    from automl.nas.bench import STRATEGIES

    res = cli("search", "--strategy", "nope")  # the choices of --strategy, and bench nas' default
    assert res.code == 2 and f"'nope' is not one of {', '.join(STRATEGIES)} (" in res.err
    assert f"[default: {','.join(STRATEGIES)}]" in " ".join(cli("bench", "nas", "--help").out.split())


@pytest.mark.parametrize("command", [["runs", "list"], ["runs", "show", "1"], ["runs", "list", "--json"]])
def test_a_mistyped_sqlite_path_is_one_line_and_not_created(cli, tmp_path, command):
    missing = tmp_path / "typo.db"
    res = cli("--db", f"sqlite:///{missing}", *command)
    assert res.code == 2 and res.out == ""
    assert res.err.count("\n") == 1 and "does not exist" in res.err and str(missing) in res.err
    assert not missing.exists()


def test_runs_list_with_no_store_yet_says_so_and_creates_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOML_DB", raising=False)
    res = cli("runs", "list")  # the default store, sqlite:///automl.db in the working directory
    assert res.code == 0 and "No runs yet" in res.out
    assert not (tmp_path / "automl.db").exists()


def test_runs_list_filters_that_match_nothing_say_so(cli, db_url):
    _seed(db_url)
    res = cli("--db", db_url, "runs", "list", "--state", "failed")
    assert res.code == 0 and "No runs match --state failed" in res.out


# ---------------------------------------------------------------------------------- dashboard


@pytest.fixture
def no_streamlit_started(monkeypatch):
    pytest.importorskip("streamlit")
    from automl import dashboard_launch

    started: list[list[str]] = []

    def popen(args, **_):
        started.append(list(args))
        raise AssertionError("the dashboard must not start on bad input")

    monkeypatch.setattr(dashboard_launch.subprocess, "Popen", popen)
    return started


def test_dashboard_bad_input_is_one_line_and_exit_2(cli, tmp_path, no_streamlit_started):
    a_file = tmp_path / "not-an-index"
    a_file.write_text("x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, expected in (
            (["--port", str(port)], f"cannot serve on 127.0.0.1:{port}"),
            (["--host", "no-such-host.invalid"], "host no-such-host.invalid is not a known address"),
            (["--index", str(tmp_path / "nope")], "index directory not found"),
            (["--index", str(a_file)], "not a directory"),
            (["--port", "70000"], "--port: "),
        ):
            res = cli("dashboard", *args)
            assert res.code == 2, (args, res)
            lines = [line for line in res.err.splitlines() if line.strip()]
            assert len(lines) == 1 and expected in lines[0], (args, res.err)
            assert "Traceback" not in res.err
    assert no_streamlit_started == []


# ---------------------------------------------------------------------------------- doctor


def test_doctor_hides_the_password_even_when_the_store_fails_oddly(cli, monkeypatch):
    import automl.store

    url = "postgresql://u:s3cret@127.0.0.1:1/x"

    def odd_failure(*_, **__):
        raise RuntimeError(f"driver exploded on {url} (password=s3cret)")

    monkeypatch.setattr(automl.store, "open_store", odd_failure)
    res = cli("--db", url, "doctor", "--json")
    assert res.code == 0, res.err
    info = json.loads(res.out)
    assert info["db_reachable"] is False and "RuntimeError" in info["db_error"]
    assert "s3cret" not in res.out + res.err
