"""The embedded synthetic default: interface, determinism, labels, splits, clips, occlusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl.data import FaceData, load_data, occlude
from automl.data.synthface import sampling
from automl.data.synthface.facs import AU_INDEX, AUS, BP4D_AUS, FER7, FER8, LABELLED_AUS, LM, deform, template
from automl.data.synthface.generate import synth_clips, synth_expressions
from automl.data.synthface.render import render


def test_synth_fer_matches_the_interface():
    d = load_data("synth:fer", n=300)
    assert isinstance(d, FaceData)
    assert d.name == "synth:fer" and d.task == "fer"
    assert d.class_names == list(FER7) and d.num_outputs == 7
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape[1:] == (1, 48, 48)
    assert d.in_channels == 1 and d.image_size == 48
    assert d.train_y.dtype == torch.int64 and d.train_y.shape == (len(d.train_x),)
    assert len(d.train_x) + len(d.test_x) == 300
    assert set(d.train_y.unique().tolist()) == set(range(7))
    # subject-exclusive hold-out
    assert not set(d.train_subjects.tolist()) & set(d.test_subjects.tolist())


def test_synth_au_matches_the_interface_and_folds_are_subject_exclusive():
    seen_test: set[int] = set()
    for fold in (1, 2, 3):
        d = load_data("synth:au", n=240, fold=fold)
        assert d.task == "au" and d.class_names == [f"AU{a}" for a in BP4D_AUS]
        assert d.train_y.dtype == torch.float32 and d.train_y.shape == (len(d.train_x), 12)
        assert set(torch.unique(d.train_y).tolist()) <= {0.0, 1.0}
        tr, te = set(d.train_subjects.tolist()), set(d.test_subjects.tolist())
        assert not tr & te
        assert not te & seen_test  # each subject is tested in exactly one fold
        seen_test |= te
        # every AU occurs, none is always on
        freq = torch.cat([d.train_y, d.test_y]).mean(0)
        assert (freq > 0.02).all() and (freq < 0.9).all()


def test_sizes_channels_and_other_synth_kinds():
    d = load_data("synth:fer8", n=80, image_size=112, channels=3)
    assert d.train_x.shape[1:] == (3, 112, 112) and d.class_names[-1] == "Contempt"
    d = load_data("synth:disfa", n=60, image_size=32)
    assert d.train_x.shape[1:] == (1, 32, 32) and d.num_outputs == 8


def test_same_seed_same_faces_other_seed_other_faces():
    a = load_data("synth:fer", n=120, seed=3)
    b = load_data("synth:fer", n=120, seed=3)
    c = load_data("synth:fer", n=120, seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.train_x[:10], c.train_x[:10])


def test_images_are_not_degenerate():
    s = synth_expressions(64, seed=0)
    x = s.images.astype(np.float32)
    assert x.std(axis=(1, 2, 3)).min() > 10  # every face has structure
    assert 40 < x.mean() < 200
    # different identities/expressions give different images
    assert np.abs(x[0] - x[1]).mean() > 5


def test_au_moves_the_right_landmarks():
    base = template()[None]
    zero = np.zeros((1, 2, len(AUS)), np.float32)
    up = zero.copy()
    up[:, :, AU_INDEX[12]] = 5.0
    moved = deform(base, up)[0] - base[0]
    assert moved[LM["L_mouth_corner"], 1] < -0.05 and moved[LM["R_mouth_corner"], 1] < -0.05  # corners rise
    assert moved[LM["L_mouth_corner"], 0] < 0 < moved[LM["R_mouth_corner"], 0]  # and widen
    assert np.allclose(moved[LM["L_brow_in"]], 0)
    one_side = zero.copy()
    one_side[:, 1, AU_INDEX[12]] = 5.0  # unilateral (contempt-like): only the right corner
    moved = deform(base, one_side)[0] - base[0]
    assert np.allclose(moved[LM["L_mouth_corner"]], 0) and moved[LM["R_mouth_corner"], 1] < -0.05
    assert set(LABELLED_AUS) <= set(AUS)


def test_rendered_expression_changes_the_mouth_region():
    rng = np.random.default_rng(0)
    ids = sampling.sample_identities(rng, 1)
    nuis = sampling.sample_nuisance(rng, 1)
    nuis["noise"][:] = 0
    neutral = np.zeros((1, 2, len(AUS)), np.float32)
    open_jaw = neutral.copy()
    open_jaw[:, :, AU_INDEX[26]] = 5.0
    open_jaw[:, :, AU_INDEX[25]] = 5.0
    a = render(ids, neutral, nuis, 64, 1).astype(float)
    b = render(ids, open_jaw, nuis, 64, 1).astype(float)
    diff = np.abs(a - b)[0, 0]
    assert diff[40:, :].mean() > 3 * diff[:20, :].mean()  # the change is in the lower face


def test_clips_follow_onset_apex_offset():
    s = synth_clips(4, 9, seed=1)
    assert s.images.shape == (36, 1, 48, 48)
    peak = s.intensity.max(axis=(1, 2)).reshape(4, 9)
    assert (peak[:, 0] < peak.max(axis=1)).all() and (peak[:, -1] < peak.max(axis=1)).all()
    assert (s.subjects.reshape(4, 9) == s.subjects.reshape(4, 9)[:, :1]).all()  # one identity per clip
    env = sampling.clip_envelope(20, np.random.default_rng(0))
    assert env[0] == 0 and env.max() == 1 and env[-1] == 0


def test_expression_prototypes_are_used():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 50)
    inten = sampling.prototype_intensities(rng, labels, FER8, blend_prob=0.0, background_prob=0.0)
    peak = inten.max(axis=1)
    happy = peak[labels == FER8.index("Happy")]
    assert (happy[:, AU_INDEX[12]] > 0).all() and (happy[:, AU_INDEX[6]] > 0).all()
    assert (peak[labels == FER8.index("Neutral")] == 0).all()
    contempt = inten[labels == FER8.index("Contempt")][:, :, AU_INDEX[12]]
    assert (np.abs(contempt[:, 0] - contempt[:, 1]) > 0.5).all()  # one-sided
    surprise = peak[labels == FER8.index("Surprise")]
    assert (surprise[:, [AU_INDEX[a] for a in (1, 2, 5, 26)]] > 0).all()


@pytest.mark.parametrize("part", ["lower", "upper"])
def test_occlude_batches(part):
    x = torch.randint(0, 256, (5, 1, 48, 48), dtype=torch.uint8)
    y = occlude(x, part)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    hidden, kept = (y[..., 24:, :], y[..., :24, :]) if part == "lower" else (y[..., :24, :], y[..., 24:, :])
    assert (hidden == 128).all()
    assert torch.equal(kept, x[..., :24, :] if part == "lower" else x[..., 24:, :])
    f = occlude(x.float() / 255, part)
    assert f.dtype == torch.float32 and ((f == 0.5).float().mean() >= 0.5)
    n = occlude(x.numpy(), part)
    assert isinstance(n, np.ndarray) and (n != x.numpy()).any()
    assert occlude(x, "none") is x
    with pytest.raises(ValueError):
        occlude(x, "left")


def test_large_synthetic_sets_are_cached(tmp_path, monkeypatch):
    import automl.data.readers.synth as synth_reader

    monkeypatch.setenv("AUTOML_CACHE", str(tmp_path))
    monkeypatch.setattr(synth_reader, "CACHE_MIN_PIXELS", 1)
    a = load_data("synth:au", n=90, seed=2)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and all(f.startswith("synth-au-") for f in files)
    b = load_data("synth:au", n=90, seed=2)  # read back, same faces and labels
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    load_data("synth:disfa", n=90, seed=2)  # shares the rendered faces
    assert len(list(tmp_path.iterdir())) == 4


def test_au_set_intensities_are_facs_levels():
    from automl.data.synthface.generate import synth_action_units

    s = synth_action_units(200, seed=0)
    x = s.intensity[s.intensity > 0]
    assert not ((x > 1.4 + 1e-6) & (x < 2.0)).any()  # a trace (A) never passes for present (B)
    assert (s.occurrence(BP4D_AUS) == (s.au_intensity(BP4D_AUS) >= 2)).all()
