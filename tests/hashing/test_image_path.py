"""One decode path (:mod:`hashing.image_io`): the ``folder:`` reader (``automl.data``) and the
retrieval side (``hashing.stream``: ``--images``, queries, uploads) turn the same file into the
same model input, bit for bit: EXIF orientation applied, 16-bit scaled (not clipped), the centre
square (not stretched), one resize rule, the pixel limit on both. Sources of an index built from a
``folder:`` data set or an ``--images`` folder are absolute paths a user can open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from automl import retrieval
from automl.data import load_data
from automl.data.images import decode_file
from automl.errors import UserError
from hashing import image_io
from hashing.image_limits import ENV_VAR, ImageTooLargeError
from hashing.stream import (
    decode_image_bytes,
    embed_query,
    image_input,
    load_model,
    read_image,
    to_model_input,
)
from tests.tiny_embedder import write_tiny_embedder


def _face(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """A face-sized RGB image with structure in every direction (gradients, an off-centre blob,
    noise), so a crop, a flip or a rotation changes the pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    blob = 90 * np.exp(-((yy - h / 3) ** 2 + (xx - w / 4) ** 2) / (2 * (h / 8) ** 2))
    r = 30 + 150 * xx / w + blob
    g = 40 + 120 * yy / h + 0.5 * blob
    b = 200 - 100 * xx / w + rng.normal(0, 6, (h, w))
    return np.clip(np.stack([r, g, b], -1), 0, 255).round().astype(np.uint8)


def _save(path: Path, rgb: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)
    return path


def _folder(root: Path, files: dict[str, np.ndarray], ext: str = ".png", **kw) -> Path:
    """A ``folder:`` data set: two classes (a, b), the given images in class a, fillers in b."""
    for name, rgb in files.items():
        _save(root / "a" / f"{name}{ext}", rgb, **kw)
    for i in range(4):
        _save(root / "b" / f"filler{i}{ext}", _face(seed=10 + i), **kw)
    return root


def _by_file(ds) -> dict[str, np.ndarray]:
    """``{absolute path: uint8 (C, H, W)}`` of every row of a file-based data set."""
    rows = list(ds.train_x.numpy()) + list(ds.test_x.numpy())
    return dict(zip(ds.sources("all"), rows, strict=True))


def _query(path: Path, size: int, channels: int) -> np.ndarray:
    """The query path's model input (detection off), back as uint8 for comparison."""
    x, why = image_input(path, size, channels)
    assert x is not None, why
    back = np.rint(x * 255.0).astype(np.uint8)
    assert np.array_equal(back.astype(np.float32) / 255.0, x)  # uint8 / 255, nothing in between
    return back


def _centre_square_bilinear(img: Image.Image, size: int) -> np.ndarray:
    """The documented crop and resize, written out with Pillow: centre square, BILINEAR."""
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    out = np.asarray(img.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


@pytest.mark.parametrize("ext, kw", [(".png", {}), (".jpg", {"quality": 90})])
@pytest.mark.parametrize("size, channels", [(48, 1), (32, 3), (24, 1)])
def test_folder_reader_and_query_give_identical_inputs(tmp_path, ext, kw, size, channels):
    root = _folder(tmp_path / "data", {"face": _face(), "big": _face(200, 200, 3)}, ext, **kw)
    ds = load_data(f"folder:{root}", image_size=size, channels=channels)
    rows = _by_file(ds)
    assert len(rows) == 6
    for path, row in rows.items():
        assert Path(path).is_absolute() and Path(path).is_file()
        query = _query(Path(path), size, channels)
        assert query.dtype == row.dtype and query.shape == row.shape == (channels, size, size)
        assert np.array_equal(query, row), path
        assert np.array_equal(decode_file(path, size, channels), row)
        assert np.array_equal(decode_image_bytes(Path(path).read_bytes()), read_image(Path(path)))
        via_bytes, _ = image_input(Path(path).read_bytes(), size, channels)  # the dashboard's upload
        assert np.array_equal(via_bytes, query / np.float32(255.0))


def test_a_file_embeds_as_its_own_data_set_item(tmp_path):
    """The issue: a file was 2 bits from its own indexed code. Now its query embedding is the
    embedding it was indexed with (``--data folder:`` build, ``--no-detect`` query): the inputs
    are identical, only the model's float arithmetic over a batch of another size may differ."""
    model = load_model(write_tiny_embedder(tmp_path))
    root = _folder(tmp_path / "data", {f"f{i}": _face(120, 90, i) for i in range(3)}, ".jpg")
    faces = retrieval.embed_dataset(model, f"folder:{root}", split="all")
    for source, emb in zip(faces.sources, faces.embeddings, strict=True):
        query = embed_query(model, Path(source), detect=False)[0]
        assert np.allclose(query, emb, rtol=0, atol=1e-6), source


def test_exif_orientation_is_applied_on_both_paths(tmp_path):
    stored = _face(60, 84)  # 84 wide, 60 tall as stored; the camera was turned: upright is 60 x 84
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(tmp_path / "data" / "a" / "phone.jpg", stored, exif=exif.tobytes(), quality=95)
    for i in range(4):
        _save(tmp_path / "data" / "b" / f"filler{i}.jpg", _face(seed=i))

    raw = Image.open(path)
    raw_rgb = np.asarray(raw.convert("RGB"))  # the stored pixels, decoded without orientation
    upright = np.ascontiguousarray(np.rot90(raw_rgb, k=-1))  # turned clockwise by hand
    assert upright.shape == (84, 60, 3)
    assert np.array_equal(image_io.decode(path), upright)
    assert np.array_equal(read_image(path)[:, :, ::-1], upright)  # the query path's decode (BGR)

    expected = _centre_square_bilinear(Image.fromarray(upright), 32)
    sideways = _centre_square_bilinear(Image.fromarray(raw_rgb), 32)
    assert not np.array_equal(expected, sideways)
    ds = load_data(f"folder:{tmp_path / 'data'}", image_size=32, channels=3)
    row = _by_file(ds)[str(path.resolve())]
    assert np.array_equal(row, expected)  # the folder reader: upright
    assert np.array_equal(_query(path, 32, 3), expected)  # the query path: upright, the same
    grey = load_data(f"folder:{tmp_path / 'data'}", image_size=32, channels=1)
    assert np.array_equal(_by_file(grey)[str(path.resolve())], _query(path, 32, 1))


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    v16 = np.clip(xx * 1024 + yy * 16 + rng.integers(0, 16, (64, 64)), 0, 65535).astype(np.uint16)
    eight = np.round(v16 / 257.0).astype(np.uint8)  # its 8-bit version
    p16 = tmp_path / "data" / "a" / "deep.png"
    p16.parent.mkdir(parents=True)
    Image.fromarray(v16).save(p16)
    assert Image.open(p16).mode.startswith("I;16")  # a real 16-bit file
    p8 = _save(tmp_path / "data" / "a" / "eight.png", eight)
    for i in range(4):
        _save(tmp_path / "data" / "b" / f"filler{i}.png", _face(seed=i))
    assert (np.asarray(Image.open(p16).convert("L")) == 255).mean() > 0.8  # Pillow's own: saturated

    full = image_io.decode(p16, channels=1)
    assert np.abs(full.astype(int) - eight).max() <= 1 and (full == 255).mean() < 0.05
    assert np.abs(read_image(p16)[:, :, 0].astype(int) - eight).max() <= 1
    ds = _by_file(load_data(f"folder:{tmp_path / 'data'}", image_size=48, channels=1))
    row16, row8 = ds[str(p16.resolve())], ds[str(p8.resolve())]
    assert np.abs(row16.astype(int) - row8).max() <= 1 and (row16 == 255).mean() < 0.05
    assert np.abs(_query(p16, 48, 1).astype(int) - _query(p8, 48, 1)).max() <= 1
    assert np.array_equal(_query(p16, 48, 1), row16)


def test_alpha_is_composited_over_white_on_both_paths(tmp_path):
    rgba = np.dstack([_face(), np.full((96, 96), 255, np.uint8)])
    rgba[:, :48] = 0  # left half transparent, stored black
    path = _save(tmp_path / "cut.png", rgba)
    full = image_io.decode(path)
    assert (full[:, :48] == 255).all() and np.array_equal(full[:, 48:], _face()[:, 48:])
    assert np.array_equal(read_image(path)[:, :, ::-1], full)
    assert np.array_equal(decode_file(str(path), 32, 3), _query(path, 32, 3))


def test_a_non_square_image_is_centre_cropped_not_stretched(tmp_path):
    wide = _face(64, 150)
    root = _folder(tmp_path / "data", {"wide": wide})
    path = root / "a" / "wide.png"
    expected = _centre_square_bilinear(Image.fromarray(wide), 48)
    ds = load_data(f"folder:{root}", image_size=48, channels=3)
    assert np.array_equal(_by_file(ds)[str(path.resolve())], expected)
    assert np.array_equal(_query(path, 48, 3), expected)
    # an already decoded image (the dashboard after detection, embed_uint8) takes the same rule
    bgr = np.ascontiguousarray(wide[:, :, ::-1])
    assert np.array_equal(np.rint(to_model_input(bgr, 48, 3) * 255).astype(np.uint8), expected)


def test_a_box_then_the_centre_square_on_both_paths(tmp_path):
    """A data set's face box and the detector's box go through the same crop: with a JPEG drafted
    at a reduced scale the box is scaled with it."""
    path = _save(tmp_path / "big.jpg", _face(400, 400, 5), quality=92)
    box = (100, 60, 200, 240)
    drafted = image_io.model_input(path, 24, 3, box)
    full = image_io.fit(image_io.decode(path), 24, 3, box)  # the detector's path: no draft
    assert drafted.shape == full.shape == (3, 24, 24)
    assert np.abs(drafted.astype(int) - full).mean() < 3  # the same region, not a shifted one
    assert np.array_equal(decode_file(str(path), 24, 3, box), drafted)


def test_the_pixel_limit_applies_to_both_paths(tmp_path, monkeypatch):
    root = _folder(tmp_path / "data", {"face": _face()})
    path = root / "a" / "face.png"
    monkeypatch.setenv(ENV_VAR, "5000")  # 96 x 96 = 9216 pixels

    def refuse(self, *args, **kwargs):
        raise AssertionError("pixels were decoded for an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    with pytest.raises(UserError, match=r"face\.png: image of 96x96 pixels"):
        decode_file(str(path), 48, 1)
    with pytest.raises(UserError, match=r"image of 96x96 pixels"):
        load_data(f"folder:{root}", image_size=48, channels=1)
    for call in (
        lambda: image_input(path, 48, 1),
        lambda: read_image(path),
        lambda: decode_image_bytes(path.read_bytes(), "upload"),
        lambda: image_io.model_input(path.read_bytes(), 48, 1, name="upload"),
    ):
        with pytest.raises(ImageTooLargeError, match="image of 96x96 pixels"):
            call()


def test_sources_are_absolute_paths_a_user_can_open(tmp_path, monkeypatch):
    model = write_tiny_embedder(tmp_path)
    root = _folder(tmp_path / "data", {f"f{i}": _face(seed=i) for i in range(4)})
    monkeypatch.chdir(tmp_path)
    faces = retrieval.embed_dataset(model, "folder:data", split="all")  # a relative spec
    assert len(faces.sources) == 8
    for source in faces.sources:
        assert Path(source).is_absolute() and Path(source).is_file(), source
    classes = ["a", "b"]
    assert [Path(s).parent.name for s in faces.sources] == [classes[y] for y in faces.labels]
    train = retrieval.embed_dataset(model, "folder:data", split="train")
    test = retrieval.embed_dataset(model, "folder:data", split="test")
    assert train.sources + test.sources == faces.sources and len(test.sources) == 2
    assert np.array_equal(np.concatenate([train.embeddings, test.embeddings]), faces.embeddings)

    # a cache hit (the pixels come from the memory-mapped .npy) keeps the sources
    first = load_data(f"folder:{root}", image_size=32, channels=1)
    assert Path(first.meta["cache"]).is_file()

    def no_decode(*args, **kwargs):
        raise AssertionError("the second load should be a cache hit")

    monkeypatch.setattr("automl.data.readers.common.decode_into", no_decode)
    again = load_data(f"folder:{root}", image_size=32, channels=1)
    assert again.sources("all") == first.sources("all")
    assert all(Path(s).is_file() for s in again.sources("all"))

    # synthetic data has no files: SPEC#SPLIT:i
    assert retrieval.embed_dataset(model, "synth:fer", split="train", n=30).sources[0] == "synth:fer#train:0"

    images = retrieval.embed_folder(model, "data/a", detect=False)  # a relative folder
    assert images.sources == sorted(str((root / "a" / f"f{i}.png").resolve()) for i in range(4))
    one = retrieval.embed_folder(model, ["data/a/f1.png"], detect=False)
    assert one.sources == [str((root / "a" / "f1.png").resolve())]
