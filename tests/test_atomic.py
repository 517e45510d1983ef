"""automl.atomic: the one atomic writer -- umask-respecting modes, no temp files left, no half files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from automl.atomic import (
    ArtifactWriteError,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    check_writable,
    is_temp_name,
)
from automl.errors import UserError

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if is_temp_name(p.name)]


@pytest.mark.parametrize(("mask", "want"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give_them(tmp_path, umask, mask, want):
    umask(mask)
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    with atomic_write(tmp_path / "b.txt", "w") as fh:
        fh.write("text\n")
    atomic_write_json(tmp_path / "c.json", {"k": 1})
    for name in ("a.bin", "b.txt", "c.json"):
        assert _mode(tmp_path / name) == want, name
    assert json.loads((tmp_path / "c.json").read_text()) == {"k": 1}
    assert (tmp_path / "b.txt").read_text() == "text\n"


def test_a_failure_inside_the_block_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _temps(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C too
        with atomic_write(tmp_path / "new.json") as fh:
            fh.write(b"{")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_directory_or_a_path_under_a_file_is_an_artifact_write_error(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "file.txt").write_text("keep")
    for bad in (tmp_path / "d", tmp_path / "file.txt" / "out.json"):
        for write in (lambda p: atomic_write_bytes(p, b"x"), check_writable):
            with pytest.raises(ArtifactWriteError, match="cannot write") as info:
                write(bad)
            assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    assert (tmp_path / "file.txt").read_text() == "keep"
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions")
def test_a_read_only_directory_is_an_artifact_write_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "out.json").write_text("old")
    ro.chmod(0o555)
    try:
        with pytest.raises(ArtifactWriteError, match="permission denied"):
            atomic_write_bytes(ro / "out.json", b"new")
        with pytest.raises(ArtifactWriteError, match="permission denied"):
            check_writable(ro / "other.json")
        assert (ro / "out.json").read_text() == "old"
        assert sorted(p.name for p in ro.iterdir()) == ["out.json"]
    finally:
        ro.chmod(0o755)


def test_check_writable_creates_the_directory_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "new" / "sub" / "out.json"
    assert check_writable(target) == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []


def test_checkpoint_save_respects_the_umask(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from automl.checkpoint import atomic_write_bytes as reexported
    from automl.checkpoint import save_checkpoint

    assert reexported is atomic_write_bytes  # one writer, importable from its old home
    for mask, want in ((0o022, 0o644), (0o077, 0o600)):
        umask(mask)
        out = tmp_path / f"m{mask:o}" / "model.safetensors"
        info = save_checkpoint(out, {"w": torch.ones(2)}, {"task": "fer"})
        assert _mode(info.path) == want and _mode(info.sidecar) == want
        assert _temps(out.parent) == []


def test_search_state_save_respects_the_umask(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from automl.nas.search import atomic_torch_save

    umask(0o022)
    path = tmp_path / "search_state.pt"
    atomic_torch_save({"epoch": 3, "t": torch.arange(3)}, path)
    assert _mode(path) == 0o644 and _temps(tmp_path) == []
    assert torch.load(path, weights_only=True)["epoch"] == 3


def test_bench_report_respects_the_umask(tmp_path, umask):
    from automl.atomic import atomic_write_json  # the writer of every `automl bench ... --out`

    for mask, want in ((0o022, 0o644), (0o077, 0o600)):
        umask(mask)
        out = tmp_path / f"bench{mask:o}.json"
        atomic_write_json(out, {"rows": [1, 2]})
        assert _mode(out) == want and json.loads(out.read_text()) == {"rows": [1, 2]}
    assert _temps(tmp_path) == []


def test_image_cache_is_compacted_in_place_and_a_failed_fill_leaves_nothing(tmp_path, umask):
    from automl.data.cache import build_images, open_mmap

    umask(0o022)
    path = tmp_path / "images.npy"

    def fill(out: np.ndarray) -> np.ndarray:
        out[:] = (np.arange(len(out)) % 251).astype(np.uint8)[:, None, None]
        ok = np.ones(len(out), bool)
        ok[[0, 5, len(out) - 1]] = False
        return ok

    images, ok = build_images(path, 5000, (2, 3), fill)
    want = (np.arange(5000) % 251).astype(np.uint8)[ok]
    assert images.shape == (4997, 2, 3) and (images[:, 1, 2] == want).all()
    assert (open_mmap(path)[:, 0, 0] == want).all() and _mode(path) == 0o644
    assert _temps(tmp_path) == []

    def broken(out: np.ndarray) -> np.ndarray:
        raise OSError("disk went away")

    with pytest.raises(ArtifactWriteError):
        build_images(tmp_path / "other.npy", 10, (1,), broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy", "images.ok.npy"]
