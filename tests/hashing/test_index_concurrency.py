"""One writer at a time: concurrent adds from real processes keep every item, a second writer
waits or says who holds the lock, a stale copy refuses to save, and what a SIGKILLed writer left
behind is cleaned up by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hashing import BSODH, HashingError, IndexConflictError, IndexLockedError
from hashing.index import MANIFEST, HashIndex, remove_orphans
from hashing.locking import OWNER_NAME

ROOT = Path(__file__).resolve().parents[2]
DIM = 8


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((3, DIM)) * 3
    y = rng.integers(0, 3, n)
    return centers[y] + rng.standard_normal((n, DIM)), y


def _base_index(root: Path, n: int = 40) -> Path:
    idx = HashIndex(BSODH(16, seed=0), DIM)
    X, y = _data(0, n)
    idx.add(X, labels=y, sources=[f"base:{i}" for i in range(n)])
    return idx.save(root)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("PYTHONSTARTUP", None)
    return env


# Each writer process adds ROUNDS batches of its own items, one per round, the way every writer
# does (automl.retrieval.add_to_index, behind ``automl index add``, is this plus the learning
# checks): lock, load, add, save. Both processes of a round are released at once and sleep
# between load and save, so without the lock both would load the same generation and one batch
# would be lost (or, with only the generation check, the second save refused).
WRITER = r"""
import sys, time
from pathlib import Path
import numpy as np
from hashing.index import HashIndex, lock_index

root, tag, sync = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
rounds, n = int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(ord(tag))
centers = np.random.default_rng(99).standard_normal((3, 8)) * 3
for r in range(rounds):
    (sync / f"ready-{tag}-{r}").touch()
    while not (sync / f"go-{r}").exists():
        time.sleep(0.005)
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.standard_normal((n, 8))
    with lock_index(root, timeout=60, purpose=f"writer {tag}"):
        index = HashIndex.load(root)
        index.add_batches(X, labels=y, sources=[f"{tag}:{r}:{i}" for i in range(n)], batch_size=n)
        time.sleep(0.25)  # widen the window between load and save
        index.save(root)
"""


def test_concurrent_adds_from_two_processes_keep_every_item(tmp_path):
    root = _base_index(tmp_path / "ix")
    sync = tmp_path / "sync"
    sync.mkdir()
    rounds, n = 3, 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), tag, str(sync), str(rounds), str(n)],
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    try:
        for r in range(rounds):
            deadline = time.monotonic() + 60
            while not all((sync / f"ready-{t}-{r}").exists() for t in "ab"):
                assert time.monotonic() < deadline, "writers did not get ready"
                assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
                time.sleep(0.01)
            (sync / f"go-{r}").touch()  # both writers race for the same generation
        errs = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert [p.returncode for p in procs] == [0, 0], errs
    index = HashIndex.load(root)
    expected = {f"{t}:{r}:{i}" for t in "ab" for r in range(rounds) for i in range(n)}
    assert expected <= set(index.sources)
    assert len(index) == 40 + 2 * rounds * n and index.generation == 1 + 2 * rounds
    assert len(set(index.ids.tolist())) == len(index)
    assert not (root / OWNER_NAME).exists()


def test_add_to_index_waits_for_the_lock_holder(tmp_path):
    """The product's add path (``automl index add``) takes the lock from load to save."""
    from automl import retrieval

    root = _base_index(tmp_path / "ix")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with HashIndex.locked(root, purpose="another add"):
            held.set()
            release.wait(10)
            index = HashIndex.load(root)  # the holder adds too, while the other add waits
            index.add(_data(8, 3)[0], sources=["holder"] * 3)
            index.save(root)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    X, y = _data(9, 6)
    faces = retrieval.Embedded(X, [f"waiter:{i}" for i in range(6)], y)
    with pytest.raises(IndexLockedError, match="another add"):
        retrieval.add_to_index(root, faces, lock_timeout=0)
    threading.Timer(0.3, release.set).start()
    grown = retrieval.add_to_index(root, faces, lock_timeout=10)
    t.join()
    assert len(grown.index) == 49 and {"holder", "waiter:5"} <= set(HashIndex.load(root).sources)


def test_a_second_writer_waits_then_saves(tmp_path):
    root = _base_index(tmp_path / "ix")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with HashIndex.locked(root, purpose="slow holder"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    t0 = time.monotonic()
    with HashIndex.locked(root, timeout=10):
        waited = time.monotonic() - t0
        index = HashIndex.load(root)
        index.add(*_data(1, 5)[:1])
        index.save(root)
    t.join()
    assert waited >= 0.4 and len(HashIndex.load(root)) == 45


def test_a_writer_that_gives_up_says_who_holds_the_lock(tmp_path):
    root = _base_index(tmp_path / "ix")
    before = _snapshot(root)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with HashIndex.locked(root, purpose="automl index add"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        index = HashIndex.load(root)
        index.add(*_data(2, 5)[:1])
        for timeout in (0, 0.2):
            with pytest.raises(IndexLockedError) as err:
                index.save(root, lock_timeout=timeout)
            msg = str(err.value)
            assert len(msg.splitlines()) == 1 and f"process {os.getpid()}" in msg
            assert "automl index add" in msg and err.value.param == "lock_timeout"
    finally:
        release.set()
        t.join()
    assert {k: v for k, v in _snapshot(root).items() if k != OWNER_NAME} == before


def test_a_stale_copy_refuses_to_save_and_writes_nothing(tmp_path):
    root = _base_index(tmp_path / "ix")
    first, second = HashIndex.load(root), HashIndex.load(root)
    first.add(_data(3, 10)[0], sources=["first"] * 10)
    first.save(root)
    after_first = _snapshot(root)
    second.add(_data(4, 10)[0], sources=["second"] * 10)
    with pytest.raises(IndexConflictError, match="changed since this copy was loaded") as err:
        second.save(root)
    assert len(str(err.value).splitlines()) == 1
    assert _snapshot(root) == after_first  # nothing written, nothing removed
    assert len(HashIndex.load(root)) == 50

    # A brand-new index never replaces a saved one by accident; overwrite=True says it means it.
    fresh = HashIndex(BSODH(16, seed=1), DIM)
    fresh.add(_data(5, 7)[0])
    with pytest.raises(IndexConflictError, match="already holds a saved index"):
        fresh.save(root)
    fresh.save(root, overwrite=True)
    assert len(HashIndex.load(root)) == 7


def test_next_writer_removes_orphans_and_stale_temp_files(tmp_path):
    root = _base_index(tmp_path / "ix")
    manifest = json.loads((root / MANIFEST).read_text())
    orphans = [
        root / "emb-0123456789abcdef0123456789abcdef.npy",
        root / "codes.g7.npy",
        root / "sources.g7.json",
        root / f".{MANIFEST}.3f2a91.tmp",
        root / ".codes.g7.npy.abc123.tmp",
    ]
    for p in orphans:
        p.write_bytes(b"left behind by a killed writer")
    (root / "notes.txt").write_text("the user's own file")
    assert len(HashIndex.load(root)) == 40  # readers ignore what the manifest does not list

    index = HashIndex.load(root)
    index.add(*_data(6, 5)[:1])
    index.save(root)
    names = {p.name for p in root.iterdir()}
    assert not any(p.name in names for p in orphans)
    assert "notes.txt" in names  # never a file the index does not write
    back = HashIndex.load(root)
    assert len(back) == 45 and back.generation == manifest["generation"] + 1
    assert remove_orphans(root) == []


def test_without_a_manifest_only_a_new_save_clears_the_parts(tmp_path):
    root = _base_index(tmp_path / "ix")
    (root / MANIFEST).unlink()  # a broken index: its parts are all someone has left
    parts = {p.name for p in root.iterdir()}
    with HashIndex.locked(root):  # e.g. an add, which then fails to load: it deletes nothing
        pass
    assert {p.name for p in root.iterdir()} == parts
    fresh = HashIndex(BSODH(16, seed=0), DIM)
    fresh.add(_data(12, 4)[0])
    fresh.save(root)  # a new index saved there on purpose: the old parts go
    committed = set(json.loads((root / MANIFEST).read_text())["files"])
    assert {p.name for p in root.iterdir()} == committed | {MANIFEST, ".lock"}
    assert len(HashIndex.load(root)) == 4


# Dies (SIGKILL from the test) in the middle of writing its new generation.
KILLED = r"""
import sys, time
from pathlib import Path
import numpy as np
from hashing.index import HashIndex

root, signal_file = Path(sys.argv[1]), Path(sys.argv[2])
real, calls = np.save, [0]
def save_then_hang(*args, **kwargs):
    real(*args, **kwargs)
    calls[0] += 1
    if calls[0] == 2:  # the new embedding segment and codes are on disk, the manifest is not
        signal_file.touch()
        time.sleep(120)
np.save = save_then_hang
with HashIndex.locked(root, purpose="doomed add"):
    index = HashIndex.load(root)
    index.add(np.random.default_rng(0).standard_normal((30, 8)))
    index.save(root)
"""


def test_sigkill_mid_add_leaves_orphans_the_next_add_removes(tmp_path):
    root = _base_index(tmp_path / "ix")
    committed = set(json.loads((root / MANIFEST).read_text())["files"])
    flag = tmp_path / "half-written"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(root), str(flag)], env=_env())
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never got there"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = {p.name for p in root.iterdir()} - committed - {MANIFEST, ".lock"}
    assert any(n.startswith("emb-") for n in left) and any(n.startswith("codes.g") for n in left)
    assert OWNER_NAME in left  # the dead writer's name tag; its lock died with it
    assert len(HashIndex.load(root)) == 40  # the committed generation is intact

    from automl import retrieval

    X, y = _data(7, 12)
    grown = retrieval.add_to_index(
        root, retrieval.Embedded(X, [f"new:{i}" for i in range(12)], y), lock_timeout=5
    )
    now = {p.name for p in root.iterdir()}
    dead_segments = {n for n in left if n.startswith("emb-")}
    assert not dead_segments & now and OWNER_NAME not in now
    # Exactly the committed files remain (a reused name such as codes.g2.npy was rewritten).
    assert now - {MANIFEST, ".lock"} == set(json.loads((root / MANIFEST).read_text())["files"])
    assert len(HashIndex.load(root)) == 52 == len(grown.index)


def test_manifest_is_written_with_the_umask_and_no_temp_left(tmp_path):
    old = os.umask(0o027)
    try:
        root = _base_index(tmp_path / "ix")
    finally:
        os.umask(old)
    assert (root / MANIFEST).stat().st_mode & 0o777 == 0o640
    assert (root / ".lock").stat().st_mode & 0o777 == 0o640  # filelock's chmod follows the umask too
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_an_unlockable_directory_is_one_line(tmp_path, monkeypatch):
    import hashing.locking

    class Unwritable:
        def __init__(self, *args, **kwargs):
            pass

        def acquire(self):
            raise PermissionError(13, "Permission denied")

    root = _base_index(tmp_path / "ix")
    monkeypatch.setattr(hashing.locking, "FileLock", Unwritable)
    with pytest.raises(HashingError, match="cannot take the writer lock .*Permission denied") as err:
        HashIndex.load(root).save(root)
    assert not isinstance(err.value, IndexLockedError)


def test_a_reader_racing_a_commit_reads_the_new_generation(tmp_path, monkeypatch):
    root = _base_index(tmp_path / "ix")
    real = HashIndex.__dict__["_from_manifest"].__func__
    raced = []

    def commit_in_between(cls, *args):
        if not raced:  # another writer commits generation 2 (and drops generation 1's files)
            raced.append(True)
            writer = HashIndex.load(root)
            writer.add(_data(11, 5)[0])
            writer.save(root)
        return real(cls, *args)

    monkeypatch.setattr(HashIndex, "_from_manifest", classmethod(commit_in_between))
    index = HashIndex.load(root)
    assert raced and index.generation == 2 and len(index) == 45
