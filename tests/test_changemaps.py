"""The change maps' masks (faderkit/changemaps.py): what of an edit's change each pixel keeps in the local mode."""

import pytest
import torch

from faderkit.changemaps import MASK_GROW, MASK_THRESHOLD, attribute_masks, change_maps, edit_mask, valid_maps
from faderkit.interfaces import Attribute


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
