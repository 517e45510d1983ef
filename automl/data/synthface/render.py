"""Vectorised procedural face renderer: landmarks + AU textures -> uint8 images.

Why this design: every pixel of a batch is evaluated in *face coordinates* (the inverse pose is
applied to the pixel grid once), so pose jitter costs nothing extra and every facial feature is a
few closed-form numpy expressions (ellipses, parabolic lid/lip/brow curves, short line segments
for wrinkles) evaluated only inside the image band where that feature can be. No loops over
samples, no per-face drawing calls: a batch of a few hundred 48x48 faces renders in tens of ms on
one core.
"""

from __future__ import annotations

import numpy as np

from automl.data.synthface.facs import AU_INDEX, LM, MAX_INTENSITY, deform
from automl.data.synthface.sampling import Params

_VIEW_CY = 0.16  # face-unit y at the image centre (leaves room for the chin and jaw drop)
_VIEW_HALF = 1.3  # face units from the image centre to its edge
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class _Canvas:
    """The batch being drawn: image, pixel coordinates in face units, pose-aware row/col bands."""

    def __init__(self, size: int, channels: int, nuis: Params, n: int) -> None:
        self.size = size
        self.channels = channels
        self.px = 2 * _VIEW_HALF / size
        g = (np.arange(size, dtype=np.float32) + 0.5) * self.px - _VIEW_HALF
        self.gx = g[None, None, :]
        self.gy = g[None, :, None]
        ang, sc = nuis["angle"], nuis["scale"]
        self.cos = (np.cos(ang) / sc)[:, None, None]
        self.sin = (np.sin(ang) / sc)[:, None, None]
        self.tx = nuis["shift"][:, 0, None, None]
        self.ty = nuis["shift"][:, 1, None, None]
        self.angle, self.scale, self.shift = ang, sc, nuis["shift"]
        # face-unit coordinates of every pixel, computed once; bands are views into them
        x = self.gx - self.tx
        y = self.gy - self.ty
        self.u = self.cos * x + self.sin * y
        self.v = self.cos * y - self.sin * x
        self.v += _VIEW_CY
        self.n = n
        self.inv_px = 1.0 / self.px
        self.img = np.empty((n, size, size, channels), np.float32)

    def colour(self, rgb: np.ndarray) -> np.ndarray:
        """(B, 3) rgb -> (B, 1, 1, C) in the canvas' colour space."""
        c = rgb @ _LUMA[:, None] if self.channels == 1 else rgb
        return c[:, None, None, :].astype(np.float32)

    def band(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
        """Image rows/cols that can contain face-unit box [x0,x1]x[y0,y1] for any sample's pose."""
        xs = np.array([x0, x1, x0, x1], np.float32)
        ys = np.array([y0, y0, y1, y1], np.float32) - _VIEW_CY
        ca = (np.cos(self.angle) * self.scale)[:, None]
        sa = (np.sin(self.angle) * self.scale)[:, None]
        ix = ca * xs - sa * ys + self.shift[:, 0, None]
        iy = sa * xs + ca * ys + self.shift[:, 1, None]

        def rng(lo: float, hi: float) -> slice:
            a = int(np.floor((lo + _VIEW_HALF) / self.px)) - 2
            b = int(np.ceil((hi + _VIEW_HALF) / self.px)) + 2
            return slice(max(a, 0), min(max(b, 0), self.size))

        return rng(float(iy.min()), float(iy.max())), rng(float(ix.min()), float(ix.max()))

    def coords(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Face-unit (u, v) of the pixels in a band, (B, h, w) views (do not modify)."""
        return self.u[:, rows, cols], self.v[:, rows, cols]

    def paint(self, rows: slice, cols: slice, mask: np.ndarray, colour: np.ndarray) -> None:
        """Alpha-composite ``colour`` (B,1,1,C) with coverage ``mask`` (B,h,w) into the band."""
        view = self.img[:, rows, cols]
        view += mask[..., None] * (colour - view)

    def shade(self, rows: slice, cols: slice, factor: np.ndarray) -> None:
        """Multiply the band by ``factor`` (B,h,w): darkening lines, highlights."""
        self.img[:, rows, cols] *= factor[..., None]

    def select(self, weight: np.ndarray) -> np.ndarray | slice | None:
        """Samples an AU-driven texture must be drawn on: ``None`` if none, all (a slice) if most,
        else their indices. Most AUs are off in most faces, so sparse textures cost little."""
        idx = np.flatnonzero(weight > 0.02)
        if idx.size == 0:
            return None
        return slice(None) if idx.size > 0.5 * self.n else idx

    def coords_of(self, sel: np.ndarray | slice, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        u, v = self.coords(rows, cols)
        return (u, v) if isinstance(sel, slice) else (u[sel], v[sel])

    def shade_of(self, sel: np.ndarray | slice, rows: slice, cols: slice, factor: np.ndarray) -> None:
        if isinstance(sel, slice):
            self.img[:, rows, cols] *= factor[..., None]
        else:
            self.img[sel, rows, cols] *= factor[..., None]

    def cover(self, d: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage from a signed distance (face units, negative inside).

        Works in place on ``d`` (always a fresh temporary at the call sites): fewer large
        allocations is most of what keeps the renderer fast.
        """
        d *= -self.inv_px
        d += 0.5
        np.maximum(d, 0.0, out=d)
        return np.minimum(d, 1.0, out=d)


def _col(a: np.ndarray) -> np.ndarray:
    return a[:, None, None]


def _parabola(t: np.ndarray, y_left: np.ndarray, y_mid: np.ndarray, y_right: np.ndarray) -> np.ndarray:
    """y(t) through (-1, y_left), (0, y_mid), (1, y_right); args broadcast as (B,1,1)."""
    return y_mid + 0.5 * (y_right - y_left) * t + (0.5 * (y_left + y_right) - y_mid) * (t * t)


def _segment_dist(u: np.ndarray, v: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance from (u, v) to segment p-q; p, q are (B, 2)."""
    px, py = _col(p[:, 0]), _col(p[:, 1])
    dx, dy = _col(q[:, 0] - p[:, 0]), _col(q[:, 1] - p[:, 1])
    inv = 1.0 / (dx * dx + dy * dy + 1e-9)
    h = np.clip(((u - px) * dx + (v - py) * dy) * inv, 0.0, 1.0)
    ex = u - px - h * dx
    ey = v - py - h * dy
    return np.sqrt(ex * ex + ey * ey)


def render(
    ident: Params, intensity: np.ndarray, nuis: Params, size: int = 48, channels: int = 1
) -> np.ndarray:
    """Render one face per row of ``intensity`` (B, 2, A) -> uint8 (B, C, size, size).

    ``ident`` and ``nuis`` hold one row per sample (see :mod:`sampling`). Deterministic: the only
    randomness is the pixel noise, drawn from a generator seeded by the caller through
    ``nuis["noise_seed"]`` when present.
    """
    n = intensity.shape[0]
    cv = _Canvas(size, channels, nuis, n)
    lm = deform(ident["landmarks"], intensity)
    lm[:, :, 0] += nuis["yaw"][:, None] * 0.25  # internal features slide with head yaw
    lm[:, LM["nose_tip"], 0] += nuis["yaw"] * 0.12
    inten = intensity / MAX_INTENSITY
    mean_i = inten.mean(axis=1)

    def au(a: int, side: int | None = None) -> np.ndarray:
        return mean_i[:, AU_INDEX[a]] if side is None else inten[:, side, AU_INDEX[a]]

    skin = ident["skin"]
    light_x = np.cos(nuis["light"]) * 0.8
    light_y = np.sin(nuis["light"]) * 0.8
    light_z = 0.6

    # background: flat tone + a linear gradient (screen-space)
    gxy = cv.gx * _col(nuis["bg_grad"][:, 0]) + cv.gy * _col(nuis["bg_grad"][:, 1])
    cv.img[:] = cv.colour(nuis["bg"]) + gxy[..., None]

    # clothes and neck
    rows, cols = cv.band(-1.6, 1.6, 0.9, 1.8)
    u, v = cv.coords(rows, cols)
    cv.paint(rows, cols, cv.cover(1.45 + 0.22 * u * u - v), cv.colour(nuis["cloth"]))
    cv.paint(rows, cols, cv.cover(np.maximum(np.abs(u) - 0.46, 0.75 - v)), cv.colour(skin * 0.72))

    # hair behind the head, ears, face
    rx = _col(ident["face_rx"])
    top = _col(ident["face_top"])
    chin_y = lm[:, LM["chin"], 1] * ident["chin_scale"]
    rows, cols = cv.band(-1.3, 1.3, -1.6, 1.6)
    u, v = cv.coords(rows, cols)
    hv = _col(ident["hair_vol"])
    q = (u / (rx * hv)) ** 2 + ((v + 0.1) / (top * hv)) ** 2
    hair_mask = cv.cover(np.maximum((q - 1.0) * 0.5, v - _col(ident["hair_len"])))
    cv.paint(rows, cols, hair_mask, cv.colour(ident["hair"]))
    er, ec = cv.band(-1.3, 1.3, -0.35, 0.25)
    eu, ev = cv.coords(er, ec)
    ear = ((np.abs(eu) - rx) * (1 / 0.12)) ** 2 + ((ev + 0.05) * (1 / 0.24)) ** 2
    ear -= 1.0
    ear *= 0.06
    cv.paint(er, ec, cv.cover(ear), cv.colour(skin * 0.85))
    vy = v / np.where(v < 0, top, _col(chin_y))
    vpos = np.clip(vy, 0.0, 1.0)
    rxe = rx * (1.0 - _col(ident["jaw_taper"]) * vpos * vpos)
    nx = u / rxe
    q = nx * nx + vy * vy
    face_mask = cv.cover((q - 1.0) * 0.5)
    nz = np.sqrt(np.clip(1.0 - q, 0.0, 1.0))
    lam = np.clip(_col(light_x) * nx + _col(light_y) * vy + light_z * nz, 0.0, 1.0)
    shade = _col(nuis["ambient"]) + _col(nuis["diffuse"]) * lam
    view = cv.img[:, rows, cols]
    view += face_mask[..., None] * (cv.colour(skin) * shade[..., None] - view)
    # fringe / hairline over the forehead
    fr, fc = cv.band(-1.3, 1.3, -1.6, -0.1)
    fu, fv = cv.coords(fr, fc)
    hl = _col(ident["hairline"]) + 0.32 * fu * fu
    off = fr.start - rows.start
    fringe = face_mask[:, off : off + (fr.stop - fr.start), fc.start - cols.start : fc.stop - cols.start]
    cv.paint(fr, fc, fringe * cv.cover(fv - hl), cv.colour(ident["hair"]))

    age = _col(ident["age"])
    _draw_textures(cv, lm, au, age, light_x)
    _draw_brows(cv, lm, ident)
    _draw_eyes(cv, lm, ident, nuis)
    _draw_nose(cv, lm, light_x)
    _draw_mouth(cv, lm, ident, nuis)

    img = cv.img
    # camera auto-exposure: bring the central (face) region to a per-sample target brightness,
    # as face crops in FER sets are; then a contrast change around mid grey
    q = size // 4
    centre = img[:, q : size - q, q : size - q].mean(axis=(1, 2, 3))
    gain = np.clip(nuis["exposure"] / np.maximum(centre, 1e-3), 0.6, 2.5)
    contrast = nuis["contrast"]
    img *= _col(gain * contrast * 255.0)[..., None]  # straight to the 0..255 range
    seed = int(nuis["noise_seed"][0]) if "noise_seed" in nuis else 0
    noise = np.random.default_rng(seed).standard_normal(img.shape, dtype=np.float32)
    noise *= _col(nuis["noise"] * 255.0)[..., None]
    noise += _col((0.5 - 0.5 * contrast) * 255.0 + 0.5)[..., None]
    img += noise
    np.maximum(img, 0.0, out=img)
    np.minimum(img, 255.0, out=img)
    out = img.astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _draw_textures(cv: _Canvas, lm: np.ndarray, au, age: np.ndarray, light_x: np.ndarray) -> None:
    """Wrinkles and folds: forehead (AU1/2), glabella (AU4), crow's feet (AU6), nose (AU9),
    nasolabial folds (AU6/9/10/12), dimples (AU14), chin boss (AU17), cheek raise (AU6)."""
    # forehead lines
    rows, cols = cv.band(-0.75, 0.75, -1.0, -0.55)
    u, v = cv.coords(rows, cols)
    k1, k2 = _col(au(1)), _col(au(2))
    au_u = np.abs(u)
    weight = k1 * np.clip(1.0 - au_u / 0.55, 0.0, 1.0) + k2 * np.clip(au_u / 0.55, 0.0, 1.0)
    weight = (weight + 0.25 * age) * np.clip(1.0 - au_u / 0.75, 0.0, 1.0)
    brow_y = _col(0.5 * (lm[:, LM["L_brow_mid"], 1] + lm[:, LM["R_brow_mid"], 1]))
    dark = np.zeros_like(u)
    rel = v - brow_y - 0.10 * u * u
    for off in (0.14, 0.25, 0.36):
        np.maximum(dark, cv.cover(np.abs(rel + off) - 0.012), out=dark)
    cv.shade(rows, cols, 1.0 - 0.45 * weight * dark)

    # glabella furrows (AU4) between the brows
    sel = cv.select(au(4))
    if sel is not None:
        rows, cols = cv.band(-0.2, 0.2, -0.6, -0.2)
        u, v = cv.coords_of(sel, rows, cols)
        by = _col(0.5 * (lm[sel, LM["L_brow_in"], 1] + lm[sel, LM["R_brow_in"], 1]))
        span = np.clip(1.0 - np.abs(v - by) / 0.14, 0.0, 1.0)
        lines = np.maximum(cv.cover(np.abs(u + 0.055) - 0.012), cv.cover(np.abs(u - 0.055) - 0.012))
        cv.shade_of(sel, rows, cols, 1.0 - 0.55 * _col(au(4)[sel]) * span * lines)

    for side, sgn in ((0, -1.0), (1, 1.0)):
        p = "L" if side == 0 else "R"
        # crow's feet (AU6) from the outer eye corner
        corner = lm[:, LM[f"{p}_eye_out"]] + np.array([sgn * 0.05, 0.0], np.float32)
        rows, cols = cv.band(sgn * 0.85 if sgn < 0 else 0.4, -0.4 if sgn < 0 else 0.85, -0.45, 0.0)
        u, v = cv.coords(rows, cols)
        dark = np.zeros_like(u)
        for dy in (-0.07, 0.0, 0.07):
            end = corner + np.array([sgn * 0.16, dy * 1.8], np.float32)
            start = corner + np.array([0.0, dy * 0.5], np.float32)
            dark = np.maximum(dark, cv.cover(_segment_dist(u, v, start, end) - 0.01))
        k6 = _col(au(6, side)) + 0.3 * age
        cv.shade(rows, cols, 1.0 - 0.5 * k6 * dark)

        # cheek: raised and highlighted by AU6/AU12, a shadow under it
        ck = lm[:, LM[f"{p}_cheek"]]
        rows, cols = cv.band(sgn * 0.85 if sgn < 0 else 0.15, -0.15 if sgn < 0 else 0.85, -0.15, 0.6)
        u, v = cv.coords(rows, cols)
        r2 = ((u - _col(ck[:, 0])) / 0.22) ** 2 + ((v - _col(ck[:, 1])) / 0.16) ** 2
        blob = np.clip(1.0 - r2, 0.0, 1.0)
        lift = _col(au(6, side) + 0.5 * au(12, side))
        cv.shade(rows, cols, 1.0 + (0.05 + 0.18 * lift) * blob)

        # nasolabial fold: from the nose wing to just outside the mouth corner
        wing = lm[:, LM[f"{p}_nose_wing"]] + np.array([sgn * 0.06, -0.02], np.float32)
        mc = lm[:, LM[f"{p}_mouth_corner"]] + np.array([sgn * 0.08, 0.06], np.float32)
        rows, cols = cv.band(sgn * 0.8 if sgn < 0 else 0.05, -0.05 if sgn < 0 else 0.8, 0.1, 1.0)
        u, v = cv.coords(rows, cols)
        d = _segment_dist(u, v, wing, mc) - 0.014
        k = _col(0.35 * au(6, side) + 0.5 * au(9, side) + 0.6 * au(10, side) + 0.6 * au(12, side))
        k = np.clip(k + 0.25 * age, 0.0, 1.0)
        shadow_side = 1.0 + 0.25 * sgn * _col(light_x)
        cv.shade(rows, cols, 1.0 - 0.45 * k * shadow_side * cv.cover(d))

        # dimple (AU14)
        sel = cv.select(au(14, side))
        if sel is not None:
            u, v = cv.coords_of(sel, rows, cols)
            dp = lm[sel, LM[f"{p}_mouth_corner"]] + np.array([sgn * 0.06, 0.0], np.float32)
            r2 = ((u - _col(dp[:, 0])) / 0.035) ** 2 + ((v - _col(dp[:, 1])) / 0.05) ** 2
            cv.shade_of(sel, rows, cols, 1.0 - 0.5 * _col(au(14, side)[sel]) * np.clip(1.0 - r2, 0.0, 1.0))

    # nose wrinkles (AU9) across the bridge
    sel = cv.select(au(9))
    if sel is not None:
        rows, cols = cv.band(-0.25, 0.25, -0.3, 0.2)
        u, v = cv.coords_of(sel, rows, cols)
        ey = _col(0.5 * (lm[sel, LM["L_eye_in"], 1] + lm[sel, LM["R_eye_in"], 1]))
        bow = v - ey - 0.3 * u * u
        dark = np.zeros_like(u)
        for off in (0.07, 0.15, 0.23):
            np.maximum(dark, cv.cover(np.abs(bow - off) - 0.011), out=dark)
        dark *= np.clip(1.0 - np.abs(u) / 0.16, 0.0, 1.0)
        cv.shade_of(sel, rows, cols, 1.0 - 0.55 * _col(au(9)[sel]) * dark)

    # chin boss (AU17): a wrinkled dimpled chin below the lower lip
    rows, cols = cv.band(-0.35, 0.35, 0.7, 1.4)
    sel = cv.select(au(17))
    if sel is not None:
        u, v = cv.coords_of(sel, rows, cols)
        cy = _col(lm[sel, LM["lip_lo_out"], 1]) + 0.15
        r2 = (u / 0.16) ** 2 + ((v - cy) / 0.09) ** 2
        mottled = np.clip(1.0 - r2, 0.0, 1.0) * (0.6 + 0.4 * np.cos(u * 40.0))
        cv.shade_of(sel, rows, cols, 1.0 - 0.35 * _col(au(17)[sel]) * mottled)
    u, v = cv.coords(rows, cols)
    cy = _col(lm[:, LM["lip_lo_out"], 1]) + 0.15
    # shadow of the lower lip / chin crease, deeper with AU17
    crease = cv.cover(np.abs(v - cy + 0.07 - 0.6 * u * u) - 0.012) * np.clip(1.0 - np.abs(u) / 0.2, 0.0, 1.0)
    cv.shade(rows, cols, 1.0 - (0.15 + 0.35 * _col(au(17))) * crease)


def _draw_brows(cv: _Canvas, lm: np.ndarray, ident: Params) -> None:
    colour = cv.colour(np.clip(ident["hair"] * 0.7, 0.0, 1.0))
    thick = _col(ident["brow_thick"])
    dark = _col(ident["brow_dark"])
    for p, sgn in (("L", -1.0), ("R", 1.0)):
        rows, cols = cv.band(-0.85 if sgn < 0 else 0.0, 0.0 if sgn < 0 else 0.85, -0.85, -0.2)
        u, v = cv.coords(rows, cols)
        xi, yi = lm[:, LM[f"{p}_brow_in"], 0], lm[:, LM[f"{p}_brow_in"], 1]
        xo, yo = lm[:, LM[f"{p}_brow_out"], 0], lm[:, LM[f"{p}_brow_out"], 1]
        ym = lm[:, LM[f"{p}_brow_mid"], 1]
        xm, hw = _col(0.5 * (xi + xo)), _col(0.5 * np.abs(xo - xi))
        t = (u - xm) / hw
        # t runs from the inner end (-1 on the right brow) to the outer end
        y_in, y_out = (_col(yo), _col(yi)) if sgn < 0 else (_col(yi), _col(yo))
        curve = _parabola(t, y_in, _col(ym), y_out)
        outer = np.clip(t * sgn, -1.0, 1.0)
        half = thick * (0.85 - 0.35 * outer)
        d = np.maximum(np.abs(v - curve) - half, (np.abs(t) - 1.0) * hw)
        cv.paint(rows, cols, cv.cover(d) * dark, colour)


def _draw_eyes(cv: _Canvas, lm: np.ndarray, ident: Params, nuis: Params) -> None:
    sclera = cv.colour(np.full((cv.n, 3), 0.86, np.float32))
    iris = cv.colour(ident["iris"])
    lash = cv.colour(np.full((cv.n, 3), 0.08, np.float32))
    r_iris = _col(ident["iris_r"])
    for p, sgn in (("L", -1.0), ("R", 1.0)):
        rows, cols = cv.band(-0.8 if sgn < 0 else 0.0, 0.0 if sgn < 0 else 0.8, -0.55, -0.02)
        u, v = cv.coords(rows, cols)
        xi, yi = lm[:, LM[f"{p}_eye_in"], 0], lm[:, LM[f"{p}_eye_in"], 1]
        xo, yo = lm[:, LM[f"{p}_eye_out"], 0], lm[:, LM[f"{p}_eye_out"], 1]
        yu, yl = _col(lm[:, LM[f"{p}_eye_up"], 1]), _col(lm[:, LM[f"{p}_eye_lo"], 1])
        xm, hw = _col(0.5 * (xi + xo)), _col(0.5 * np.abs(xo - xi))
        y_a, y_b = (_col(yo), _col(yi)) if sgn < 0 else (_col(yi), _col(yo))
        t = (u - xm) / hw
        upper = _parabola(t, y_a, yu, y_b)
        lower = _parabola(t, y_a, yl, y_b)
        ends = (np.abs(t) - 1.0) * hw
        # socket shadow between brow and lid, lighter when the lid is raised (AU5)
        socket = ((u - xm) / (hw * 1.25)) ** 2 + ((v - yu + 0.02) / 0.11) ** 2
        cv.shade(rows, cols, 1.0 - 0.16 * np.clip(1.0 - socket, 0.0, 1.0))
        aperture = cv.cover(np.maximum(np.maximum(upper - v, v - lower), ends))
        cv.paint(rows, cols, aperture, sclera)
        cx = xm + _col(nuis["gaze"][:, 0])
        cy = 0.5 * (yu + yl) + _col(nuis["gaze"][:, 1]) * 0.4
        disc = cv.cover(np.sqrt((u - cx) ** 2 + (v - cy) ** 2) - r_iris)
        cv.paint(rows, cols, aperture * disc, iris)
        cv.paint(
            rows, cols, aperture * cv.cover(np.sqrt((u - cx) ** 2 + (v - cy) ** 2) - r_iris * 0.45), lash
        )
        lid = cv.cover(np.maximum(np.abs(v - upper + 0.008) - 0.016, ends))
        cv.paint(rows, cols, lid * 0.85, lash)
        lower_line = cv.cover(np.maximum(np.abs(v - lower) - 0.008, ends))
        cv.shade(rows, cols, 1.0 - 0.3 * lower_line)


def _draw_nose(cv: _Canvas, lm: np.ndarray, light_x: np.ndarray) -> None:
    rows, cols = cv.band(-0.35, 0.35, -0.25, 0.45)
    u, v = cv.coords(rows, cols)
    tip = lm[:, LM["nose_tip"]]
    tx, ty = _col(tip[:, 0]), _col(tip[:, 1])
    # bridge side shadow on the side away from the light
    side = np.where(light_x > 0, -1.0, 1.0).astype(np.float32)
    bx = tx + _col(side) * 0.11
    along = np.clip((v + 0.15) / (ty + 0.15), 0.0, 1.0) * cv.cover(-0.2 - (v - ty))
    band = cv.cover(np.abs(u - bx * along - 0.5 * tx * (1 - along)) - 0.03)
    cv.shade(rows, cols, 1.0 - 0.22 * band * along * _col(np.abs(light_x) + 0.3))
    # shadow under the tip and the nostrils
    under = ((u - tx) / 0.15) ** 2 + ((v - ty - 0.04) / 0.045) ** 2
    cv.shade(rows, cols, 1.0 - 0.25 * np.clip(1.0 - under, 0.0, 1.0))
    for p in ("L", "R"):
        w = lm[:, LM[f"{p}_nose_wing"]]
        nx = _col(0.45 * w[:, 0] + 0.55 * tip[:, 0])
        ny = _col(w[:, 1]) + 0.01
        r = ((u - nx) / 0.05) ** 2 + ((v - ny) / 0.028) ** 2
        cv.shade(rows, cols, 1.0 - 0.6 * cv.cover((r - 1.0) * 0.02))


def _draw_mouth(cv: _Canvas, lm: np.ndarray, ident: Params, nuis: Params) -> None:
    rows, cols = cv.band(-0.65, 0.65, 0.3, 1.2)
    u, v = cv.coords(rows, cols)
    left, right = lm[:, LM["L_mouth_corner"]], lm[:, LM["R_mouth_corner"]]
    yl, yr = _col(left[:, 1]), _col(right[:, 1])
    xm, hw = _col(0.5 * (left[:, 0] + right[:, 0])), _col(0.5 * np.abs(right[:, 0] - left[:, 0]))
    t = (u - xm) / hw
    ends = (np.abs(t) - 1.0) * hw
    y_uo = _parabola(t, yl, _col(lm[:, LM["lip_up_out"], 1]), yr)
    y_ui = _parabola(t, yl, _col(lm[:, LM["lip_up_in"], 1]), yr)
    y_li = _parabola(t, yl, _col(lm[:, LM["lip_lo_in"], 1]), yr)
    y_lo = _parabola(t, yl, _col(lm[:, LM["lip_lo_out"], 1]), yr)
    # cupid's bow: a small dip of the upper lip's outline at the middle
    y_uo = y_uo + 0.018 * np.clip(1.0 - np.abs(t) * 4.0, 0.0, 1.0)
    lips = cv.cover(np.maximum(np.maximum(y_uo - v, v - y_lo), ends))
    cv.paint(
        rows, cols, lips * 0.8, cv.colour(ident["lip"] * (nuis["ambient"] + 0.5 * nuis["diffuse"])[:, None])
    )
    gap = np.maximum(np.maximum(y_ui - v, v - y_li), ends * 1.05)
    inside = cv.cover(gap)
    teeth_line = y_ui + 0.05 * (1.0 - t * t)
    teeth = inside * cv.cover(v - teeth_line)
    cv.paint(rows, cols, inside, cv.colour(np.full((cv.n, 3), 0.12, np.float32)))
    cv.paint(rows, cols, teeth * 0.9, cv.colour(np.full((cv.n, 3), 0.82, np.float32)))
    seam = cv.cover(np.maximum(np.abs(v - 0.5 * (y_ui + y_li)) - 0.008, ends))
    cv.shade(rows, cols, 1.0 - 0.45 * seam)
    # corner shadows make AU12 (up) / AU15 (down) readable even with closed lips
    for yc, xc in ((yl, xm - hw), (yr, xm + hw)):
        r2 = ((u - xc) / 0.05) ** 2 + ((v - yc) / 0.035) ** 2
        cv.shade(rows, cols, 1.0 - 0.3 * np.clip(1.0 - r2, 0.0, 1.0))
