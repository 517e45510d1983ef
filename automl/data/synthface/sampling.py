"""Random draws for the synthetic faces: identities, expressions (AU intensities), nuisances, clips.

Everything takes a ``numpy.random.Generator`` so a seed fixes the whole data set. Arrays are
"structure of arrays" (one array per attribute, first axis = subject or sample) so the renderer
can stay vectorised over a batch.
"""

from __future__ import annotations

import numpy as np

from automl.data.synthface.facs import (
    AU_INDEX,
    AUS,
    CONFUSABLE,
    LM,
    MAX_INTENSITY,
    PROTOTYPES,
    UNILATERAL,
    template,
)

Params = dict[str, np.ndarray]

_SKIN_LIGHT = np.array([0.94, 0.80, 0.70], np.float32)
_SKIN_DARK = np.array([0.34, 0.22, 0.16], np.float32)
_HAIR = np.array(
    [[0.08, 0.07, 0.06], [0.30, 0.20, 0.12], [0.62, 0.50, 0.30], [0.55, 0.55, 0.55], [0.50, 0.24, 0.10]],
    np.float32,
)
_IRIS = np.array([[0.22, 0.14, 0.08], [0.30, 0.45, 0.60], [0.30, 0.42, 0.28]], np.float32)


def sample_identities(rng: np.random.Generator, n: int) -> Params:
    """Draw ``n`` identities: face shape, feature geometry, colours, hair, age.

    The neutral landmarks of each identity are the template with a few global, mostly symmetric
    geometric changes (eye spacing, mouth width, feature heights) plus small per-landmark jitter,
    which is what makes two subjects' neutral faces differ the way real faces do.
    """
    tpl = template()
    base = np.repeat(tpl[None], n, axis=0)
    eye_spread = rng.uniform(0.92, 1.10, n).astype(np.float32)
    feat_y = rng.uniform(-0.05, 0.05, n).astype(np.float32)
    brow_y = rng.uniform(-0.06, 0.04, n).astype(np.float32)
    nose_y = rng.uniform(-0.04, 0.05, n).astype(np.float32)
    mouth_w = rng.uniform(0.85, 1.18, n).astype(np.float32)
    mouth_y = rng.uniform(-0.04, 0.06, n).astype(np.float32)
    lip_thick = rng.uniform(0.7, 1.35, n).astype(np.float32)
    eye_open = rng.uniform(0.75, 1.2, n).astype(np.float32)
    for side in "LR":
        for k in ("brow_in", "brow_mid", "brow_out", "eye_in", "eye_out", "eye_up", "eye_lo"):
            base[:, LM[f"{side}_{k}"], 0] *= eye_spread
            base[:, LM[f"{side}_{k}"], 1] += feat_y
        for k in ("brow_in", "brow_mid", "brow_out"):
            base[:, LM[f"{side}_{k}"], 1] += brow_y
        eye_mid = 0.5 * (base[:, LM[f"{side}_eye_in"], 1] + base[:, LM[f"{side}_eye_out"], 1])
        for k in ("eye_up", "eye_lo"):
            i = LM[f"{side}_{k}"]
            base[:, i, 1] = eye_mid + (base[:, i, 1] - eye_mid) * eye_open
        base[:, LM[f"{side}_nose_wing"], 1] += nose_y
        base[:, LM[f"{side}_mouth_corner"], 0] *= mouth_w
        base[:, LM[f"{side}_mouth_corner"], 1] += mouth_y
    base[:, LM["nose_tip"], 1] += nose_y
    lip_ref = base[:, LM["lip_up_in"], 1].copy()
    for k in ("lip_up_out", "lip_up_in", "lip_lo_in", "lip_lo_out"):
        i = LM[k]
        base[:, i, 1] = lip_ref + mouth_y + (base[:, i, 1] - lip_ref) * lip_thick
    # mirrored jitter keeps faces near-symmetric, a little independent jitter keeps them real
    half = len(tpl) // 2 - 3
    jit = rng.normal(0.0, 0.012, (n, half, 2)).astype(np.float32)
    base[:, :half] += jit
    base[:, half : 2 * half] += jit * np.array([-1.0, 1.0], np.float32)
    base += rng.normal(0.0, 0.004, base.shape).astype(np.float32)

    tone = rng.beta(1.6, 1.6, n).astype(np.float32)[:, None]
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
    skin *= rng.uniform(0.95, 1.05, (n, 3)).astype(np.float32)
    hair = _HAIR[rng.integers(0, len(_HAIR), n)] * rng.uniform(0.8, 1.2, (n, 1)).astype(np.float32)
    return {
        "landmarks": base,
        "face_rx": rng.uniform(0.86, 1.04, n).astype(np.float32),
        "face_top": rng.uniform(1.15, 1.35, n).astype(np.float32),
        "chin_scale": rng.uniform(0.93, 1.07, n).astype(np.float32),
        "jaw_taper": rng.uniform(0.15, 0.42, n).astype(np.float32),
        "iris_r": rng.uniform(0.06, 0.085, n).astype(np.float32),
        "brow_thick": rng.uniform(0.045, 0.08, n).astype(np.float32),
        "brow_dark": rng.uniform(0.55, 0.95, n).astype(np.float32),
        "skin": np.clip(skin, 0.05, 1.0),
        "lip": np.clip(skin * np.array([0.82, 0.55, 0.55], np.float32), 0.03, 1.0),
        "hair": np.clip(hair, 0.0, 1.0),
        "iris": _IRIS[rng.integers(0, len(_IRIS), n)],
        "hairline": rng.uniform(-1.08, -0.72, n).astype(np.float32),
        "hair_len": rng.uniform(-0.5, 0.9, n).astype(np.float32),
        "hair_vol": rng.uniform(1.03, 1.2, n).astype(np.float32),
        "age": rng.beta(1.2, 3.0, n).astype(np.float32),
    }


def take(params: Params, index: np.ndarray) -> Params:
    """Rows ``index`` of every array (identity per sample from identity per subject)."""
    return {k: v[index] for k, v in params.items()}


def sample_nuisance(rng: np.random.Generator, n: int) -> Params:
    """Pose jitter, lighting, camera gain/contrast, noise, background and clothing per sample."""
    bg_tone = rng.uniform(0.1, 0.9, (n, 1)).astype(np.float32)
    bg = np.clip(bg_tone * rng.uniform(0.75, 1.25, (n, 3)), 0.0, 1.0).astype(np.float32)
    return {
        "angle": np.clip(rng.normal(0.0, 0.08, n), -0.22, 0.22).astype(np.float32),
        "scale": rng.uniform(0.90, 1.08, n).astype(np.float32),
        "shift": rng.uniform(-0.07, 0.07, (n, 2)).astype(np.float32),
        "yaw": rng.uniform(-0.12, 0.12, n).astype(np.float32),
        "gaze": rng.uniform(-0.025, 0.025, (n, 2)).astype(np.float32),
        "light": rng.uniform(0.0, 2 * np.pi, n).astype(np.float32),
        "diffuse": rng.uniform(0.15, 0.5, n).astype(np.float32),
        "ambient": rng.uniform(0.55, 0.8, n).astype(np.float32),
        "exposure": rng.uniform(0.38, 0.62, n).astype(np.float32),
        "contrast": rng.uniform(0.85, 1.25, n).astype(np.float32),
        "noise": rng.uniform(0.005, 0.03, n).astype(np.float32),
        "bg": bg,
        "bg_grad": rng.uniform(-0.25, 0.25, (n, 2)).astype(np.float32),
        "cloth": rng.uniform(0.05, 0.95, (n, 3)).astype(np.float32),
    }


def prototype_intensities(
    rng: np.random.Generator,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    *,
    strength: tuple[float, float] = (0.55, 1.0),
    blend_prob: float = 0.25,
    background_prob: float = 0.05,
) -> np.ndarray:
    """AU intensities (N, 2, A) for expression ``labels`` drawn from the EMFACS prototypes.

    Learnable but not trivial: each sample has an overall strength (subtle to full), every AU its
    own jitter, optional AUs come and go, unrelated AUs fire at low intensity, and with
    ``blend_prob`` a weaker copy of a confusable expression is mixed in (fear with surprise,
    anger with disgust, sadness with neutral...), which is where human raters disagree too.
    """
    n = len(labels)
    out = np.zeros((n, 2, len(AUS)), np.float32)
    s = rng.uniform(*strength, n).astype(np.float32)
    for i, lab in enumerate(labels):
        name = class_names[int(lab)]
        _add_prototype(rng, out[i], name, float(s[i]))
        if rng.random() < blend_prob:
            other = CONFUSABLE[name][rng.integers(0, len(CONFUSABLE[name]))]
            if other in class_names:
                _add_prototype(rng, out[i], other, float(s[i]) * float(rng.uniform(0.2, 0.5)))
    bg = rng.random((n, len(AUS))) < background_prob
    bg_int = rng.uniform(0.3, 2.2, (n, len(AUS))).astype(np.float32) * bg
    out += bg_int[:, None, :]
    return np.clip(out, 0.0, MAX_INTENSITY)


def _add_prototype(rng: np.random.Generator, acc: np.ndarray, name: str, strength: float) -> None:
    proto = PROTOTYPES[name]
    aus = [(au, 1.0) for au in proto["core"]]
    aus += [(au, 1.0) for au, p in proto["optional"].items() if rng.random() < p]
    for au, _ in aus:
        value = strength * float(rng.uniform(2.0, 5.0))
        a = AU_INDEX[au]
        if name in UNILATERAL:
            side = int(rng.integers(0, 2))
            acc[side, a] = max(acc[side, a], value)
            acc[1 - side, a] = max(acc[1 - side, a], value * float(rng.uniform(0.0, 0.2)))
        else:
            asym = float(rng.uniform(0.9, 1.1))
            acc[0, a] = max(acc[0, a], value * asym)
            acc[1, a] = max(acc[1, a], value / asym)


def random_au_intensities(
    rng: np.random.Generator, n: int, base_rate: np.ndarray | None = None
) -> np.ndarray:
    """Independent AU activations (N, 2, A): bilateral, intensity uniform over 0.5..5 when active.

    Used together with prototypes for the AU task so co-occurrence is neither fully free nor fully
    tied to the seven expressions.
    """
    rate = np.full(len(AUS), 0.22, np.float32) if base_rate is None else base_rate
    active = rng.random((n, len(AUS))) < rate
    val = rng.uniform(0.5, MAX_INTENSITY, (n, len(AUS))).astype(np.float32) * active
    asym = rng.uniform(0.9, 1.1, (n, len(AUS))).astype(np.float32)
    return np.clip(np.stack([val * asym, val / asym], axis=1), 0.0, MAX_INTENSITY)


def to_facs_levels(intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Snap continuous intensities to FACS levels A..E (1..5) plus up to 0.4 of jitter upwards.

    Coders score AUs on that ordinal scale, and "present" means level B or more. Snapping leaves
    a visible gap between a trace (A: 1.0-1.4) and a present AU (B: 2.0-2.4), so occurrence
    labels (intensity >= 2) are what the face shows rather than a coin flip at the threshold.
    """
    level = np.rint(intensity)
    jitter = rng.uniform(0.0, 0.4, intensity.shape).astype(np.float32)
    return np.where(level > 0, np.minimum(level + jitter, MAX_INTENSITY), 0.0).astype(np.float32)


def clip_envelope(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Onset-apex-offset envelope (n_frames,) in [0, 1]: a linear rise, a plateau, a fall.

    The phase lengths are random (onset 20-40 %, apex 20-40 %, the rest offset), as in posed and
    spontaneous AU events.
    """
    if n_frames <= 1:
        return np.ones(max(n_frames, 0), np.float32)
    onset = rng.uniform(0.2, 0.4)
    apex = rng.uniform(0.2, 0.4)
    t = np.linspace(0.0, 1.0, n_frames, dtype=np.float32)
    rise = np.clip(t / onset, 0.0, 1.0)
    fall = np.clip((1.0 - t) / max(1.0 - onset - apex, 1e-3), 0.0, 1.0)
    return np.minimum(rise, fall).astype(np.float32)
