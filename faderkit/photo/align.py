"""Where a model's square input comes from in a photo: a similarity transform.

A :class:`Placement` maps the model's S x S pixels to the photo's pixels (pixel centres at whole
numbers). The training data's axis-aligned crop is one (scale and shift); aligning a face is
another, fitted so that the face's landmarks land where the dataset's template puts them
(Umeyama's least squares: rotation, one scale, translation; no shear, no reflection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import FaderkitError
from ..imageio import to_tensor


@dataclass(frozen=True)
class Placement:
    """``matrix`` (3x3): model pixel (u, v, 1) -> photo pixel (x, y, 1); ``size``: the model's S."""

    matrix: np.ndarray
    size: int

    @property
    def scale(self) -> float:
        """Photo pixels per model pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def axis_aligned(self) -> bool:
        m = self.matrix
        return abs(m[0, 1]) < 1e-9 and abs(m[1, 0]) < 1e-9 and m[0, 0] > 0 and m[1, 1] > 0

    def corners(self) -> np.ndarray:
        """(4, 2): the photo positions of the square's outer corners (clockwise from top left)."""
        s = self.size - 0.5
        return self.to_photo(np.array([[-0.5, -0.5], [s, -0.5], [s, s], [-0.5, s]]))

    def to_photo(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, float)
        return uv @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def to_model(self, xy: np.ndarray) -> np.ndarray:
        inv = np.linalg.inv(self.matrix)
        return np.asarray(xy, float) @ inv[:2, :2].T + inv[:2, 2]

    def bounds(self, width: int, height: int, margin: int = 2) -> tuple[int, int, int, int]:
        """The photo's pixel box (left, top, right, bottom) the square covers, clipped to the photo."""
        c = self.corners()
        left, top = np.floor(c.min(0)).astype(int) - margin
        right, bottom = np.ceil(c.max(0)).astype(int) + margin + 1
        return max(0, left), max(0, top), min(width, right), min(height, bottom)


def box_placement(box: Sequence[int], size: int) -> Placement:
    """The axis-aligned crop ``box`` (left, top, right, bottom) resized to size x size."""
    left, top, right, bottom = (float(v) for v in box)
    sx, sy = (right - left) / size, (bottom - top) / size
    # a resize maps pixel centres: x = left + (u + 0.5) * sx - 0.5
    return Placement(np.array([[sx, 0, left + 0.5 * sx - 0.5], [0, sy, top + 0.5 * sy - 0.5], [0, 0, 1.0]]), size)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 similarity T minimising sum |T(src) - dst|^2 (Umeyama 1991); src, dst: (N, 2), N >= 2."""
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a ** 2).sum() / len(src)
    if var < 1e-12:
        raise FaderkitError("the face's landmarks all fall on one point; it cannot be aligned (try --no-align)")
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    flip = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[1, 1] = -1
    rot = u @ flip @ vt
    scale = np.trace(np.diag(d) @ flip) / var
    t = mu_d - scale * rot @ mu_s
    m = np.eye(3)
    m[:2, :2], m[:2, 2] = scale * rot, t
    return m


def native_crop(native_size: Sequence[int], crop_box: Sequence[int] | None) -> tuple[int, int, int, int]:
    """The dataset's crop in its native frame (its central square when it declares none)."""
    if crop_box:
        return tuple(int(v) for v in crop_box)  # type: ignore[return-value]
    w, h = (int(v) for v in native_size)
    side = min(w, h)
    return (w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side


def face_placement(landmarks: Mapping[str, Sequence[float]], template: Mapping[str, Sequence[float]],
                   native_size: Sequence[int], crop_box: Sequence[int] | None, size: int) -> Placement:
    """Where the model's square lies in a photo whose face has ``landmarks``, for a dataset whose faces
    put them at ``template`` (native frame, before ``crop_box``)."""
    names = [n for n in template if n in landmarks]
    if len(names) < 2:
        raise FaderkitError(f"the face locator gives {', '.join(sorted(landmarks)) or 'no landmarks'}, the model's "
                            f"template needs {', '.join(template)}; at least two must match (try --no-align)")
    to_native = fit_similarity(np.array([landmarks[n] for n in names]), np.array([template[n] for n in names]))
    crop = box_placement(native_crop(native_size, crop_box), size).matrix
    return Placement(np.linalg.inv(to_native) @ crop, size)


def warp_in(photo: np.ndarray, placement: Placement) -> np.ndarray:
    """uint8 (H, W, 3) photo -> uint8 (S, S, 3): what the model sees through ``placement``.

    Where the face is larger than the model's square, the region it covers is first resized
    (Lanczos, like the training data's own resize) to the model's scale, so the face is averaged
    rather than aliased; then it is turned into place bicubically, mirrored at the photo's edges
    where the square reaches past them.
    """
    h, w = photo.shape[:2]
    left, top, right, bottom = placement.bounds(w, h, margin=4)
    if right <= left or bottom <= top:
        raise FaderkitError("the face lies outside the photo; it cannot be aligned (try --no-align)")
    region = Image.fromarray(np.ascontiguousarray(photo[top:bottom, left:right]))
    fx = fy = 1.0
    if placement.scale > 1.25:
        size = (max(1, round(region.width / placement.scale)), max(1, round(region.height / placement.scale)))
        fx, fy = region.width / size[0], region.height / size[1]
        region = region.resize(size, Image.LANCZOS, reducing_gap=3.0)
    # model pixel -> resized region pixel: photo position, less the region's origin, through the resize
    pre = np.array([[1 / fx, 0, (0.5 / fx - 0.5) - left / fx],
                    [0, 1 / fy, (0.5 / fy - 0.5) - top / fy], [0, 0, 1.0]])
    m = pre @ placement.matrix
    arr = torch.from_numpy(np.asarray(region, np.float32)).permute(2, 0, 1)[None]
    out = sample(arr, m, placement.size, placement.size, "bicubic", "reflection")
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def warp_faces(photo: np.ndarray, placements: Sequence[Placement]) -> torch.Tensor:
    """uint8 (H, W, 3) photo -> uint8 (B, 3, S, S): :func:`warp_in` through each of ``placements``."""
    return to_tensor([warp_in(photo, p) for p in placements])


def sample(src: torch.Tensor, matrix: np.ndarray, height: int, width: int, mode: str, padding: str) -> torch.Tensor:
    """Sample ``src`` (B, C, h, w) at matrix @ (u, v, 1) for each output pixel (u, v) of a height x width grid."""
    # grid_sample (align_corners=False) puts pixel i's centre at (2 i + 1) / n - 1: the pixel matrix
    # becomes the normalised one affine_grid takes (one fused op, not a grid built tensor by tensor)
    theta = _normalise(*src.shape[-2:]) @ np.asarray(matrix, np.float64) @ np.linalg.inv(_normalise(height, width))
    batch = src.shape[0]
    grid = F.affine_grid(torch.tensor(theta[:2], dtype=src.dtype)[None].expand(batch, 2, 3),
                         [batch, src.shape[1], height, width], align_corners=False)
    return F.grid_sample(src, grid, mode=mode, padding_mode=padding, align_corners=False)


def _normalise(height: int, width: int) -> np.ndarray:
    """Pixel position -> grid_sample's normalised position, for an image of this size."""
    return np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1.0]])
