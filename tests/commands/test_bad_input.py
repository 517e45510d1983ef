"""Bad input, one row per case: exit code 2, one line on stderr, no traceback, nothing stored changed.

Every row runs the ``automl`` command line against a store ``s.db`` in the test's folder. Most rows
call :func:`automl.cli.main` in-process (the same code path as ``python -m automl``, including its
``UserError`` handler; a subprocess costs seconds of torch import on a busy machine); rows that need
a fresh interpreter (NNI made unimportable) or that check the real entry point run
``python -m automl`` in a subprocess. "Nothing stored changed": every file under the test's folder
hashes the same before and after -- a SQLite database by its content (``iterdump``), since opening
it may rewrite its header's journal mode and leave ``-wal`` / ``-shm`` files, which are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CELL = [["skip_connect", 0], ["max_pool_3x3", 1]] * 4
GENOTYPE = {
    "space": "darts",
    "nodes": 4,
    "normal": CELL,
    "normal_concat": [2, 3, 4, 5],
    "reduce": CELL,
    "reduce_concat": [2, 3, 4, 5],
}
NNI_GENOTYPE = {"space": "nni:user_space_xyz:Space", "arch": {"block": "conv3"}}
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)
AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
)
LATIN1 = "Fréquence,été".encode("latin-1")  # 0xe9: not UTF-8
SQLITE_HEADER = b"SQLite format 3\x00"
JOURNALS = ("-wal", "-shm", "-journal")
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ bad files


def _fer2013_latin1(t: Path) -> None:
    pixels = " ".join(["128"] * 48 * 48)
    (t / "fer2013.csv").write_bytes(b"emotion,pixels,Usage\n0," + pixels.encode() + b",Training\n" + LATIN1)


def _rafdb_latin1(t: Path) -> None:
    (t / "raf" / "EmoLabel").mkdir(parents=True)
    (t / "raf" / "Image" / "aligned").mkdir(parents=True)
    (t / "raf" / "EmoLabel" / "list_patition_label.txt").write_bytes(b"train_00001.jpg 5\n" + LATIN1 + b"\n")


def _disfa(t: Path, intensity: bytes) -> None:
    for a in DISFA_AUS:
        folder = t / "disfa" / "ActionUnit_Labels" / "SN001"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"SN001_au{a}.txt").write_bytes(b"1,0\n2," + intensity + b"\n")
    (t / "disfa" / "img" / "SN001").mkdir(parents=True)


def _bp4d(t: Path, frame: str, value: str) -> None:
    (t / "bp4d" / "AUCoding" / "AU_OCC").mkdir(parents=True)
    (t / "bp4d" / "img" / "F001" / "T1").mkdir(parents=True)
    header = "0," + ",".join(map(str, BP4D_AUS))
    row = f"{frame}," + ",".join([value] + ["0"] * (len(BP4D_AUS) - 1))
    (t / "bp4d" / "AUCoding" / "AU_OCC" / "F001_T1.csv").write_text(f"{header}\n{row}\n")


def _affectnet(t: Path, train_row: str) -> None:
    (t / "aff").mkdir()
    (t / "aff" / "training.csv").write_text(AFFECTNET_HEADER + train_row + "\n")
    (t / "aff" / "validation.csv").write_text(AFFECTNET_HEADER + "1/b.jpg,0,0,10,10,,1,0,0\n")


def _labels_latin1(t: Path) -> None:
    import cv2
    import numpy as np

    from tests.tiny_embedder import write_tiny_embedder

    (t / "model").mkdir()
    write_tiny_embedder(t / "model")
    (t / "faces").mkdir()
    for i in range(2):
        cv2.imwrite(str(t / "faces" / f"{i}.png"), np.full((48, 48), 60 + 80 * i, np.uint8))
    (t / "labels.csv").write_bytes(b"file,label\n0.png,happy\n1.png," + LATIN1 + b"\n")


def _genotype(t: Path, genotype: dict = GENOTYPE) -> None:
    (t / "g.json").write_text(json.dumps(genotype))


# ------------------------------------------------------------------------------------ cases


@dataclass
class Case:
    id: str
    argv: list[str]  # after ``--db sqlite:///<tmp>/s.db``; "{t}" is the test's folder
    setup: Callable[[Path], None] | None = None
    says: list[str] = field(default_factory=list)  # fragments the one line must contain
    subprocess: bool = False  # a fresh ``python -m automl`` (else automl.cli.main in-process)
    python: str | None = None  # code run before the CLI in that subprocess (``-c``)
    usage_error: bool = False  # a Typer usage error: its one-line form is another engineer's work


NO_NNI = "import sys; sys.modules['nni'] = None; from automl.cli import main; main()"

# fmt: off
CASES = [
    # non-UTF-8 label files
    Case("fer2013-not-utf8", ["data", "info", "--data", "fer2013:{t}/fer2013.csv"], _fer2013_latin1,
         ["fer2013.csv must be UTF-8 text"]),
    Case("rafdb-not-utf8", ["data", "info", "--data", "rafdb:{t}/raf"], _rafdb_latin1,
         ["list_patition_label.txt must be UTF-8 text"]),
    Case("disfa-not-utf8", ["data", "info", "--data", "disfa:{t}/disfa"], lambda t: _disfa(t, b"\xe9"),
         ["SN001_au1.txt must be UTF-8 text"]),
    Case("labels-csv-not-utf8",
         ["index", "build", "--model", "{t}/model/model.pt", "--images", "{t}/faces", "--labels",
          "{t}/labels.csv", "--out", "{t}/ix", "--no-detect", "--no-record"],
         _labels_latin1, ["labels.csv must be UTF-8 text"]),
    # inf / nan / huge values in label files
    Case("bp4d-au-inf", ["data", "info", "--data", "bp4d:{t}/bp4d"], lambda t: _bp4d(t, "1", "inf"),
         ["F001_T1.csv:2", "integers"]),
    Case("bp4d-frame-huge", ["data", "info", "--data", "bp4d:{t}/bp4d"], lambda t: _bp4d(t, "1e400", "0"),
         ["F001_T1.csv:2"]),
    Case("bp4d-au-nan", ["data", "info", "--data", "bp4d:{t}/bp4d"], lambda t: _bp4d(t, "1", "nan"),
         ["F001_T1.csv:2"]),
    Case("disfa-intensity-inf", ["data", "info", "--data", "disfa:{t}/disfa"], lambda t: _disfa(t, b"inf"),
         ["SN001_au1.txt:2", "frame,intensity"]),
    Case("disfa-intensity-huge", ["data", "info", "--data", "disfa:{t}/disfa"],
         lambda t: _disfa(t, b"1e999"), ["SN001_au1.txt:2"]),
    Case("affectnet-box-inf", ["data", "info", "--data", "affectnet:{t}/aff"],
         lambda t: _affectnet(t, "1/a.jpg,0,0,inf,10,,1,0,0"), ["training.csv:2", "finite numbers"]),
    Case("affectnet-box-huge", ["data", "info", "--data", "affectnet:{t}/aff"],
         lambda t: _affectnet(t, "1/a.jpg,1e400,0,10,10,,1,0,0"), ["training.csv:2", "finite numbers"]),
    # seeds and the epoch scale (config validation; --dry-run: nothing would run anyway)
    Case("seed-negative", ["search", "--seed", "-1", "--dry-run"], None,
         ["seed must be between 0 and 2**32-1"]),
    Case("seed-too-large", ["search", "--seed", str(2**32), "--dry-run"], None, ["2**32-1", str(2**32)]),
    Case("seed-beyond-int64", ["train", "g.json", "--seed", str(2**64)], _genotype, ["2**32-1"]),
    Case("epochs-scale-inf", ["search", "--epochs-scale", "inf", "--dry-run"], None,
         ["epochs_scale", "finite"]),
    Case("epochs-scale-nan", ["search", "--epochs-scale", "nan", "--dry-run"], None,
         ["epochs_scale", "finite"]),
    Case("epochs-scale-zero", ["search", "--epochs-scale", "0", "--dry-run"], None, ["greater than 0"]),
    Case("epochs-scale-negative", ["search", "--epochs-scale", "-1", "--dry-run"], None, ["greater than 0"]),
    # --db at a file that is not a SQLite database
    Case("db-is-a-png", ["--db", "sqlite:///{t}/face.png", "runs", "list"],
         lambda t: (t / "face.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)),
         ["face.png is not a SQLite database"], subprocess=True),
    Case("db-is-a-text-file", ["--db", "sqlite:///{t}/notes.txt", "hpo", "g.json"],
         lambda t: (_genotype(t), (t / "notes.txt").write_text("my notes\n")),
         ["notes.txt is not a SQLite database"]),
    Case("db-folder-is-a-file", ["--db", "sqlite:///{t}/notes.txt/s.db", "hpo", "g.json"],
         lambda t: (_genotype(t), (t / "notes.txt").write_text("my notes\n")),
         ["notes.txt is a file, not a directory"]),
    # data preview / synth sizes
    Case("preview-n-negative", ["data", "preview", "--n", "-5", "--out", "grid.png"], None,
         ["1 to 10,000 faces", "-5"]),
    Case("preview-n-huge", ["data", "preview", "--n", "100000000", "--out", "grid.png"], None,
         ["1 to 10,000 faces"]),
    Case("preview-n-zero", ["data", "preview", "--n", "0", "--out", "grid.png"], None, ["1 to 10,000 faces"]),
    Case("synth-n-zero", ["data", "synth", "--format", "fer2013", "--out", "synth", "--n", "0"], None,
         ["at least 10"]),
    Case("synth-seed-negative", ["data", "synth", "--format", "fer2013", "--out", "synth", "--seed", "-1"],
         None, ["seed must be between 0 and 2**32-1"]),
    Case("preview-seed-negative", ["data", "preview", "--seed", "-1", "--out", "grid.png"], None,
         ["seed must be between 0 and 2**32-1"]),
    # train of an NNI genotype where NNI cannot be imported
    Case("train-nni-space-without-nni", ["train", "g.json", "--space", NNI_GENOTYPE["space"]],
         lambda t: _genotype(t, NNI_GENOTYPE), ["needs NNI", "pip install"], subprocess=True, python=NO_NNI),
    # hpo refusals before any run is created
    Case("hpo-hyperband-two-objectives",
         ["hpo", "g.json", "--pruner", "hyperband", "--objectives", "accuracy,latency", "--trials", "1"],
         _genotype, ["hyperband pruner needs a single objective"]),
]
# Typer usage errors (bad option values): exit 2 and no traceback here; their one-line form is the
# work of the Typer usage-error change in automl/cli.py (see the ``usage_error`` branch below).
CASES += [
    Case("preview-n-not-a-number", ["data", "preview", "--n", "lots", "--out", "grid.png"], None,
         usage_error=True),
]
# fmt: on


def _case_params() -> list:
    params = [pytest.param(c, id=c.id) for c in CASES]
    import torch

    marks = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
    cuda = Case("hpo-device-cuda-without-gpu", ["hpo", "g.json", "--device", "cuda", "--trials", "1"],
                _genotype, ["no CUDA GPU"])  # fmt: skip
    params.append(pytest.param(cuda, id=cuda.id, marks=marks))
    return params


# --------------------------------------------------------------------------------- helpers


def _fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, and its folders but for the readers' ``.automl_cache``
    (made when a data set is opened, before its files are read); a SQLite database by its content,
    its journals skipped."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_dir() and p.name != ".automl_cache":
            out[str(p.relative_to(root))] = "folder"
        if not p.is_file() or p.name.endswith(JOURNALS):
            continue
        data = p.read_bytes()
        if data.startswith(SQLITE_HEADER):
            con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                data = "\n".join(con.iterdump()).encode()
            finally:
                con.close()
        out[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated store: each case starts from a copy, so opening it creates nothing."""
    from automl.store import open_store

    path = tmp_path_factory.mktemp("store") / "s.db"
    open_store(f"sqlite:///{path}").close()
    return path


def _run(case: Case, argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    if case.subprocess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONPATH": str(REPO)}
        head = [sys.executable, "-c", case.python] if case.python else [sys.executable, "-m", "automl"]
        proc = subprocess.run([*head, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
        return proc.returncode, proc.stdout, proc.stderr
    from automl.cli import main

    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    if case.usage_error:  # one line only once Typer usage errors are converted (automl/cli.py)
        return
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and err.strip() == lines[0], f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in case.says:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


# ----------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", _case_params())
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case, tmp_path: Path, store_template: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    shutil.copy(store_template, tmp_path / "s.db")
    if case.setup is not None:
        case.setup(tmp_path)
    argv = [a.replace("{t}", str(tmp_path)) for a in case.argv]
    if argv[0] != "--db":
        argv = ["--db", f"sqlite:///{tmp_path / 's.db'}", *argv]
    before = _fingerprint(tmp_path)
    code, out, err = _run(case, argv, tmp_path, capsys)
    _check(case, code, out, err)
    assert _fingerprint(tmp_path) == before


def _make_immutable(path: Path) -> Callable[[], None] | None:
    """Take write access away from ``path``; returns how to give it back (None: cannot here).

    As root, permission bits do not apply: only the immutable attribute (``chattr +i``) does."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o444)
        return lambda: path.chmod(mode)
    if shutil.which("chattr") is None:
        return None
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_store_refuses_a_writing_command(tmp_path, store_template, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "s.db"
    shutil.copy(store_template, db)
    _genotype(tmp_path)
    restore = _make_immutable(db)
    if restore is None:
        pytest.skip("running as root without a working chattr: no way to make the store read-only")
    try:
        before = _fingerprint(tmp_path)
        case = Case("read-only-store", [], says=["is read-only", "write access"])
        argv = ["--db", f"sqlite:///{db}", "hpo", "g.json", "--trials", "1", "--pruner", "none"]
        code, out, err = _run(case, argv, tmp_path, capsys)
        _check(case, code, out, err)
        assert _fingerprint(tmp_path) == before
    finally:
        restore()


@pytest.mark.parametrize("fmt", ["bp4d", "disfa"])
def test_a_small_synthetic_au_set_is_readable_in_every_fold(fmt, tmp_path):
    """``data synth --format bp4d --n 60`` used to write 5 clips of 2 subjects: a set its own reader
    refused (3-fold CV needs a subject in every fold). The writer now covers all three folds."""
    from automl.data import load_data
    from automl.data.synthface.writer import write_format

    write_format(fmt, tmp_path / fmt, n=60, seed=0)
    for fold in (1, 2, 3):
        d = load_data(f"{fmt}:{tmp_path / fmt}", fold=fold, image_size=16)
        assert len(d.train_x) > 0 and len(d.test_x) > 0
