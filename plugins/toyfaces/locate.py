"""Finding toy faces in any picture: their eyes are white ellipses with a dark iris in the middle.

The locator is never told where a face is. It looks for sclera (near-white, colourless pixels),
groups the pieces that flank one dark iris into an eye (the white's centroid is the eye's centre,
because the renderer centres the iris in the eye), and pairs eyes whose size, spacing and the skin
between them fit a toy face. It works at any position, rotation (up to +-60 degrees) and scale at
which a pupil still spans a pixel or so (faces from about half the native size up).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pydantic import Field

from faderkit import Params
from faderkit.interfaces import Face, FaceLocator

#: Native-frame geometry (see render.py): eye centres are 2 * eye_sep apart (35 to 42 px) and
#: 6 px above the head centre; the head is an ellipse of half-axes about 44.5 x 57.5 px.
_EYE_GAP = 38.5
_HEAD = (44.5, 57.5)


class ToyFaceLocatorParams(Params):
    white: int = Field(200, ge=100, le=254, description="the least channel value a sclera (eye-white) pixel has")
    chroma: int = Field(28, ge=1, le=100, description="the most a sclera pixel's channels may differ")
    min_eye_gap: float = Field(12.0, ge=4, description="the least distance between the eyes, in pixels (a toy "
                               "face at native size has about 38)")
    min_score: float = Field(0.3, ge=0, le=1, description="the least score a face needs (how alike in size the "
                             "eyes are, how well spaced, how even the skin between them); true faces score 0.5-0.95")


class ToyFaceLocator(FaceLocator):
    """Toy faces (``faderkit data toyfaces``) in any picture, rotated, scaled and placed anywhere.

    ``white``: the least channel value a sclera pixel has; ``chroma``: the most its channels differ.
    """

    def __init__(self, white: int = 200, chroma: int = 28, min_eye_gap: float = 12.0, min_score: float = 0.3):
        self.white, self.chroma, self.min_eye_gap, self.min_score = white, chroma, float(min_eye_gap), float(min_score)

    def locate(self, photo: np.ndarray) -> list[Face]:
        eyes = self._eyes(photo)
        return [f for f in _pair(eyes, photo) if f.score >= self.min_score and f.eye_distance >= self.min_eye_gap]

    def _eyes(self, photo: np.ndarray) -> np.ndarray:
        """(K, 4): candidate eyes as x, y (centre), white area, and the darkness of their middle."""
        # channel by channel, not photo.min(2): a reduction over a length-3 axis is ~10x slower
        red, green, blue = photo[..., 0], photo[..., 1], photo[..., 2]
        lo = np.minimum(np.minimum(red, green), blue)
        sclera = (lo >= self.white) & ((np.maximum(np.maximum(red, green), blue) - lo) <= self.chroma)
        labels, n = ndimage.label(sclera, structure=np.ones((3, 3), bool))
        if n == 0:
            return np.zeros((0, 4))
        # areas and centroids from the (few) sclera pixels alone, not a pass over the photo per statistic
        where = np.flatnonzero(sclera)
        label_of = labels.ravel()[where]
        area = np.bincount(label_of, minlength=n + 1)[1:].astype(float)
        ys, xs = np.divmod(where, sclera.shape[1])
        xs = np.bincount(label_of, xs, minlength=n + 1)[1:] / area
        ys = np.bincount(label_of, ys, minlength=n + 1)[1:] / area
        keep = (area >= 1) & (area <= 0.02 * sclera.size + 200)
        parts = np.stack([xs, ys, area], 1)[keep]
        if len(parts) == 0:
            return np.zeros((0, 4))
        # an eye is one white piece or two (left and right of the iris): try each piece alone and
        # each close pair, and keep those whose white centroid sits on something dark
        cands = [(x, y, a) for x, y, a in parts]
        if len(parts) > 1:
            p = parts[np.argsort(parts[:, 0], kind="stable")]
            reach = 4 * np.sqrt(p[:, 2]) + 3  # how far from a piece its partner can lie
            ends = np.searchsorted(p[:, 0], p[:, 0] + reach, side="right")
            for i in range(len(p)):
                q = p[i + 1:ends[i]]  # the pieces to the right of piece i, within its reach along x
                if len(q) == 0:
                    continue
                d = np.hypot(q[:, 0] - p[i, 0], q[:, 1] - p[i, 1])
                ratio = p[i, 2] / q[:, 2]
                for j in np.flatnonzero((d <= np.minimum(reach[i], reach[i + 1:ends[i]]))
                                        & (ratio >= 0.25) & (ratio <= 4)):
                    a = p[i, 2] + q[j, 2]
                    cands.append(((p[i, 0] * p[i, 2] + q[j, 0] * q[j, 2]) / a,
                                  (p[i, 1] * p[i, 2] + q[j, 1] * q[j, 2]) / a, a))
        h, w = sclera.shape
        out = []
        for x, y, a in cands:
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < w and 0 <= yi < h) or sclera[yi, xi]:
                continue  # an eye's centre is iris, never white
            r = max(1, int(round(0.35 * np.sqrt(a))))
            core = _luma(photo, slice(max(0, yi - r + 1), yi + r), slice(max(0, xi - r + 1), xi + r)).min()
            if core < 0.6 * self.white:
                x, y = _iris_centre(photo, sclera, x, y, a, core)
                out.append((x, y, a, core))
        return np.asarray(out, float).reshape(-1, 4)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _luma(photo: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The luma of a window of the photo (computed where it is needed: a whole 12 MP photo's costs 0.3 s)."""
    return photo[rows, cols].astype(np.float32) @ _LUMA


def _iris_centre(photo: np.ndarray, sclera: np.ndarray, x: float, y: float, area: float, core: float
                 ) -> tuple[float, float]:
    """The eye's centre refined to the centroid of its dark iris disc, which the renderer centres in the
    eye: unlike the white's centroid it does not move when glasses or a lens tint hide part of the white.
    The white of a native eye covers about 54 px around an iris of radius 3.8."""
    radius = 1.1 * 3.8 * np.sqrt(area / 54.0)
    h, w = sclera.shape
    for _ in range(2):
        x0, x1 = max(0, int(np.floor(x - radius))), min(w, int(np.ceil(x + radius)) + 1)
        y0, y1 = max(0, int(np.floor(y - radius))), min(h, int(np.ceil(y + radius)) + 1)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        near = np.hypot(xs - x, ys - y) <= radius
        dark = np.clip((235.0 - _luma(photo, slice(y0, y1), slice(x0, x1))) / max(235.0 - core, 1.0), 0, 1)
        weight = dark * near * ~sclera[y0:y1, x0:x1]
        total = weight.sum()
        if total < 1:
            break
        x, y = float((weight * xs).sum() / total), float((weight * ys).sum() / total)
    return x, y


def _pair(eyes: np.ndarray, photo: np.ndarray) -> list[Face]:
    """Faces from pairs of eyes of like size, spaced like a toy face's, with skin (not white, not
    dark) between them; each eye used once, best pairs first."""
    h, w = photo.shape[:2]
    found: list[tuple[float, int, int]] = []
    for i in range(len(eyes)):
        for j in range(i + 1, len(eyes)):
            (x1, y1, a1, _), (x2, y2, a2, _) = eyes[i], eyes[j]
            if not 0.5 <= a1 / a2 <= 2:
                continue
            d = np.hypot(x2 - x1, y2 - y1)
            size = np.sqrt((a1 + a2) / 2)
            ratio = d / size
            if not 5 <= ratio <= 12 or d < 6:
                continue
            if abs(y2 - y1) > 0.87 * d:  # more than 60 degrees from level
                continue
            (lx, ly), (rx, ry) = sorted([(x1, y1), (x2, y2)])
            spread = _skin_spread(photo, (lx, ly), (rx, ry))
            if spread > 40:
                continue
            score = 1.0 / (1.0 + abs(np.log(a1 / a2))) / (1.0 + abs(ratio - 7.5) / 7.5) / (1.0 + spread / 20)
            found.append((score, i, j))
    faces, used = [], set()
    for score, i, j in sorted(found, reverse=True):
        if i in used or j in used:
            continue
        used |= {i, j}
        (x1, y1), (x2, y2) = sorted([tuple(eyes[i, :2]), tuple(eyes[j, :2])])
        faces.append(Face({"left_eye": (float(x1), float(y1)), "right_eye": (float(x2), float(y2))}, float(score),
                          tuple(float(v) for v in _head_box((x1, y1), (x2, y2)))))
    return faces


#: Native offsets from the eyes' midpoint (x along the eyes, y down the face, in units of the eye
#: gap) where a toy face always shows bare skin: between the eyes, under each eye, beside the nose.
_SKIN_AT = np.array([(0.0, -0.05), (0.0, 0.05), (-0.5, 0.3), (0.5, 0.3), (-0.2, 0.3), (0.2, 0.3)])


def _skin_spread(photo: np.ndarray, left, right) -> float:
    """How far apart (RGB, the largest channel's standard deviation) the points where a face with
    these eyes would show bare skin are; small for a toy face, large for most chance pairs."""
    (x1, y1), (x2, y2) = left, right
    ex = np.array([x2 - x1, y2 - y1])
    ey = np.array([-ex[1], ex[0]])
    mid = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    pts = mid + _SKIN_AT[:, :1] * ex + _SKIN_AT[:, 1:] * ey
    xs = np.clip(np.round(pts[:, 0]).astype(int), 0, photo.shape[1] - 1)
    ys = np.clip(np.round(pts[:, 1]).astype(int), 0, photo.shape[0] - 1)
    px = photo[ys, xs].astype(float)
    lo = px.min(1)
    if (lo >= 200).any() and ((px.max(1) - lo) <= 28).any():
        return 1e9  # sclera-white where skin belongs
    return float(px.std(0).max())


def _head_box(left, right) -> tuple[float, float, float, float]:
    """The head's box, from the eyes: the head centre lies 6 native px below their midpoint."""
    (x1, y1), (x2, y2) = left, right
    s = np.hypot(x2 - x1, y2 - y1) / _EYE_GAP
    ux, uy = (x2 - x1) / (s * _EYE_GAP), (y2 - y1) / (s * _EYE_GAP)
    cx, cy = (x1 + x2) / 2 - uy * 6 * s, (y1 + y2) / 2 + ux * 6 * s
    hw = s * (abs(ux) * _HEAD[0] + abs(uy) * _HEAD[1])
    hh = s * (abs(uy) * _HEAD[0] + abs(ux) * _HEAD[1])
    return (cx - hw, cy - hh, cx + hw, cy + hh)
