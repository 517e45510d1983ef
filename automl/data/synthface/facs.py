"""FACS action units as displacements of a small facial landmark template, and EMFACS prototypes.

Why a landmark template: FACS describes each action unit as a visible *movement* of facial
features (brows up, lip corners pulled, jaw dropped). Encoding every AU as a displacement field
over a handful of landmarks keeps the generator honest (labels are exactly the intensities that
moved the face) and makes rendering a pure function of (identity, AU intensities, pose).

Coordinates are "face units": origin at the face centre, x to the image right, y down, the face
half-width is about 1. Each side of the face has its own intensity so that unilateral actions
(contempt = one-sided AU12 + AU14) are expressible; midline landmarks use the mean of both sides.
"""

from __future__ import annotations

import numpy as np

# Every AU the renderer can move. AU16 is not in the labelled list of the spec but EMFACS disgust
# uses it, so it is rendered (never reported as a label).
AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26)
AU_INDEX: dict[int, int] = {au: i for i, au in enumerate(AUS)}
LABELLED_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)
BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)
OCCURRENCE_THRESHOLD = 2.0  # FACS intensity B (2 of 0..5) or more counts as "present"
MAX_INTENSITY = 5.0
MOVE_GAIN = 1.3

# Landmarks: name -> (x, y) for the image-left side; "side" landmarks are mirrored for the right.
_SIDE_TEMPLATE: dict[str, tuple[float, float]] = {
    "brow_in": (-0.17, -0.44),
    "brow_mid": (-0.40, -0.54),
    "brow_out": (-0.64, -0.47),
    "eye_in": (-0.16, -0.24),
    "eye_out": (-0.56, -0.24),
    "eye_up": (-0.36, -0.325),
    "eye_lo": (-0.36, -0.165),
    "nose_wing": (-0.16, 0.30),
    "cheek": (-0.50, 0.20),
    "mouth_corner": (-0.34, 0.70),
}
_MID_TEMPLATE: dict[str, tuple[float, float]] = {
    "nose_tip": (0.0, 0.27),
    "lip_up_out": (0.0, 0.585),
    "lip_up_in": (0.0, 0.675),
    "lip_lo_in": (0.0, 0.685),
    "lip_lo_out": (0.0, 0.82),
    "chin": (0.0, 1.32),
}

LANDMARKS: tuple[str, ...] = (
    tuple(f"L_{k}" for k in _SIDE_TEMPLATE) + tuple(f"R_{k}" for k in _SIDE_TEMPLATE) + tuple(_MID_TEMPLATE)
)
LM: dict[str, int] = {name: i for i, name in enumerate(LANDMARKS)}


def template() -> np.ndarray:
    """The neutral landmark template, (L, 2) float32."""
    pts = [(x, y) for x, y in _SIDE_TEMPLATE.values()]
    pts += [(-x, y) for x, y in _SIDE_TEMPLATE.values()]
    pts += list(_MID_TEMPLATE.values())
    return np.asarray(pts, dtype=np.float32)


# Displacement at full intensity (5). For side landmarks dx is "towards the face's outside"
# (negative = towards the midline); it is mirrored per side when the basis is built.
_SIDE_MOVES: dict[int, dict[str, tuple[float, float]]] = {
    1: {"brow_in": (0.0, -0.15), "brow_mid": (0.0, -0.06)},
    2: {"brow_out": (0.0, -0.15), "brow_mid": (0.0, -0.08)},
    4: {"brow_in": (-0.07, 0.11), "brow_mid": (-0.03, 0.07), "brow_out": (0.0, 0.02), "eye_up": (0.0, 0.03)},
    5: {"eye_up": (0.0, -0.075), "brow_mid": (0.0, -0.02)},
    6: {
        "eye_lo": (0.0, -0.055),
        "eye_out": (0.0, -0.02),
        "cheek": (0.0, -0.10),
        "mouth_corner": (0.01, -0.02),
    },
    7: {"eye_lo": (0.0, -0.06), "eye_up": (0.0, 0.03)},
    9: {"nose_wing": (0.01, -0.07), "brow_in": (0.0, 0.05), "eye_lo": (0.0, -0.02)},
    10: {"nose_wing": (0.01, -0.03), "mouth_corner": (0.0, -0.02)},
    12: {"mouth_corner": (0.11, -0.13), "cheek": (0.0, -0.05), "eye_lo": (0.0, -0.015)},
    14: {"mouth_corner": (-0.05, -0.02)},
    15: {"mouth_corner": (-0.02, 0.11)},
    16: {},
    17: {"mouth_corner": (0.0, 0.02)},
    20: {"mouth_corner": (0.11, 0.03)},
    23: {"mouth_corner": (-0.05, 0.0)},
    24: {"mouth_corner": (-0.03, 0.0)},
    25: {},
    26: {"mouth_corner": (-0.02, 0.05)},
}
_MID_MOVES: dict[int, dict[str, tuple[float, float]]] = {
    9: {"lip_up_out": (0.0, -0.04), "lip_up_in": (0.0, -0.02)},
    10: {"lip_up_out": (0.0, -0.10), "lip_up_in": (0.0, -0.11), "nose_tip": (0.0, -0.01)},
    16: {"lip_lo_in": (0.0, 0.10), "lip_lo_out": (0.0, 0.07)},
    17: {"lip_lo_out": (0.0, -0.07), "lip_lo_in": (0.0, -0.04), "chin": (0.0, -0.04)},
    20: {"lip_up_out": (0.0, 0.01), "lip_lo_out": (0.0, -0.02)},
    23: {"lip_up_out": (0.0, 0.035), "lip_lo_out": (0.0, -0.04)},
    24: {
        "lip_up_out": (0.0, 0.04),
        "lip_lo_out": (0.0, -0.06),
        "lip_up_in": (0.0, 0.01),
        "lip_lo_in": (0.0, -0.01),
    },
    25: {"lip_up_in": (0.0, -0.03), "lip_lo_in": (0.0, 0.07), "lip_lo_out": (0.0, 0.04)},
    26: {"lip_lo_in": (0.0, 0.19), "lip_lo_out": (0.0, 0.19), "chin": (0.0, 0.19)},
}


def displacement_basis() -> tuple[np.ndarray, np.ndarray]:
    """Per-AU landmark displacements at intensity 5, split by which side's intensity drives them.

    Returns ``(side_basis, mid_basis)``, each (A, L, 2) float32: landmarks of the left side move
    with the left-side intensity of the AU, right-side landmarks with the right, and midline
    landmarks with the mean of both. ``landmarks = template + I_left @ side_L + ...`` is done in
    :func:`deform`.
    """
    n_lm = len(LANDMARKS)
    left = np.zeros((len(AUS), n_lm, 2), np.float32)
    right = np.zeros((len(AUS), n_lm, 2), np.float32)
    mid = np.zeros((len(AUS), n_lm, 2), np.float32)
    for au, moves in _SIDE_MOVES.items():
        a = AU_INDEX[au]
        for name, (dx, dy) in moves.items():
            left[a, LM[f"L_{name}"]] = (-dx, dy)  # outward on the left side is -x
            right[a, LM[f"R_{name}"]] = (dx, dy)
    for au, moves in _MID_MOVES.items():
        a = AU_INDEX[au]
        for name, (dx, dy) in moves.items():
            mid[a, LM[name]] = (dx, dy)
    # a global gain so that full-intensity movements read clearly at 48x48 pixels
    return np.stack([left, right]) * MOVE_GAIN, mid * MOVE_GAIN


_SIDE_BASIS, _MID_BASIS = displacement_basis()


def deform(base: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Landmarks after applying AU intensities.

    ``base``: (B, L, 2) identity-specific neutral landmarks. ``intensity``: (B, 2, A) intensities
    0..5 for the left and right side of every AU in :data:`AUS`. Linear in intensity: FACS
    intensity letters A..E are ordinal steps of one movement, so a linear blend is the simplest
    faithful model.
    """
    w = intensity.astype(np.float32) / MAX_INTENSITY
    disp = np.einsum("bsa,sald->bld", w, _SIDE_BASIS)
    disp += np.einsum("ba,ald->bld", w.mean(axis=1), _MID_BASIS)
    return base + disp


# --- EMFACS prototypes ---------------------------------------------------------------------------
# core AUs always appear; optional ones appear with the given probability.
FER7: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER8: tuple[str, ...] = FER7 + ("Contempt",)

PROTOTYPES: dict[str, dict[str, dict[int, float]]] = {
    "Happy": {"core": {6: 1.0, 12: 1.0}, "optional": {25: 0.5, 26: 0.15}},
    "Sad": {"core": {1: 1.0, 4: 1.0, 15: 1.0}, "optional": {17: 0.4}},
    "Surprise": {"core": {1: 1.0, 2: 1.0, 5: 1.0, 26: 1.0}, "optional": {25: 0.8}},
    "Fear": {"core": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 7: 1.0, 20: 1.0, 26: 1.0}, "optional": {25: 0.7}},
    "Angry": {"core": {4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0}, "optional": {24: 0.4, 17: 0.3, 10: 0.2}},
    "Disgust": {"core": {9: 1.0, 15: 1.0, 16: 1.0}, "optional": {10: 0.5, 25: 0.4, 4: 0.3, 17: 0.2}},
    "Neutral": {"core": {}, "optional": {}},
    "Contempt": {"core": {12: 1.0, 14: 1.0}, "optional": {}},
}
# Contempt is the one unilateral prototype (R12A + R14A in EMFACS).
UNILATERAL: frozenset[str] = frozenset({"Contempt"})

# Which expressions people (and models) confuse; used to blend a weak second prototype in.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "Angry": ("Disgust", "Sad"),
    "Disgust": ("Angry", "Sad"),
    "Fear": ("Surprise", "Sad"),
    "Happy": ("Contempt", "Surprise"),
    "Sad": ("Neutral", "Fear", "Angry"),
    "Surprise": ("Fear", "Happy"),
    "Neutral": ("Sad", "Contempt"),
    "Contempt": ("Happy", "Neutral"),
}
