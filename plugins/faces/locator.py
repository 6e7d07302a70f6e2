"""MTCNN's three-stage cascade: proposals from an image pyramid, refinement, then landmarks.

Large photos are searched at ``max_side`` pixels (a 12-megapixel photo costs what a 1-megapixel one
does); landmarks are scaled back to the photo's own pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import nms, roi_align

from pydantic import Field, field_validator

from faderkit import Params
from faderkit.interfaces import LANDMARKS, Face, FaceLocator

from .networks import load_networks


class MTCNNParams(Params):
    min_face: float = Field(20.0, ge=12, le=10_000, description="smallest face searched for, in pixels of the "
                            "image searched (the photo shrunk to max_side); smaller is slower")
    max_side: int = Field(1024, ge=64, le=16384, description="the photo is searched at this many pixels on its "
                          "longer side at most (landmarks are mapped back to its own pixels)")
    thresholds: list[float] = Field([0.6, 0.7, 0.9], min_length=3, max_length=3, description="face probability "
                                    "each of the three stages (proposal, refinement, output) needs, each in [0, 1)")
    scale_step: float = Field(0.709, ge=0.3, le=0.9, description="ratio between the image pyramid's levels")

    @field_validator("thresholds")
    @classmethod
    def _probabilities(cls, v):
        if not all(0 <= t < 1 for t in v):
            raise ValueError(f"each threshold must be in [0, 1), got {v}")
        return v


class MTCNNLocator(FaceLocator):
    """Faces in photographs, with five landmarks each (eyes, nose tip, mouth corners).

    ``min_face``: the smallest face searched for, in pixels of the image searched (``max_side``
    pixels on its longer side at most); ``thresholds``: the three stages' face probabilities.
    """

    def __init__(self, min_face: float = 20.0, max_side: int = 1024, thresholds=(0.6, 0.7, 0.9),
                 scale_step: float = 0.709):
        self.min_face, self.max_side = float(min_face), int(max_side)
        self.thresholds, self.scale_step = tuple(float(t) for t in thresholds), float(scale_step)
        self.pnet, self.rnet, self.onet = load_networks()

    @torch.inference_mode()
    def locate(self, photo: np.ndarray) -> list[Face]:
        h, w = photo.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        img = Image.fromarray(photo)
        if factor < 1:
            img = img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR, reducing_gap=2.0)
        x = (torch.from_numpy(np.asarray(img, np.float32)).permute(2, 0, 1)[None] - 127.5) / 128
        boxes = self._propose(x)
        boxes = self._refine(x, boxes, self.rnet, 24, self.thresholds[1])
        boxes, marks = self._refine(x, boxes, self.onet, 48, self.thresholds[2], landmarks=True)
        faces = []
        for b, m in zip(boxes.tolist(), marks.tolist()):
            pts = {name: ((m[i] + 0.5) / factor - 0.5, (m[5 + i] + 0.5) / factor - 0.5) for i, name in enumerate(LANDMARKS)}
            box = tuple((v + 0.5) / factor - 0.5 for v in b[:4])
            faces.append(Face(pts, float(b[4]), box))  # type: ignore[arg-type]
        return faces

    def _propose(self, x: torch.Tensor) -> torch.Tensor:
        """PNet over the pyramid: square candidate boxes (K, 5) as x1, y1, x2, y2, score."""
        h, w = x.shape[-2:]
        scale, found = 12.0 / self.min_face, []
        while min(h, w) * scale >= 12:
            size = (max(12, int(np.ceil(h * scale))), max(12, int(np.ceil(w * scale))))
            prob, reg = self.pnet(F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False))
            ys, xs = torch.nonzero(prob[0] > self.thresholds[0], as_tuple=True)
            if len(ys):
                score = prob[0, ys, xs]
                sx, sy = size[1] / w, size[0] / h
                cells = torch.stack([xs * 2 / sx, ys * 2 / sy, (xs * 2 + 12) / sx, (ys * 2 + 12) / sy], 1).float()
                offsets = reg[0, :, ys, xs].T
                keep = nms(cells, score, 0.5)
                found.append(torch.cat([cells[keep], score[keep, None], offsets[keep]], 1))
            scale *= self.scale_step
        if not found:
            return torch.zeros(0, 5)
        cand = torch.cat(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return _square(torch.cat([_regress(cand[:, :4], cand[:, 5:9]), cand[:, 4:5]], 1))

    def _refine(self, x, boxes, net, size: int, threshold: float, landmarks: bool = False):
        """Score the boxes' patches with ``net``, keep the likely ones, move them by its offsets."""
        if len(boxes) == 0:
            return (boxes, torch.zeros(0, 10)) if landmarks else boxes
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes[:, :4]], 1)
        patches = roi_align(x, rois, output_size=size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
        out = net(patches)
        prob, reg = out[0], out[1]
        keep = prob > threshold
        boxes, prob, reg = boxes[keep], prob[keep], reg[keep]
        if landmarks:
            wh = (boxes[:, 2:4] - boxes[:, 0:2])
            marks = out[2][keep]
            marks = torch.cat([boxes[:, 0:1] + marks[:, :5] * wh[:, 0:1], boxes[:, 1:2] + marks[:, 5:] * wh[:, 1:2]], 1)
            boxes = torch.cat([_regress(boxes[:, :4], reg), prob[:, None]], 1)
            keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
            keep = keep[_not_inside(boxes[keep])]
            return boxes[keep], marks[keep]
        boxes = torch.cat([_regress(boxes[:, :4], reg), prob[:, None]], 1)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        return _square(boxes)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    wh = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)
    return boxes + offsets * wh


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes grown to squares about their centres (side: the longer side)."""
    c = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, 0:2]).max(1, keepdim=True).values / 2
    return torch.cat([c - half, c + half, boxes[:, 4:]], 1)


def _not_inside(boxes: torch.Tensor) -> torch.Tensor:
    """Indices (into ``boxes``, sorted by score) of boxes not mostly inside a better one (MTCNN's 'min' NMS)."""
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    for i in range(len(boxes)):
        inside = False
        for j in keep:
            iw = (torch.minimum(boxes[i, 2], boxes[j, 2]) - torch.maximum(boxes[i, 0], boxes[j, 0])).clamp(min=0)
            ih = (torch.minimum(boxes[i, 3], boxes[j, 3]) - torch.maximum(boxes[i, 1], boxes[j, 1])).clamp(min=0)
            if iw * ih > 0.7 * torch.minimum(area[i], area[j]):
                inside = True
                break
        if not inside:
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)
