"""Procedural cartoon faces in the aligned-CelebA frame, with attribute cues as continuous sliders.

A face is an :class:`Identity` (head shape, colours, pose: never correlated with the attributes)
plus attribute intensities in [0, 1]. :func:`render` draws any identity with any intensities,
fractional ones included, so the generator can serve as ground truth for counterfactual edits.

Geometry is written in the native 178 x 218 frame relative to the head centre; the head and hair fill
roughly rows 40..195, inside the rows 20..198 that the CelebA loader keeps. Each cue is sized to
stay a few pixels wide after that 178 x 178 crop is resized to 64 x 64. Drawing happens at twice
the size and is box-filtered down, which anti-aliases the edges.

Cues (every one grows monotonically with its intensity and composes with the others):

- ``Smiling``: mouth corners rise into a curve, the mouth widens, the lower lip becomes a crescent,
  smile lines appear at its corners and the cheeks flush.
- ``Mouth_Slightly_Open``: a dark opening with a strip of teeth, its height proportional.
- ``Eyeglasses``: frames, bridge and arms whose thickness and opacity grow, plus a pale lens tint.
- ``Male``: hair shortens from shoulder length to a crop, brows thicken, a stubble shadow darkens
  the jaw.
- ``Bangs``: a jagged fringe from the hairline over the forehead, reaching the brows at 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from faderkit.errors import FaderkitError

WIDTH, HEIGHT = 178, 218
ATTRIBUTES = ("Smiling", "Eyeglasses", "Male", "Mouth_Slightly_Open", "Bangs")

#: Supersampling factor: draw at SS x the native size, then box-filter down.
SS = 2
#: Head centre in the native frame before the identity's pose shift.
CENTRE = (89.0, 122.0)

RGB = tuple[int, int, int]

_SKIN = np.array([(255, 226, 200), (240, 196, 160), (222, 170, 128), (188, 132, 92), (140, 92, 62), (96, 62, 42)], float)
_HAIR = np.array([(28, 22, 22), (66, 42, 28), (112, 72, 42), (150, 72, 38), (214, 182, 118), (168, 166, 162)], float)
_IRIS = np.array([(74, 48, 26), (44, 92, 140), (62, 108, 62), (102, 76, 44)], float)
_FRAMES = np.array([(20, 20, 24), (40, 36, 90), (90, 30, 30), (34, 34, 34)], float)


@dataclass(frozen=True)
class Identity:
    """Everything about a face that the attributes do not control. Lengths are native pixels."""

    head_w: float  # half-width of the head ellipse
    head_h: float  # half-height of the head ellipse
    eye_sep: float  # horizontal distance of each eye from the centre line
    nose_len: float
    skin: RGB
    hair: RGB
    iris: RGB
    lips: RGB
    frames: RGB  # the glasses' colour when Eyeglasses is on
    shirt: RGB
    bg_top: RGB
    bg_bottom: RGB
    dx: float  # pose shift, native pixels
    dy: float
    scale: float


def _rgb(v) -> RGB:
    return tuple(int(round(min(255.0, max(0.0, c)))) for c in v)  # type: ignore[return-value]


def _palette(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> RGB:
    """A colour between two neighbouring palette entries, plus a little noise."""
    t = rng.uniform(0, len(palette) - 1)
    i = min(int(t), len(palette) - 2)
    c = palette[i] + (t - i) * (palette[i + 1] - palette[i])
    return _rgb(c + rng.uniform(-jitter, jitter, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random identity; draws a fixed number of values from ``rng`` so later draws stay aligned."""
    skin = _palette(rng, _SKIN, 8)
    hair_i = int(rng.integers(len(_HAIR)))
    hair = _rgb(_HAIR[hair_i] + rng.uniform(-12, 12, 3))
    iris = _rgb(_IRIS[int(rng.integers(len(_IRIS)))] + rng.uniform(-10, 10, 3))
    lip_mix = rng.uniform(0.45, 0.7)
    lips = _rgb(np.array(skin) * (1 - lip_mix) + np.array((168, 52, 66)) * lip_mix)
    frames = _rgb(_FRAMES[int(rng.integers(len(_FRAMES)))])
    shirt = _rgb(rng.uniform(30, 230, 3))
    bg_top = rng.uniform(40, 235, 3)
    bg_bottom = np.clip(bg_top + rng.uniform(-60, 60, 3), 20, 245)
    return Identity(
        head_w=float(rng.uniform(41, 48)),
        head_h=float(rng.uniform(54, 61)),
        eye_sep=float(rng.uniform(17.5, 21)),
        nose_len=float(rng.uniform(12, 18)),
        skin=skin,
        hair=hair,
        iris=iris,
        lips=lips,
        frames=frames,
        shirt=shirt,
        bg_top=_rgb(bg_top),
        bg_bottom=_rgb(bg_bottom),
        dx=float(rng.uniform(-4, 4)),
        dy=float(rng.uniform(-4, 4)),
        scale=float(rng.uniform(0.94, 1.06)),
    )


def sample_attributes(rng: np.random.Generator) -> dict[str, int]:
    """Binary attributes with CelebA-like correlations, none too rare to learn.

    - Male: 40%.
    - Smiling: 50%.
    - Mouth_Slightly_Open: 75% if Smiling, else 20% (about 47.5% overall).
    - Eyeglasses: 30% if Male, else 15% (about 21% overall).
    - Bangs: 8% if Male, else 32% (about 22% overall).
    """
    u = rng.random(5)
    male = u[0] < 0.40
    smiling = u[1] < 0.50
    return {
        "Smiling": int(smiling),
        "Eyeglasses": int(u[2] < (0.30 if male else 0.15)),
        "Male": int(male),
        "Mouth_Slightly_Open": int(u[3] < (0.75 if smiling else 0.20)),
        "Bangs": int(u[4] < (0.08 if male else 0.32)),
    }


def _mix(a, b, t: float) -> RGB:
    return _rgb(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)


def _values(values: Mapping[str, float] | None) -> dict[str, float]:
    out = dict.fromkeys(ATTRIBUTES, 0.0)
    for name, v in (values or {}).items():
        if name not in out:
            raise FaderkitError(f"toyfaces has no attribute '{name}'; choose from: {', '.join(ATTRIBUTES)}")
        out[name] = float(min(1.0, max(0.0, float(v))))
    return out


def mouth_y(idt: Identity) -> float:
    return 0.55 * idt.head_h


def landmarks(identity: Identity) -> dict[str, tuple[float, float]]:
    """Native-frame (x, y) of the key points: eyes, brows, mouth, forehead, chin, head centre."""
    idt = identity
    cx, cy = CENTRE[0] + idt.dx, CENTRE[1] + idt.dy
    s = idt.scale
    pts = {
        "centre": (0.0, 0.0),
        "left_eye": (-idt.eye_sep, -6.0),
        "right_eye": (idt.eye_sep, -6.0),
        "brows": (0.0, -19.0),
        "forehead": (0.0, -0.5 * idt.head_h - 6),
        "mouth": (0.0, mouth_y(idt)),
        "chin": (0.0, idt.head_h),
    }
    return {k: (cx + s * x, cy + s * y) for k, (x, y) in pts.items()}


class _Canvas:
    """Canonical (head-centred, native-pixel) coordinates -> supersampled canvas pixels."""

    def __init__(self, idt: Identity):
        self.ox = (CENTRE[0] + idt.dx) * SS
        self.oy = (CENTRE[1] + idt.dy) * SS
        self.k = idt.scale * SS
        top, bottom = np.array(idt.bg_top, np.float32), np.array(idt.bg_bottom, np.float32)
        t = np.linspace(0.0, 1.0, HEIGHT * SS, dtype=np.float32)[:, None]
        column = (top * (1 - t) + bottom * t).round().astype(np.uint8)[:, None, :]
        # A one-pixel column stretched sideways: much faster than building the full array.
        self.img = Image.fromarray(column).resize((WIDTH * SS, HEIGHT * SS), Image.NEAREST)
        self.draw = ImageDraw.Draw(self.img)

    def pts(self, xs, ys) -> list[tuple[float, float]]:
        xs = self.ox + self.k * np.asarray(xs, float)
        ys = self.oy + self.k * np.asarray(ys, float)
        return list(zip(xs.tolist(), ys.tolist()))

    def box(self, x0, y0, x1, y1) -> tuple[float, float, float, float]:
        return (self.ox + self.k * x0, self.oy + self.k * y0, self.ox + self.k * x1, self.oy + self.k * y1)

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.k)))

    def polygon(self, xs, ys, fill) -> None:
        self.draw.polygon(self.pts(xs, ys), fill=fill)

    def line(self, xs, ys, fill, width: float) -> None:
        self.draw.line(self.pts(xs, ys), fill=fill, width=self.w(width), joint="curve")


def _arc(a: float, b: float, t0: float, t1: float, n: int = 24, cy: float = 0.0):
    """Points of the ellipse x = a cos t, y = cy + b sin t for t from t0 to t1 (radians, y down)."""
    t = np.linspace(t0, t1, n)
    return a * np.cos(t), cy + b * np.sin(t)


def render(identity: Identity, values: Mapping[str, float] | None = None) -> np.ndarray:
    """Draw one face: uint8 (218, 178, 3). ``values`` maps attribute names to [0, 1] (clipped);
    missing attributes are 0. The same identity and values always give the same array."""
    v = _values(values)
    smile, glasses, male, mouth_open, bangs = (v[a] for a in ATTRIBUTES)
    idt = identity
    c = _Canvas(idt)
    W, H = idt.head_w, idt.head_h
    skin = idt.skin
    hair = idt.hair
    shade = _mix(skin, (0, 0, 0), 0.22)

    # Shoulders.
    sx, sy = _arc(W + 46, 40, np.pi, 2 * np.pi, 24, cy=H + 62)
    c.polygon(np.r_[sx, W + 60, -W - 60], np.r_[sy, 120, 120], idt.shirt)

    # Hair behind the head: shoulder length at Male 0, above the ears at Male 1.
    side = W + 14 - 10 * male
    bottom = (H + 34) * (1 - male) + (-0.15 * H) * male
    ax, ay = _arc(side, H + 8, np.pi, 2 * np.pi, 24, cy=-6)
    ends_y = max(bottom - 6.0, -6.0)
    c.polygon(
        np.r_[-side, ax, side, side - 4, -side + 4], np.r_[ends_y, ay, ends_y, max(bottom, -6.0), max(bottom, -6.0)], hair
    )

    c.draw.rectangle(c.box(-0.42 * W, 0.5 * H, 0.42 * W, H + 40), fill=shade)  # neck

    # Head and ears.
    for sgn in (-1, 1):
        c.draw.ellipse(c.box(sgn * W - 6, -12, sgn * W + 6, 10), fill=shade)
    c.draw.ellipse(c.box(-W, -H, W, H), fill=skin)

    # Cheeks that lift and flush with a smile.
    if smile > 0:
        blush = _mix(skin, (226, 96, 96), 0.4 * smile)
        for sgn in (-1, 1):
            bx = sgn * (idt.eye_sep + 4)
            c.draw.ellipse(c.box(bx - 8.5, 9 - 1.5 * smile, bx + 8.5, 20 - 1.5 * smile), fill=blush)

    # Stubble shadow on the jaw (Male).
    if male > 0:
        stubble = _mix(skin, _mix(hair, (0, 0, 0), 0.4), 0.55 * male)
        t_top = np.arcsin(min(1.0, 14.0 / H))
        jx, jy = _arc(W, H, t_top, np.pi - t_top, 28)
        c.polygon(jx, jy, stubble)
        mx, my = _arc(24 + 3 * smile, 9, np.pi, 2 * np.pi, 16, cy=mouth_y(idt) - 6)  # moustache area
        c.polygon(mx, my, stubble)

    # Hair cap over the top of the head, with a hairline that drops at the temples.
    hairline, temple = -0.62 * H, -0.18 * H
    t = np.linspace(1, -1, 25)
    ix, iy = t * W * 0.99, hairline + (temple - hairline) * np.abs(t) ** 3
    cx_, cy_ = _arc(W + 5, H + 7, np.pi + 0.35, 2 * np.pi - 0.35, 28, cy=-4)
    c.polygon(np.r_[-W * 1.02, cx_, W * 1.02, ix], np.r_[temple, cy_, temple, iy], hair)

    # Brows: thicker for Male.
    brow_col = _mix(hair, (0, 0, 0), 0.35)
    brow_w = 3.0 + 5.0 * male
    for sgn in (-1, 1):
        bx = sgn * np.linspace(idt.eye_sep - 10, idt.eye_sep + 10, 7)
        by = -19 - 2.5 * np.sin(np.linspace(0.3, np.pi - 0.3, 7))
        c.line(bx, by, brow_col, brow_w)

    # Bangs: a jagged fringe from the hairline down over the forehead.
    if bangs > 0:
        low = hairline + (-22.0 - hairline) * bangs
        n = 9
        fx = np.linspace(-W * 0.93, W * 0.93, 2 * n + 1)
        jag = np.where(np.arange(2 * n + 1) % 2 == 0, 0.0, 5.0 * bangs)
        fy = low + jag - 4.0 * bangs * (np.abs(fx) / W) ** 2
        fy = np.minimum(fy, low + 5.0)
        top_x, top_y = _arc(W * 0.95, H * 0.9, np.pi + 0.5, 2 * np.pi - 0.5, 12, cy=-4)
        c.polygon(np.r_[fx, top_x[::-1]], np.r_[fy, top_y[::-1]], hair)

    # Eyeglasses lens tint (under the eyes), then eyes, then frames.
    lens = (12.5, 9.5)
    if glasses > 0:
        tint = _mix(skin, (214, 230, 245), 0.45 * glasses)
        for sgn in (-1, 1):
            ex = sgn * idt.eye_sep
            c.draw.rounded_rectangle(c.box(ex - lens[0], -6 - lens[1], ex + lens[0], -6 + lens[1]), radius=c.w(5), fill=tint)
    for sgn in (-1, 1):
        ex = sgn * idt.eye_sep
        c.draw.ellipse(c.box(ex - 7, -10.5, ex + 7, -1.5), fill=(246, 246, 242))
        c.draw.ellipse(c.box(ex - 3.8, -9.8, ex + 3.8, -2.2), fill=idt.iris)
        c.draw.ellipse(c.box(ex - 1.8, -7.8, ex + 1.8, -4.2), fill=(12, 10, 10))
        c.line([ex - 7.5, ex - 3, ex + 3, ex + 7.5], [-6, -10.5, -10.5, -6], _mix(skin, (0, 0, 0), 0.6), 1.2)
    if glasses > 0:
        frame = _mix(skin, idt.frames, glasses)
        fw = 1.0 + 2.5 * glasses
        for sgn in (-1, 1):
            ex = sgn * idt.eye_sep
            c.draw.rounded_rectangle(
                c.box(ex - lens[0], -6 - lens[1], ex + lens[0], -6 + lens[1]), radius=c.w(5), outline=frame, width=c.w(fw)
            )
            arm_x0 = sgn * (idt.eye_sep + lens[0])
            c.line([arm_x0, sgn * (W - 1)], [-9, -9], frame, fw)
        c.line([-(idt.eye_sep - lens[0]), 0, idt.eye_sep - lens[0]], [-8, -9.5, -8], frame, fw)

    # Nose.
    nl = idt.nose_len
    c.line([-1.5, -4.5, -1.0], [-2, nl - 2, nl], shade, 1.6)
    c.line([-4.5, 0, 4.5], [nl, nl + 1.2, nl], shade, 1.6)

    # Mouth: the lips' shared line curves up with Smiling; the opening grows with Mouth_Slightly_Open.
    mw = 16.0 + 5.0 * smile
    t = np.linspace(-1, 1, 17)
    mx = t * mw
    upper = mouth_y(idt) - 12.0 * smile * t**2 + 2.5 * smile
    gap = (11.0 * mouth_open + 2.0 * smile * mouth_open) * (1 - t**2) ** 0.8
    opening = upper + gap
    lower = opening + 4.5 * smile * (1 - t**2)  # a smile's lower lip: a crescent under the opening
    if smile > 0:
        c.polygon(np.r_[mx, mx[::-1]], np.r_[upper, lower[::-1]], idt.lips)
    if mouth_open > 0:
        c.polygon(np.r_[mx, mx[::-1]], np.r_[upper, opening[::-1]], (62, 18, 24))
        teeth = upper + np.minimum(gap, 3.5 * mouth_open * (1 - t**2))
        c.polygon(np.r_[mx, mx[::-1]], np.r_[upper, teeth[::-1]], (240, 238, 230))
    lip_line = _mix(idt.lips, (0, 0, 0), 0.3)
    c.line(mx, upper - 0.6, lip_line, 2.8)
    c.line(mx, lower + 0.8, idt.lips, 3.4)
    if smile > 0:  # smile lines beside the mouth corners
        line_col = _mix(skin, _mix(skin, (0, 0, 0), 0.45), smile)
        for sgn in (-1, 1):
            lx = sgn * (mw + 2 + 3 * np.array([1.0, 0.5, 0.0]))
            ly = upper[0] + np.array([-8.0, -2.0, 3.0])
            c.line(lx, ly, line_col, 1.0 + 0.8 * smile)

    return np.asarray(c.img.reduce(SS), dtype=np.uint8)


def five_landmarks(identity: Identity, values: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Native-frame (x, y) of CelebA's five landmarks on the face :func:`render` draws with ``values``:
    the eye centres, the nose tip and the mouth corners (which widen and rise with Smiling)."""
    smile = _values(values)["Smiling"]
    idt = identity
    mw = 16.0 + 5.0 * smile  # the mouth's half-width, as drawn
    corner_y = mouth_y(idt) - 9.5 * smile  # the lips' line at the corners
    pts = {
        "left_eye": (-idt.eye_sep, -6.0),
        "right_eye": (idt.eye_sep, -6.0),
        "nose": (0.0, idt.nose_len),
        "mouth_left": (-mw, corner_y),
        "mouth_right": (mw, corner_y),
    }
    cx, cy, s = CENTRE[0] + idt.dx, CENTRE[1] + idt.dy, idt.scale
    return {k: (cx + s * x, cy + s * y) for k, (x, y) in pts.items()}
