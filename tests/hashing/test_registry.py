"""One registry of hashers: ``create_hasher`` by name or object, the benchmark's method list, and
indexes backed by any linear hasher that save the hasher's registered name and load it back
through the registry (never importing what a manifest names)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from hashing import (
    BSODH,
    ITQ,
    LSH,
    OKH,
    OSH,
    AdaptHash,
    HashingError,
    IndexFormatError,
    SketchHash,
    UnknownHasherError,
    create_hasher,
    hasher_names,
    register_hasher,
)
from hashing.bench import make_methods
from hashing.bsodh import PRESETS
from hashing.index import MANIFEST, HashIndex
from hashing.registry import hasher_spec, registered_name

D = 24


def _blobs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(7).standard_normal((4, D)) * 2
    y = rng.integers(0, 4, n)
    X = centers[y] + rng.standard_normal((n, D))
    return X / np.linalg.norm(X, axis=1, keepdims=True), y  # the baselines take unit rows as given


def test_create_hasher_by_name_object_or_class():
    h = create_hasher("bsodh", n_bits=32, preset="mnist", seed=3)
    assert isinstance(h, BSODH) and h.n_bits == 32 and h.lam == PRESETS["mnist"]["lam"] and h.seed == 3
    assert create_hasher("BSODH", n_bits=16, preset="mnist", lam=0.9).lam == 0.9  # explicit wins
    osh = create_hasher("OSH", n_bits=16, stepsize=0.2)
    assert isinstance(osh, OSH) and osh.stepsize == 0.2
    assert create_hasher(osh) is osh  # an already-built hasher is used as it is
    assert isinstance(create_hasher(LSH, n_bits=8), LSH)
    with pytest.raises(HashingError, match="already-built"):
        create_hasher(osh, n_bits=8)
    with pytest.raises(UnknownHasherError, match="unknown hasher 'nope'.*BSODH.*OSH") as err:
        create_hasher("nope")
    assert len(str(err.value).splitlines()) == 1 and err.value.param == "hasher"
    with pytest.raises(HashingError, match="preset is a BSODH parameter"):
        create_hasher("OSH", n_bits=8, preset="mnist")
    with pytest.raises(HashingError, match="unknown preset"):
        create_hasher("BSODH", n_bits=8, preset="imagenet")
    with pytest.raises(HashingError, match="bad parameters for OSH"):
        create_hasher("OSH", n_bits=8, temperature=2)


def test_the_bench_and_create_hasher_share_one_registry():
    names = hasher_names()
    assert names[:1] == ["BSODH"] and {"OKH", "OSH", "AdaptHash", "SketchHash", "LSH", "ITQ"} <= set(names)
    methods = make_methods(16, 64, seed=0)
    assert list(methods) == [hasher_spec(n).label for n in names] + ["BSODH (paper)"]
    assert "ITQ (offline)" in methods
    for label, factory in methods.items():
        h = factory()
        assert h.n_bits == 16 and registered_name(h) in names, label
    bsodh = methods["BSODH"]()
    assert (bsodh.center, bsodh.normalize, bsodh.lam) == (False, False, PRESETS["mnist"]["lam"])
    assert bsodh.mode == "robust" and methods["BSODH (paper)"]().mode == "paper"


def test_register_a_new_hasher(monkeypatch):
    import hashing.registry

    monkeypatch.setattr(hashing.registry, "_REGISTRY", dict(hashing.registry._REGISTRY))  # no leak

    class MyLSH(LSH):
        pass

    with pytest.raises(UnknownHasherError, match="not registered"):
        registered_name(MyLSH(8))
    register_hasher("MyLSH-test", MyLSH)
    assert isinstance(create_hasher("mylsh-test", n_bits=8), MyLSH)
    with pytest.raises(HashingError, match="already registered"):
        register_hasher("OSH", MyLSH)
    with pytest.raises(HashingError, match="not an OnlineHasher"):
        register_hasher("Thing", dict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name, params",
    [
        ("OSH", {}),
        ("AdaptHash", {}),
        ("SketchHash", {"sketch_size": 20, "batch_size": 30}),
        ("LSH", {}),
        ("ITQ", {"n_iter": 5}),
        ("BSODH", {"preset": "mnist"}),
    ],
)
def test_an_index_on_any_linear_hasher_round_trips(tmp_path, name, params):
    idx = HashIndex(name, D, hasher_params={"n_bits": 16, "seed": 1, **params})
    for seed in range(3):  # 41 items per batch: odd sizes leave pairs / chunks pending
        X, y = _blobs(seed, 41)
        idx.add(X, labels=y)
    root = idx.save(tmp_path / "ix")
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["hasher_name"] == name
    back = HashIndex.load(root)
    assert type(back.hasher) is type(idx.hasher) and back.stats()["hasher"] == name
    q, _ = _blobs(9, 5)
    np.testing.assert_array_equal(back.search(q, 7).ids, idx.search(q, 7).ids)
    # The hasher's whole state came back: learning on continues exactly as without the save.
    X, y = _blobs(10, 41)
    idx.add(X, labels=y)
    back.add(X, labels=y)
    np.testing.assert_array_equal(back.codes, idx.codes)
    np.testing.assert_array_equal(back.hasher.encode(q), idx.hasher.encode(q))


def test_okh_cannot_back_an_index_but_keeps_its_state():
    with pytest.raises(HashingError, match="OKH cannot back an index.*not linear"):
        HashIndex(OKH(16, n_anchors=20), D)
    h = OKH(16, n_anchors=20, seed=0)
    X, y = _blobs(0, 41)
    h.partial_fit(X, y)
    back = OKH.from_state(*h.get_state())
    X2, y2 = _blobs(1, 41)
    h.partial_fit(X2, y2)
    back.partial_fit(X2, y2)
    np.testing.assert_array_equal(back.encode(X2), h.encode(X2))


@pytest.mark.parametrize("cls", [OSH, AdaptHash, SketchHash, LSH, ITQ])
def test_baseline_state_rejects_garbage(cls):
    params, arrays = cls(16).get_state()
    del params["n_seen"]
    with pytest.raises(HashingError, match="state is incomplete or corrupt"):
        cls.from_state(params, arrays)


def _saved(tmp_path):
    idx = HashIndex(BSODH(16, seed=0), D)
    X, y = _blobs(0, 30)
    idx.add(X, labels=y)
    return idx.save(tmp_path / "ix")


def _edit_manifest(root, **changes):
    manifest = json.loads((root / MANIFEST).read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_load_resolves_the_name_and_never_imports_one(tmp_path):
    root = _saved(tmp_path)
    for name in ("os.path", "evil_module_xyz", "subprocess"):
        _edit_manifest(root, hasher_name=name)
        before = set(sys.modules)
        with pytest.raises(IndexFormatError, match=f"hasher '{name}', which is not registered") as err:
            HashIndex.load(root)
        assert len(str(err.value).splitlines()) == 1
        assert "evil_module_xyz" not in sys.modules and set(sys.modules) - before <= {"evil_module_xyz"}
    _edit_manifest(root, hasher_name="bsodh")  # names are case-insensitive
    assert isinstance(HashIndex.load(root).hasher, BSODH)


def test_a_manifest_from_before_the_registry_loads_as_bsodh(tmp_path):
    root = _saved(tmp_path)
    _edit_manifest(root, hasher_name=None)
    assert isinstance(HashIndex.load(root).hasher, BSODH)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["hasher"]["kind"] = "pickle"
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="unknown kind"):
        HashIndex.load(root)


def test_a_manifest_listing_files_outside_the_index_is_refused(tmp_path):
    root = _saved(tmp_path)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["files"]["../../etc/passwd"] = {"bytes": 1, "sha256": "0" * 64}
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="never writes"):
        HashIndex.load(root)
