"""Procedural flowers: the petals' colour is the attribute, everything else is identity.

A flower is an :class:`Identity` (image size, position, size, petal count and shape, one or two
rings of petals, centre colour and size, background, leaves, stem, a small per-flower tint of the
petal colour) plus one petal colour from :data:`COLORS`. :func:`render` draws any identity in any
colour, so the generator can serve as ground truth for an edit that changes only the colour.

Images are not square (like the real photos): the flower sits inside the central square, which
is what the loader's centre crop keeps. Drawing happens at twice the size and is box-filtered
down, which anti-aliases the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from faderkit.errors import FaderkitError

#: The petal colours, in the order of the default Oxford-102 vocabulary.
COLORS = ("red", "yellow", "white", "purple", "pink", "orange", "blue")
_RGB = {
    "red": (205, 28, 38),
    "yellow": (248, 212, 36),
    "white": (242, 242, 236),
    "purple": (122, 44, 168),
    "pink": (246, 132, 186),
    "orange": (250, 128, 24),
    "blue": (46, 88, 214),
}
#: Centre (stamen) colours; the first three are also petal-colour words, so captions that mention
#: the centre name a second colour, as real captions do ("red petals and a yellow center").
CENTRES = ("yellow", "orange", "white", "green", "brown", "black")
_CENTRE_RGB = {"yellow": (236, 196, 30), "orange": (226, 120, 20), "white": (236, 236, 226),
               "green": (96, 150, 50), "brown": (110, 64, 30), "black": (34, 26, 22)}
_GREENS = np.array([(40, 92, 38), (74, 120, 46), (112, 140, 64), (52, 76, 40), (88, 104, 58)], float)
_GROUNDS = np.array([(92, 120, 70), (60, 84, 52), (120, 110, 84), (140, 150, 120), (80, 96, 90), (36, 52, 34)], float)

SS = 2
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Identity:
    """Everything about a flower that its colour does not control. Lengths are output pixels."""

    width: int
    height: int
    cx: float
    cy: float
    radius: float  # petal tip distance from the centre
    n_petals: int
    petal_width: float  # half-width of a petal at its widest, as a fraction of its length
    pointed: bool  # pointed tips (True) or rounded ones
    rotation: float  # radians
    two_rings: bool  # a second, shorter ring of petals between the first ones
    centre: str  # one of CENTRES
    centre_radius: float  # fraction of the radius
    tint: tuple[float, float, float]  # small per-flower offset added to the petal colour
    shade: float  # petal brightness factor
    bg_top: RGB
    bg_bottom: RGB
    leaves: tuple[tuple[float, float, float, float, float, RGB], ...]  # (x, y, length, width, angle, colour)
    stem_angle: float

    @property
    def species(self) -> int:
        """A class label 1..16 from petal count and shape (the dataset's imagelabels.mat)."""
        return 1 + 2 * (self.n_petals - 5) + int(self.pointed)


def _rgb(v) -> RGB:
    return tuple(int(round(min(255.0, max(0.0, c)))) for c in v)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> RGB:
    return _rgb(palette[int(rng.integers(len(palette)))] + rng.uniform(-jitter, jitter, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random identity; draws a fixed number of values from ``rng`` so later draws stay aligned."""
    side = int(rng.integers(112, 177))
    extra = int(rng.integers(0, 49))
    landscape = bool(rng.random() < 0.5)
    width, height = (side + extra, side) if landscape else (side, side + extra)
    radius = float(rng.uniform(0.28, 0.44) * side)
    slack = 0.5 * side - radius - 2
    cx = width / 2 + float(rng.uniform(-1, 1) * min(slack, 0.08 * side))
    cy = height / 2 + float(rng.uniform(-1, 1) * min(slack, 0.08 * side))
    n_petals = int(rng.integers(5, 13))
    pointed = bool(rng.random() < 0.5)
    petal_width = float(rng.uniform(0.18, 0.34) if pointed else rng.uniform(0.24, 0.42))
    rotation = float(rng.uniform(0, 2 * np.pi))
    two_rings = bool(rng.random() < 0.35)
    centre = CENTRES[int(rng.integers(len(CENTRES)))]
    centre_radius = float(rng.uniform(0.14, 0.3))
    tint = tuple(float(t) for t in rng.uniform(-14, 14, 3))
    shade = float(rng.uniform(0.86, 1.06))
    top = _pick(rng, _GROUNDS, 14)
    bottom = _rgb(np.array(top, float) + rng.uniform(-45, 30, 3))
    n_leaves = int(rng.integers(2, 7))
    leaves = []
    for _ in range(6):  # always six draws, so the stream stays aligned whatever n_leaves is
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        length, w = float(rng.uniform(0.18, 0.4) * side), float(rng.uniform(0.05, 0.12) * side)
        angle = float(rng.uniform(0, np.pi))
        leaves.append((x, y, length, w, angle, _pick(rng, _GREENS, 16)))
    stem_angle = float(rng.uniform(-0.35, 0.35))
    return Identity(width, height, cx, cy, radius, n_petals, petal_width, pointed, rotation, two_rings, centre,
                    centre_radius, tint, shade, top, bottom, tuple(leaves[:n_leaves]), stem_angle)


def petal_rgb(identity: Identity, color: str) -> RGB:
    if color not in _RGB:
        raise FaderkitError(f"toyflowers has no colour '{color}'; choose from: {', '.join(COLORS)}")
    return _rgb(np.array(_RGB[color], float) * identity.shade + np.array(identity.tint))


def _petal(cx, cy, angle, r0, r1, half_width, pointed, n=14):
    """Polygon points of one petal from radius r0 to r1 along ``angle``."""
    t = np.linspace(0.0, 1.0, n)
    profile = np.sin(np.pi * t ** (1.6 if pointed else 0.8)) ** (1.2 if pointed else 0.6)
    along = r0 + (r1 - r0) * t
    side = half_width * profile
    ca, sa = np.cos(angle), np.sin(angle)
    xs = np.r_[along, along[::-1]]
    ys = np.r_[side, -side[::-1]]
    return list(zip((cx + xs * ca - ys * sa).tolist(), (cy + xs * sa + ys * ca).tolist()))


def _mix(a, b, t: float) -> RGB:
    return _rgb(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)


def render(identity: Identity, color: str) -> np.ndarray:
    """Draw one flower: uint8 (height, width, 3). The same identity and colour give the same array."""
    idt = identity
    petal = petal_rgb(idt, color)
    W, H = idt.width * SS, idt.height * SS
    top, bottom = np.array(idt.bg_top, np.float32), np.array(idt.bg_bottom, np.float32)
    t = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None]
    column = (top * (1 - t) + bottom * t).round().astype(np.uint8)[:, None, :]
    img = Image.fromarray(column).resize((W, H), Image.NEAREST)
    draw = ImageDraw.Draw(img)

    for x, y, length, w, angle, colour in idt.leaves:  # leaves behind everything
        pts = _petal(x * SS, y * SS, angle, -length * SS / 2, length * SS / 2, w * SS, True)
        draw.polygon(pts, fill=colour)
        draw.line(pts[:1] + pts[13:14], fill=_mix(colour, (0, 0, 0), 0.3), width=SS)

    cx, cy, R = idt.cx * SS, idt.cy * SS, idt.radius * SS
    stem = (70, 118, 44)
    sx = cx + np.sin(idt.stem_angle) * (H - cy)
    draw.line([(cx, cy), (sx, H)], fill=stem, width=max(2, int(0.05 * R)))

    edge = _mix(petal, (0, 0, 0), 0.28)
    vein = _mix(petal, (0, 0, 0), 0.14)
    rings = [(0.0, 1.0, 1.0, petal)]
    if idt.two_rings:
        rings.insert(0, (np.pi / idt.n_petals, 0.72, 0.9, _mix(petal, (0, 0, 0), 0.1)))  # back ring, slightly darker
    for offset, length, width, fill in rings:
        r1 = R * length
        hw = idt.petal_width * r1 * width
        for k in range(idt.n_petals):
            a = idt.rotation + offset + 2 * np.pi * k / idt.n_petals
            pts = _petal(cx, cy, a, 0.12 * R, r1, hw, idt.pointed)
            draw.polygon(pts, fill=fill, outline=edge)
            draw.line([(cx + np.cos(a) * 0.3 * R, cy + np.sin(a) * 0.3 * R),
                       (cx + np.cos(a) * 0.75 * r1, cy + np.sin(a) * 0.75 * r1)], fill=vein, width=SS)

    rc = idt.centre_radius * R
    centre = _CENTRE_RGB[idt.centre]
    draw.ellipse((cx - rc, cy - rc, cx + rc, cy + rc), fill=centre, outline=_mix(centre, (0, 0, 0), 0.35), width=SS)
    dot = _mix(centre, (0, 0, 0), 0.3)
    for k in range(7):  # a few darker stamen dots, placed by the identity's rotation
        a = idt.rotation * 3 + 2 * np.pi * k / 7
        dx, dy = np.cos(a) * 0.55 * rc, np.sin(a) * 0.55 * rc
        s = max(1.0, 0.12 * rc)
        draw.ellipse((cx + dx - s, cy + dy - s, cx + dx + s, cy + dy + s), fill=dot)
    return np.asarray(img.reduce(SS), dtype=np.uint8)
