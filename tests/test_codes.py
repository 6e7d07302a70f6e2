import pytest
import torch

from faderkit import FaderkitError
from faderkit.codes import apply_settings, flipped_labels, labels_to_code, logits_to_labels, parse_value
from faderkit.interfaces import Attribute

ATTRS = (Attribute("Smiling"), Attribute("color", ("red", "yellow", "blue")))


def test_code_is_one_hot_pairs_and_blocks():
    labels = torch.tensor([[0, 2], [1, 0]])
    code = labels_to_code(labels, ATTRS)
    assert code.tolist() == [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]]
    assert logits_to_labels(code, ATTRS).tolist() == labels.tolist()


def test_flip_binary_and_random_other_value_for_categorical():
    labels = torch.tensor([[0, 0], [1, 1], [0, 2]] * 200)
    flipped = flipped_labels(labels, ATTRS, torch.Generator().manual_seed(0))
    assert (flipped[:, 0] == 1 - labels[:, 0]).all()
    assert (flipped[:, 1] != labels[:, 1]).all()
    # uniformly random among the other two values
    share = (flipped[labels[:, 1] == 0, 1] == 1).float().mean().item()
    assert 0.4 < share < 0.6


def test_slider_values_interpolate_and_extrapolate():
    assert parse_value(ATTRS[0], "0.8") == pytest.approx([0.2, 0.8])
    assert parse_value(ATTRS[0], 2) == [-1.0, 2.0]
    assert parse_value(ATTRS[1], "yellow") == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-inf", ""])
def test_bad_slider_values(raw):
    with pytest.raises(FaderkitError):
        parse_value(ATTRS[0], raw)


def test_categorical_value_outside_vocabulary_lists_choices():
    with pytest.raises(FaderkitError, match="red, yellow, blue"):
        parse_value(ATTRS[1], "green")


def test_apply_settings_changes_only_named_blocks():
    code = labels_to_code(torch.tensor([[1, 0]]), ATTRS)
    out = apply_settings(code, ATTRS, {"Smiling": 0.25})
    assert out[0, :2].tolist() == [0.75, 0.25] and out[0, 2:].tolist() == code[0, 2:].tolist()
    with pytest.raises(FaderkitError, match="this model has: Smiling, color"):
        apply_settings(code, ATTRS, {"Smilng": 1})
