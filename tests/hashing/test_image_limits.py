"""One pixel limit for every image decode (:mod:`hashing.image_limits`): checked from the header,
before a pixel is decoded, on the OpenCV path (``automl index``, the dashboard's upload) and on the
Pillow path (``automl``'s data readers); a refusal is one line, exit 2, naming the file, its size
and the limit.

The images are small files with big headers: a 3000 x 3000 black PNG (a few KB) against a limit
lowered to 1 megapixel, and a hand-made PNG header claiming 20000 x 20000 pixels (a hundred bytes)
against the default limit, so nothing here decodes -- or allocates -- a big image.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hashing import HashingError
from hashing.image_limits import DEFAULT_MAX_IMAGE_PIXELS, ENV_VAR, ImageTooLargeError, max_image_pixels
from hashing.stream import decode_image_bytes, read_image
from tests.tiny_embedder import write_tiny_embedder

LIMIT = "1000000"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` grey pixels, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))  # fmt: skip


@pytest.fixture
def low_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, LIMIT)


@pytest.fixture
def big_png(tmp_path: Path) -> Path:
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)  # 9 megapixels, a few KB on disk
    return path


@pytest.fixture
def no_opencv_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called on an image over the limit")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def _one_line_refusal(res, name: str) -> None:
    assert res.code == 2, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert name in res.err and "3000x3000" in res.err and f"limit of {LIMIT} pixels" in res.err, res.err


def test_the_limit_and_its_environment_variable(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert max_image_pixels() == DEFAULT_MAX_IMAGE_PIXELS == 40_000_000
    monkeypatch.setenv(ENV_VAR, "2e6")
    assert max_image_pixels() == 2_000_000
    for bad in ("lots", "0", "-5", "nan", "inf"):
        monkeypatch.setenv(ENV_VAR, bad)
        with pytest.raises(HashingError, match=ENV_VAR):
            max_image_pixels()


def test_opencv_path_checks_the_header_before_decoding(big_png, tmp_path, low_limit, no_opencv_decode):
    with pytest.raises(ImageTooLargeError, match=r"big\.png: image of 3000x3000 pixels \(9\.0 megapixels\)"):
        read_image(big_png)
    with pytest.raises(ImageTooLargeError, match="upload: image of 3000x3000"):
        decode_image_bytes(big_png.read_bytes(), "upload")


def test_a_header_claiming_400_megapixels_is_refused_by_default(tmp_path, monkeypatch, no_opencv_decode):
    monkeypatch.delenv(ENV_VAR, raising=False)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    for call in (lambda: read_image(bomb), lambda: decode_image_bytes(bomb.read_bytes(), "bomb.png")):
        with pytest.raises(ImageTooLargeError, match="bomb.png: image of 400.0 megapixels exceeds the limit"):
            call()


def test_images_within_the_limit_still_decode(tmp_path, low_limit):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.full((40, 30, 3), 90, np.uint8))
    assert read_image(small).shape == (40, 30, 3)
    assert decode_image_bytes(small.read_bytes()).shape == (40, 30, 3)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    assert read_image(tmp_path / "junk.png") is None  # unreadable, as before


def test_index_build_and_query_refuse_in_one_line(cli, tmp_path, big_png, low_limit):
    (tmp_path / "model").mkdir()
    model = write_tiny_embedder(tmp_path / "model")
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(4):
        Image.new("L", (48, 48), 40 * i).save(faces / f"f{i}.png")
    Image.open(big_png).save(faces / "zz_big.png")
    res = cli("index", "build", "--model", model, "--images", faces, "--out", tmp_path / "ix", "--no-detect")
    _one_line_refusal(res, "zz_big.png")
    assert not (tmp_path / "ix").exists() or not any((tmp_path / "ix").iterdir())

    (faces / "zz_big.png").unlink()
    res = cli("index", "build", "--model", model, "--images", faces, "--out", tmp_path / "ix",
                           "--no-detect", "--bits", "16")  # fmt: skip
    assert res.code == 0, res.err
    res = cli("index", "query", tmp_path / "ix", big_png, "--no-detect")
    _one_line_refusal(res, "big.png")


def test_dashboard_upload_is_refused_before_decoding(big_png, low_limit, no_opencv_decode):
    from dashboard.retrieval_data import embed_upload

    with pytest.raises(ImageTooLargeError, match="the uploaded image: image of 3000x3000"):
        embed_upload(Path("no-model.pt"), big_png.read_bytes(), detect=True)


def test_pillow_readers_refuse_in_one_line(cli, tmp_path, big_png, low_limit):
    root = tmp_path / "faces"
    for c in ("happy", "sad"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (24, 24), 30 * i).save(root / c / f"{i}.png")
    Image.open(big_png).save(root / "sad" / "huge.png")
    res = cli("data", "info", "--data", f"folder:{root}", "--json")
    _one_line_refusal(res, "huge.png")
