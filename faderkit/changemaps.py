"""Where each attribute changes a dataset's images: per-attribute change maps from the train split's labels, and
the masks that keep an edit's change there (the ``local`` output mode).

The maps come from any dataset's labels and images (the core knows nothing of faces). Two measures, per attribute
and pixel: :func:`attribute_spreads`, the largest difference between the mean train images of two of its values
(the loss terms weigh pixels by it), and :func:`attribute_effects`, the same with the other attributes held fixed
by a least-squares fit, so that an attribute's map does not take in the pixels of the attributes it goes with. The
trainer stores the effects' maps in every checkpoint, so that an edit knows, without the data, where each attribute
draws.

An edit of a trained model changes more than the attribute: the decoder's change D(z, y') - D(z, y) spreads faint
blotches over background and cheeks (eval's ``outside`` figure). :func:`edit_mask` keeps the change where the
moved attributes change the training images: each map grown by :data:`MASK_GROW` pixels and divided by
:data:`MASK_THRESHOLD` (clipped to 1), so a pixel at a fifth of the map's peak or more keeps all its change and a
pixel where the attribute never draws keeps none. The threshold and the growth were chosen on the validation
split of the toy faces (docs/quality.md, thirteenth round): the largest threshold that left every slider's
progress where the unmasked residual had it.

A map holds every image's place of the attribute, so it is as wide as those places vary (a fringe reaches lower on a
long face than on a short one), and each image kept the change over the part its own stroke does not reach. The
mask of an edit (:class:`LocalMask`) therefore also looks at the image's own change: within the maps' mask, a pixel
keeps its change from :data:`PEAK_SHARE` of the image's largest change up, grown by :data:`PEAK_GROW` px, and a
share below (:func:`own_mask`). It scales with the change, so a slider at 0.5 keeps the same pixels as at 1.
Chosen the same way (docs/quality.md, fourteenth round).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .interfaces import Attribute, Split

#: Train images read for the maps (the first of the split).
MAP_IMAGES = 4000
#: A pixel whose map is at least this share of its peak keeps the edit's whole change.
MASK_THRESHOLD = 0.2
#: The maps are grown by this many pixels first: a face drawn a little off the mean keeps its change.
MASK_GROW = 2
#: Within the maps' mask, a pixel keeps all of its change from this share of the image's own largest change up.
PEAK_SHARE = 0.1
#: That per-image mask is grown by this many pixels (the edge of a stroke, fainter than its middle, stays).
PEAK_GROW = 1
#: Images are read in chunks of at most this many values (float64: 256 MB).
CHUNK_VALUES = 2**25


def _chunks(split: Split, n: int, image_size: int):
    """(indices, images float64 in [0, 1]) of the first ``n`` images of ``split``, in chunks of at most
    :data:`CHUNK_VALUES` values (500 images at 64 px, 170 at 256 px)."""
    chunk = min(500, max(1, CHUNK_VALUES // (3 * image_size * image_size)))
    for start in range(0, n, chunk):
        idx = np.arange(start, min(n, start + chunk))
        yield idx, split.images(idx).double() / 255


def _widest(values: torch.Tensor) -> torch.Tensor:
    """(S, S): per pixel, the largest difference between two of ``values`` (V, 3, S, S), averaged over channels."""
    return (values[:, None] - values[None]).abs().amax((0, 1)).mean(0)


def attribute_spreads(split: Split, attributes: Sequence[Attribute], image_size: int,
                      images: int = MAP_IMAGES) -> torch.Tensor:
    """(A, S, S) float64: per attribute and pixel, the largest difference between the mean images of two of its
    values over the first ``images`` of ``split``, averaged over the channels (0 for an attribute with fewer than
    two values seen)."""
    n = min(images, len(split))
    labels = split.labels[:n]
    sums = [torch.zeros(a.size, 3, image_size, image_size, dtype=torch.float64) for a in attributes]
    for idx, x in _chunks(split, n, image_size):
        for i in range(len(attributes)):
            sums[i].index_add_(0, labels[idx, i], x)
    spreads = torch.zeros(len(attributes), image_size, image_size, dtype=torch.float64)
    for i, a in enumerate(attributes):
        counts = torch.bincount(labels[:, i], minlength=a.size).double()
        seen = counts > 0
        if seen.sum() < 2:
            continue
        spreads[i] = _widest(sums[i][seen] / counts[seen, None, None, None])
    return spreads


def attribute_effects(split: Split, attributes: Sequence[Attribute], image_size: int,
                      images: int = MAP_IMAGES) -> torch.Tensor:
    """(A, S, S) float64: per attribute and pixel, its effect with the other attributes held fixed: each pixel of
    the first ``images`` of ``split`` fitted by least squares on every attribute's value (one column per value but
    the first, and a constant), and the largest difference between two of the attribute's values' coefficients,
    averaged over the channels. Unlike :func:`attribute_spreads` a correlated attribute's pixels do not leak in
    (where bangs go with long hair, the mean images with and without bangs also differ in the hair; the fit gives
    the hair to the attribute that draws it). 0 for an attribute with fewer than two values seen."""
    n = min(images, len(split))
    labels = split.labels[:n]
    columns, spans = [torch.ones(n, dtype=torch.float64)], []
    for i, a in enumerate(attributes):
        first = len(columns)
        columns += [(labels[:, i] == v).double() for v in range(1, a.size)]
        spans.append((first, len(columns)))
    design = torch.stack(columns, 1)  # (n, P)
    xty = torch.zeros(design.shape[1], 3 * image_size * image_size, dtype=torch.float64)
    for idx, x in _chunks(split, n, image_size):
        xty += design[idx].T @ x.flatten(1)
    # the pseudo-inverse: a value never seen, or two attributes always equal, leave the fit rank-deficient
    coef = (torch.linalg.pinv(design.T @ design) @ xty).view(-1, 3, image_size, image_size)
    effects = torch.zeros(len(attributes), image_size, image_size, dtype=torch.float64)
    for i, (a, (first, last)) in enumerate(zip(attributes, spans)):
        if (torch.bincount(labels[:, i], minlength=a.size) > 0).sum() < 2:
            continue
        effects[i] = _widest(torch.cat([torch.zeros(1, 3, image_size, image_size, dtype=torch.float64),
                                        coef[first:last]]))
    return effects


def stored_maps(split: Split, attributes: Sequence[Attribute], image_size: int, mirrored: bool) -> torch.Tensor:
    """The maps training stores in every checkpoint: :func:`change_maps` of :func:`attribute_effects`."""
    return change_maps(attribute_effects(split, attributes, image_size), mirrored)


def change_maps(spreads: torch.Tensor, mirrored: bool) -> torch.Tensor:
    """(A, S, S) float32 in [0, 1]: ``spreads`` mirrored when training flips images, less each map's median (the
    noise floor: two means of a few thousand images differ a little everywhere, and most pixels are not where an
    attribute draws), each map scaled to a maximum of 1 (a thin attribute's mouth counts as much as a large one's
    hair)."""
    if mirrored:
        spreads = (spreads + spreads.flip(-1)) / 2
    spreads = (spreads - spreads.flatten(1).median(1).values[:, None, None]).clamp_min(0)
    return (spreads / spreads.amax((1, 2), keepdim=True).clamp_min(1e-12)).float()


def attribute_masks(maps: torch.Tensor, threshold: float = MASK_THRESHOLD, grow: int = MASK_GROW) -> torch.Tensor:
    """(A, S, S) in [0, 1]: per attribute, how much of an edit's change each pixel keeps (see the module's text)."""
    if grow:
        maps = F.max_pool2d(maps[:, None], 2 * grow + 1, 1, grow)[:, 0]
    return (maps / threshold).clamp(0, 1)


@dataclass(frozen=True)
class MaskSetting:
    """How the local mode masks an edit: the maps' ``threshold`` and ``grow`` (:func:`attribute_masks`), the image's
    own ``peak_share`` and ``peak_grow`` (:func:`own_mask`; share 0: the maps alone)."""

    threshold: float = MASK_THRESHOLD
    grow: int = MASK_GROW
    peak_share: float = PEAK_SHARE
    peak_grow: int = PEAK_GROW


@dataclass(frozen=True)
class LocalMask:
    """The local mode's mask of a batch of edits: ``where`` (B, 1, S, S), what of the change each pixel may keep
    by the maps of the attributes moved (:func:`edit_mask`), then what the image's own change keeps by ``setting``'s
    peak share and growth."""

    where: torch.Tensor
    setting: MaskSetting = MaskSetting()

    def keep(self, change: torch.Tensor) -> torch.Tensor:
        """What of ``change`` (B, C, S, S) the edit adds."""
        change = change * self.where
        return change * own_mask(change, self.setting.peak_share, self.setting.peak_grow)


def own_mask(change: torch.Tensor, share: float = PEAK_SHARE, grow: int = PEAK_GROW) -> torch.Tensor:
    """(B, 1, S, S) in [0, 1]: per image, each pixel's change (mean over channels) over ``share`` of the image's
    largest, clipped to 1 and grown by ``grow`` px: the stroke is kept whole, the faint change around it dropped, a
    pixel in between keeps a share (no seam). The same for ``change`` times any positive number; an image without
    change keeps nothing (there is nothing to keep). ``share`` 0: all ones."""
    size = change.abs().mean(1, keepdim=True)
    if share <= 0:
        return torch.ones_like(size)
    peak = size.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None]
    mask = (size / (share * peak)).clamp(0, 1)
    return F.max_pool2d(mask, 2 * grow + 1, 1, grow) if grow else mask


def edit_mask(masks: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S): for each image, the largest of the masks (A, S, S) of the attributes ``moved`` (B, A) bool
    marks; 0 everywhere for an image whose attributes all stay."""
    return (moved[:, :, None, None].to(masks.dtype) * masks[None]).amax(1, keepdim=True)


def valid_maps(maps: object, attributes: Sequence[Attribute], image_size: int) -> bool:
    """Whether a checkpoint's stored maps fit its model: (A, S, S), finite, in [0, 1]."""
    return (isinstance(maps, torch.Tensor) and maps.shape == (len(attributes), image_size, image_size)
            and maps.is_floating_point() and bool(torch.isfinite(maps).all())
            and bool(((maps >= 0) & (maps <= 1)).all()))
