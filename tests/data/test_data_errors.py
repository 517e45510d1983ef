"""Bad input is one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automl.data import load_data
from automl.data.images import DataWarning
from automl.errors import UserError


def _one_line_error(res, *needles: str) -> None:
    assert res.code == 2, (res.code, res.out, res.err)
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    assert lines[0].startswith("error:") and "Traceback" not in res.err
    for n in needles:
        assert n in lines[0], lines[0]


def _fer_csv(path: Path, header: str = "emotion,pixels,Usage", n_pix: int = 2304) -> Path:
    pix = " ".join(["7"] * n_pix)
    rows = [header] + [f"{i % 7},{pix},{u}" for i, u in enumerate(["Training"] * 4 + ["PrivateTest"] * 2)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_unknown_kind_and_missing_paths(cli, tmp_path):
    _one_line_error(cli("data", "info", "--data", "imagenet:/x"), "unknown data kind", "synth", "(--data)")
    _one_line_error(cli("data", "info", "--data", "synth:nope"), "synth:fer")
    _one_line_error(cli("data", "info", "--data", f"fer2013:{tmp_path / 'none.csv'}"), "not found")
    for kind in ("rafdb", "affectnet", "bp4d", "disfa", "folder", "cifar10", "ferplus"):
        _one_line_error(cli("data", "info", "--data", f"{kind}:{tmp_path / 'missing'}"), "not found")


def test_fer2013_wrong_header_and_pixel_length(cli, tmp_path):
    good = _fer_csv(tmp_path / "fer2013.csv")
    assert cli("data", "info", "--data", f"fer2013:{good}").code == 0
    bad = _fer_csv(tmp_path / "h.csv", header="label,pixels,Usage")
    _one_line_error(cli("data", "info", "--data", f"fer2013:{bad}"), "header", "emotion,pixels,Usage")
    short = _fer_csv(tmp_path / "p.csv", n_pix=2000)
    _one_line_error(cli("data", "info", "--data", f"fer2013:{short}"), "2000 values", "2304")


def _folder(root: Path, n_per_class: int = 20) -> list[Path]:
    rng = np.random.default_rng(0)
    files = []
    for c in ("happy", "sad"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            p = root / c / f"{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(p)
            files.append(p)
    return files


def test_corrupt_jpeg_is_skipped_with_a_warning(cli, tmp_path):
    files = _folder(tmp_path / "set", 25)
    files[3].write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_data(f"folder:{tmp_path / 'set'}")
    assert len(d.train_x) + len(d.test_x) == 49
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(msgs) == 1 and "skipped 1 of 50" in msgs[0]
    res = cli("data", "info", "--data", f"folder:{tmp_path / 'set'}")
    assert res.code == 0 and "skipped 1 of 50" in res.err


def test_too_many_corrupt_images_is_an_error(cli, tmp_path):
    files = _folder(tmp_path / "bad", 10)
    for f in files[:5]:
        f.write_bytes(b"garbage")
    _one_line_error(
        cli("data", "info", "--data", f"folder:{tmp_path / 'bad'}"), "5 of 20", "could not be decoded"
    )


def test_bp4d_csv_without_au_columns(cli, tmp_path):
    occ = tmp_path / "AUCoding" / "AU_OCC"
    occ.mkdir(parents=True)
    (tmp_path / "img" / "F001" / "T1").mkdir(parents=True)
    (occ / "F001_T1.csv").write_text("0,1,2,4\n1,0,1,0\n")
    _one_line_error(cli("data", "info", "--data", f"bp4d:{tmp_path}"), "F001_T1.csv", "AU column")


def test_synth_writer_rejects_unknown_format(cli, tmp_path):
    _one_line_error(
        cli("data", "synth", "--format", "mnist", "--out", str(tmp_path / "o")), "unknown --format"
    )


def test_library_raises_user_error():
    with pytest.raises(UserError):
        load_data("fer2013")
    with pytest.raises(UserError):
        load_data("synth:fer", fold=4)
    with pytest.raises(UserError):
        load_data("synth:fer", channels=2)


@pytest.mark.slow
def test_console_script_exit_code(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "automl",
            "data",
            "preview",
            "--data",
            "nope:x",
            "--out",
            str(tmp_path / "g.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "unknown data kind" in res.stderr and "Traceback" not in res.stderr
    assert "(--data)" in res.stderr


def test_synth_and_preview_commands(cli, tmp_path):
    res = cli(
        "data", "synth", "--format", "fer2013", "--out", str(tmp_path / "f"), "--n", "40", "--seed", "1"
    )
    assert res.code == 0 and (tmp_path / "f" / "fer2013.csv").is_file()
    res = cli(
        "data",
        "preview",
        "--data",
        f"fer2013:{tmp_path / 'f'}",
        "--out",
        str(tmp_path / "g.png"),
        "--n",
        "16",
    )
    assert res.code == 0
    img = Image.open(tmp_path / "g.png")
    assert img.size[0] >= 4 * 96
