"""A genotype is data: its ``"space": "nni:..."`` never makes automl import (run) the module it names.

Only the user's explicit choice does: ``--space nni:...`` on the command line, or -- for a stored
run -- the run's own stored config (what ``automl search --space`` recorded). Everything else is a
one-line error (exit 2) and the user's module is never imported: the module here writes a marker
file when imported, and the marker must not appear.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from automl.store import open_store
from tests.conftest import NNI_USER_SPACE

MARKER_LINE = "import pathlib; pathlib.Path(__file__).with_name('IMPORTED').write_text('ran')\n"
ARCH = {"block1": "conv3", "block2": 0, "skip": [0, 1]}
TINY = """
[search]
device = "cpu"
cpu_threads = 1
[data]
image_size = 16
n = 60
[train]
epochs = 1
batch_size = 32
"""


@pytest.fixture
def evil(tmp_path: Path) -> tuple[str, Path, Path]:
    """(space name, genotype file, marker path): a module that leaves a marker when imported."""
    module = tmp_path / "evil_space.py"
    module.write_text(MARKER_LINE + NNI_USER_SPACE)
    space = f"nni:{module}:TinyFaceSpace"
    genotype = tmp_path / "evil.json"
    genotype.write_text(json.dumps({"space": space, "arch": ARCH}))
    return space, genotype, tmp_path / "IMPORTED"


def _refused(res, space: str) -> None:
    assert res.code == 2, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res.err
    line = " ".join(res.err.split())
    assert "names user code" in line and f"give '{space}' as the space to allow it (--space)" in line, res.err


def test_a_genotype_file_cannot_import_the_code_it_names(cli, db_url, evil, tmp_path):
    space, genotype, marker = evil
    (tmp_path / "tiny.toml").write_text(TINY)
    for args in (
        ("train", genotype, "--config", tmp_path / "tiny.toml"),
        ("hpo", genotype, "--trials", "1"),
        ("bench", "face", "--genotype", genotype, "--epochs", "1"),
        ("train", genotype, "--space", "face"),  # a --space that is not the genotype's: no
    ):
        res = cli("--db", db_url, *args)
        if "--space" in args:
            assert res.code == 2 and "does not match the requested space 'face' (--space)" in res.err, res.err
        else:
            _refused(res, space)
        assert not marker.exists(), args
    assert open_store(db_url).list_runs() == []  # refused before any run was created


def test_the_explicit_space_option_allows_it(cli, db_url, evil, tmp_path, nni_installed):
    space, genotype, marker = evil
    (tmp_path / "tiny.toml").write_text(TINY)
    try:
        res = cli("--db", db_url, "train", genotype, "--space", space, "--config", tmp_path / "tiny.toml")
    finally:
        torch.set_num_threads(2)
    assert res.code == 0, res.err
    assert marker.exists()  # the user chose it: imported
    store = open_store(db_url)
    run = store.get_run(store.list_runs(kind="train")[0]["id"])
    assert run["state"] == "completed" and run["config"]["search"]["space"] == space  # recorded


def test_a_stored_run_allows_only_the_space_its_config_names(cli, db_url, evil, tmp_path):
    space, _genotype, marker = evil
    store = open_store(db_url)
    # A search run whose stored config says darts, but whose architecture names the user's module
    # (a tampered or imported database row): its config is no explicit choice of that module.
    run_id = store.create_run(kind="search", config={"search": {"space": "darts"}}, space="darts", task="fer")
    store.add_architecture(run_id, {"space": space, "arch": ARCH}, role="final")
    store.set_summary(run_id, {"plan": {"in_channels": 1, "num_outputs": 7, "image_size": 16}})
    store.set_state(run_id, "completed")
    for args in (("train", str(run_id)), ("hpo", str(run_id), "--trials", "1")):
        _refused(cli("--db", db_url, *args), space)
        assert not marker.exists(), args
    res = cli("--db", db_url, "export", str(run_id), "--format", "nni", "--out", tmp_path / "x.json")
    assert res.code == 2 and "names user code" in res.err and "Traceback" not in res.err, res.err
    assert not marker.exists() and not (tmp_path / "x.json").exists()


def test_a_config_file_cannot_name_a_search_space_to_import(cli, db_url, evil, tmp_path):
    space, _genotype, marker = evil
    cfg = tmp_path / "evil.toml"
    cfg.write_text(f'[search]\nspace = "{space}"\n')
    res = cli("--db", db_url, "search", "--config", cfg, "--dry-run")
    _refused(res, space)
    assert not marker.exists()


def test_the_library_guard_and_the_dashboard(evil):
    from dashboard import genotype_graph
    from search_spaces import UserCodeRefusedError, create_space

    space, genotype, marker = evil
    with pytest.raises(UserCodeRefusedError, match="names user code"):
        create_space(space)
    with pytest.raises(UserCodeRefusedError):
        create_space(space, allow_user_code="nni:other:Space")
    try:
        from search_spaces.nni_export import instantiate
    except ModuleNotFoundError:  # no NNI: the payload path does not exist
        pass
    else:
        payload = {"format": "nni-frozen-architecture", "model_space": space[len("nni:"):],
                   "init_kwargs": {}, "arch": ARCH}  # fmt: skip
        with pytest.raises(UserCodeRefusedError):
            instantiate(payload)
    # The dashboard draws a stored nni genotype from its arch dict alone.
    dots = genotype_graph.genotype_dots(json.loads(genotype.read_text()))
    assert list(dots) == [space]
    assert not marker.exists()
