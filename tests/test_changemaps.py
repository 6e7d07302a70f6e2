"""The change maps' masks (faderkit/changemaps.py): what of an edit's change each pixel keeps in the local mode."""

import pytest
import torch

from faderkit.changemaps import (MASK_GROW, MASK_THRESHOLD, PEAK_GROW, PEAK_SHARE, LocalMask, MaskSetting,
                                 attribute_effects, attribute_masks, attribute_spreads, change_maps, edit_mask,
                                 own_mask, valid_maps)
from faderkit.interfaces import Attribute, Split


def test_a_mask_keeps_all_from_the_threshold_up_none_beyond_the_growth_and_a_share_in_between():
    maps = torch.zeros(2, 16, 16)
    maps[0, 8, 8] = 1.0  # one pixel where attribute 0 draws
    maps[1, 2:4, 2:4] = MASK_THRESHOLD / 2  # attribute 1 draws faintly in a corner
    masks = attribute_masks(maps)
    assert masks.shape == (2, 16, 16)
    g = MASK_GROW
    assert (masks[0, 8 - g:9 + g, 8 - g:9 + g] == 1).all()  # grown by MASK_GROW px each way, kept whole
    assert masks[0].sum() == (2 * g + 1) ** 2  # and nowhere else
    assert masks[1, 2, 2] == pytest.approx(0.5) and masks[1, 10:, 10:].abs().sum() == 0  # half of a faint pixel
    assert torch.equal(attribute_masks(maps, threshold=0.5, grow=0)[0], (maps[0] / 0.5).clamp(0, 1))


def test_an_edit_keeps_the_largest_mask_of_the_attributes_it_moves():
    masks = torch.rand(3, 8, 8)
    moved = torch.tensor([[True, False, False], [True, False, True], [False, False, False]])
    m = edit_mask(masks, moved)
    assert m.shape == (3, 1, 8, 8)
    assert torch.equal(m[0, 0], masks[0])
    assert torch.equal(m[1, 0], torch.maximum(masks[0], masks[2]))
    assert m[2].abs().sum() == 0  # nothing moved: nothing changes


def _stroke_and_blotch():
    """(2, 3, 16, 16) changes: a strong stroke (row 8) and a faint blotch in a corner; the second image the first
    at a fifth of the size (a slider at 0.2)."""
    c = torch.zeros(1, 3, 16, 16)
    c[0, :, 8, 3:13] = 0.5
    c[0, 0, 8, 7] = -0.6  # one channel the other way: the size is over channels, sign aside
    c[0, :, 0:3, 0:3] = 0.5 * PEAK_SHARE / 4  # a quarter of the share of the peak
    return torch.cat([c, c / 5])


def test_the_images_own_mask_keeps_the_stroke_drops_the_faint_blotch_and_scales_with_the_change():
    change = _stroke_and_blotch()
    m = own_mask(change)
    assert m.shape == (2, 1, 16, 16)
    g = PEAK_GROW
    assert (m[0, 0, 8 - g:9 + g, 3 - g:13 + g] == 1).all()  # the stroke, grown by PEAK_GROW px, whole
    peak = (0.6 + 0.5 + 0.5) / 3  # the largest change, pixel (8, 7), a mean over channels
    assert m[0, 0, 0, 0] == pytest.approx(0.5 * PEAK_SHARE / 4 / (PEAK_SHARE * peak))  # a share of it, no seam
    assert (m[0, 0, 12:, 12:] == 0).all()  # no change there: nothing kept
    assert torch.allclose(m[1], m[0])  # the same pixels at a fifth of the change
    assert torch.equal(own_mask(change, share=0), torch.ones(2, 1, 16, 16))
    assert torch.equal(own_mask(torch.zeros(1, 3, 4, 4)), torch.zeros(1, 1, 4, 4))


def test_a_local_mask_keeps_the_change_where_the_maps_let_it_then_where_the_image_draws():
    change = _stroke_and_blotch()
    where = torch.ones(2, 1, 16, 16)
    where[:, :, 8, 10:] = 0  # the maps drop the stroke's right end
    kept = LocalMask(where).keep(change)
    assert (kept[:, :, 8, 10:] == 0).all() and torch.equal(kept[:, :, 8, 3:7], change[:, :, 8, 3:7])
    assert kept[:, :, 0:3, 0:3].abs().amax() < change[:, :, 0:3, 0:3].abs().amax() / 2  # the blotch mostly gone
    assert torch.equal(LocalMask(where, MaskSetting(peak_share=0)).keep(change), change * where)  # the maps alone
    assert torch.allclose(LocalMask(where).keep(change)[1], kept[0] / 5)  # a slider's fraction keeps the same share


def test_maps_lose_their_noise_floor_are_mirrored_and_scaled_to_one():
    spreads = torch.full((1, 8, 8), 0.03, dtype=torch.float64)  # every pixel differs a little
    spreads[0, 3, 1] = 0.53  # one pixel differs a lot, left of centre
    m = change_maps(spreads, mirrored=True)
    assert m.dtype == torch.float32 and m[0, 3, 1] == pytest.approx(1) and m[0, 3, 6] == pytest.approx(1)
    assert (m[0].flatten().sort().values[:-2] == 0).all()  # the floor removed
    assert change_maps(spreads, mirrored=False)[0, 3, 6] == 0


def test_stored_maps_must_fit_the_model():
    attrs = (Attribute("Smiling"), Attribute("Male"))
    assert valid_maps(torch.rand(2, 8, 8), attrs, 8)
    assert not valid_maps(torch.rand(3, 8, 8), attrs, 8)
    assert not valid_maps(torch.rand(2, 8, 8) + 1.5, attrs, 8)
    assert not valid_maps(torch.full((2, 8, 8), float("nan")), attrs, 8)
    assert not valid_maps(torch.ones(2, 8, 8, dtype=torch.long), attrs, 8)
    assert not valid_maps([[0.5]], attrs, 8)


class _Drawn(Split):
    """Images that are the sum of what each attribute draws: attribute 0 a square top left, attribute 1 (three
    values) a bar bottom right at 0.5 or 1.0, plus noise; attribute 1 goes with attribute 0 most of the time."""

    def __init__(self, n=800, seed=0):
        g = torch.Generator().manual_seed(seed)
        a = (torch.rand(n, generator=g) < 0.5).long()
        b = torch.where(torch.rand(n, generator=g) < 0.85, a * 2, torch.randint(3, (n,), generator=g))
        self.labels = torch.stack([a, b], 1)
        x = torch.rand(n, 3, 8, 8, generator=g) * 40
        x[:, :, 1:3, 1:3] += 120 * a[:, None, None, None]
        x[:, :, 5:7, 4:7] += 60 * b[:, None, None, None]
        self._x = x.round().to(torch.uint8)
        self.name = "train"

    def images(self, idx):
        return self._x[torch.as_tensor(idx)]


def test_an_attributes_effect_leaves_out_the_pixels_of_the_attributes_it_goes_with():
    split, attrs = _Drawn(), (Attribute("square"), Attribute("bar", ("none", "half", "full")))
    spread, effect = attribute_spreads(split, attrs, 8), attribute_effects(split, attrs, 8)
    # the mean images with and without the square also differ in the bar (it comes with the square)
    assert spread[0, 5:7, 4:7].mean() > 0.25 * spread[0, 1:3, 1:3].mean()
    # the fit gives the bar to the bar: the square's effect there is noise, its own 120 / 255 where it draws
    assert effect[0, 5:7, 4:7].max() < 0.03 and effect[0, 1:3, 1:3].mean() == pytest.approx(120 / 255, abs=0.02)
    assert effect[1, 5:7, 4:7].mean() == pytest.approx(120 / 255, abs=0.02)  # none -> full: 2 x 60
    assert effect[1, 1:3, 1:3].max() < 0.03
    rest = torch.ones(8, 8, dtype=torch.bool)
    rest[1:3, 1:3] = rest[5:7, 4:7] = False
    assert effect[:, rest].max() < 0.03  # where nothing draws


def test_an_attribute_seen_with_one_value_has_no_effect_and_the_others_are_still_fitted():
    split, attrs = _Drawn(), (Attribute("square"), Attribute("bar", ("none", "half", "full")))
    split.labels = split.labels.clone()
    split.labels[:, 0] = 0  # the square's label never varies (its pixels are still drawn): a column of zeros
    effect = attribute_effects(split, attrs, 8)
    assert effect[0].abs().max() == 0 and torch.isfinite(effect).all()
    assert effect[1, 5:7, 4:7].mean() > 0.3
