import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import faderkit
from faderkit import FaderkitError
from faderkit.cli import cli
from faderkit.modes import quiet
from faderkit.photo.compose import paste_change


@pytest.fixture
def face(toy_root):
    return toy_root / "img_align_celeba" / "000055.jpg"  # a test-split face


def run_edit(*args):
    return CliRunner().invoke(cli, ["edit", *map(str, args)])


def test_python_api_edits_with_keyword_sliders(trained_run, face):
    model = faderkit.load(trained_run / "best.safetensors")
    assert [a.name for a in model.attributes] == ["Smiling", "Eyeglasses"]
    tensors = [*model.model.state_dict().values(), *model.classifier.state_dict().values()]
    assert not any(t.is_meta for t in tensors)  # every weight and buffer came from the file
    out0, out1 = model.edit(face, Smiling=0), model.edit(face, Smiling=1)
    assert out0.size == (178, 218) and out0.mode == "RGB"  # local (default): the input's own size
    assert np.abs(np.asarray(out0, float) - np.asarray(out1, float)).mean() > 0  # the slider does something
    dec = model.edit(face, mode="decoded", Smiling=1)
    assert dec.size == (32, 32) and dec.mode == "RGB"  # the decoder's own image


def test_sliders_as_a_mapping_reach_an_attribute_named_like_a_keyword(trained_run, face):
    from dataclasses import replace

    model = faderkit.load(trained_run / "best.safetensors")
    expected = np.asarray(model.edit(face, {"Smiling": 1}, align=False))
    assert np.array_equal(np.asarray(model.edit(face, align=False, Smiling=1)), expected)  # the keyword form
    # an attribute called "face" (a keyword of edit) is still a slider when given in the mapping
    model.attributes = model.model.attributes = (replace(model.attributes[0], name="face"), *model.attributes[1:])
    assert np.array_equal(np.asarray(model.edit(face, {"face": 1}, align=False)), expected)
    with pytest.raises(FaderkitError, match="Eyeglasses given twice"):
        model.edit(face, {"Eyeglasses": 1}, Eyeglasses=0)


def test_residual_mode_adds_only_the_models_change_at_the_inputs_resolution(trained_run, face):
    model = faderkit.load(trained_run / "best.safetensors")
    photo = np.asarray(Image.open(face).convert("RGB"))
    assert np.array_equal(np.asarray(model.edit(face)), photo)  # nothing set: D(z, y) - D(z, y) = 0, input kept
    out = np.asarray(model.edit(face, mode="residual", Smiling=1, Eyeglasses=1)).astype(int)
    left, top, right, bottom = model.crop_box(Image.open(face))
    assert (left, top, right, bottom) == (0, 20, 178, 198)  # the CelebA crop of a native-size image
    outside = np.ones(photo.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(out[outside], photo[outside])  # rows the model never saw are untouched
    x = model.prepare(face)
    change = model.change(x, {"Smiling": 1, "Eyeglasses": 1})[0]
    up = torch.nn.functional.interpolate(change[None], size=(bottom - top, right - left), mode="bilinear",
                                         align_corners=False)[0].permute(1, 2, 0).numpy() * 127.5
    expect = np.clip(np.rint(photo[top:bottom, left:right] + up), 0, 255)
    assert np.abs(out[top:bottom, left:right] - expect).max() <= 1  # the input plus the upsampled change
    assert np.abs(out[top:bottom, left:right] - photo[top:bottom, left:right]).max() > 0


def test_residual_at_model_size_is_input_plus_change(trained_run, face):
    model = faderkit.load(trained_run / "best.safetensors")
    x = model.prepare(face)
    res = model.edit_tensor(x, {"Smiling": 0}, mode="residual").float()
    change = model.change(x, {"Smiling": 0})
    expect = ((x.float() / 127.5 - 1 + change).clamp(-1, 1) + 1) * 127.5
    assert (res - expect.round()).abs().max() <= 1
    with pytest.raises(FaderkitError, match="unknown output mode 'blend'; choose one of: local, residual, clean, decoded"):
        model.edit_tensor(x, {"Smiling": 0}, mode="blend")


def test_the_local_mode_keeps_the_change_where_the_moved_attributes_change_the_training_images(trained_run, face,
                                                                                             toy_root, tmp_path):
    from faderkit import checkpoint as ckpt
    from faderkit.changemaps import attribute_effects, attribute_masks, change_maps, own_mask
    from faderkit.data import open_dataset
    from faderkit.evaluate import get_split
    from faderkit.recipe import validate

    model = faderkit.load(trained_run / "best.safetensors")
    maps = model.model.change_maps  # stored by training: the train split's maps, each attribute's own effect
    dataset = open_dataset(validate(model.meta["recipe"], "stored", stored=True))
    split = get_split(dataset, "train")
    assert torch.equal(maps, change_maps(attribute_effects(split, dataset.attributes, 32), mirrored=True))
    masks = attribute_masks(maps)
    x = model.prepare(face)
    unit_x = x.float() / 127.5 - 1
    for settings, mask in (({"Smiling": 1.5}, masks[0]), ({"Smiling": 1.5, "Eyeglasses": -0.5}, masks.amax(0))):
        change = model.change(x, settings)  # all of it
        local = model.edit_tensor(x, settings).float()  # the default mode
        mask = mask * own_mask(change * mask)[0, 0]  # then where the image's own change is
        expect = ((unit_x + change * mask).clamp(-1, 1) + 1) * 127.5
        assert (local - expect.round()).abs().max() <= 1
        res = model.edit_tensor(x, settings, mode="residual").float()
        off, full = (mask == 0).expand_as(local), (mask == 1).expand_as(local)
        assert off.any() and full.any()
        assert torch.equal(local[off], x.float()[off])  # where the moved attributes never draw: the input
        assert torch.equal(local[full], res[full])  # where they draw: the residual edit
        assert (local != res).any()
    # a checkpoint trained before the maps were stored edits as residual; a damaged map is one line
    tensors, meta = ckpt.load(trained_run / "best.safetensors")
    del tensors["change_maps"]
    ckpt.save(tmp_path / "old.safetensors", tensors, meta)
    old = faderkit.load(tmp_path / "old.safetensors")
    assert old.model.change_maps is None
    assert torch.equal(old.edit_tensor(x, {"Smiling": 1.5}), old.edit_tensor(x, {"Smiling": 1.5}, mode="residual"))
    ckpt.save(tmp_path / "bad.safetensors", {**tensors, "change_maps": torch.full((2, 16, 16), 0.5)}, meta)
    with pytest.raises(FaderkitError, match=r"change_maps tensor is not one map in \[0, 1\] per attribute at 32 px"):
        faderkit.load(tmp_path / "bad.safetensors")


def test_the_clean_mode_drops_each_pixels_faint_change_and_shrinks_the_rest_by_as_much(trained_run, face):
    model = faderkit.load(trained_run / "best.safetensors")
    x = model.prepare(face)
    change = model.change(x, {"Smiling": 1, "Eyeglasses": 0})
    size = change.abs().mean(1, keepdim=True) * 127.5  # a pixel's change, mean over channels, in 0..255 units
    faint, strong = size < 4, size > 8
    assert faint.any() and strong.any()  # the trained model changes some pixels faintly and some strongly
    res = model.edit_tensor(x, {"Smiling": 1, "Eyeglasses": 0}, mode="residual").float()
    clean = model.edit_tensor(x, {"Smiling": 1, "Eyeglasses": 0}, mode="clean").float()
    keep = faint.expand_as(x) & (x > 8) & (x < 247)  # away from the clamp at 0 and 255
    assert (clean - x.float())[keep].abs().max() == 0  # a faint change: the input's pixel
    assert (res - x.float())[keep].abs().max() > 0  # which the residual mode changes
    expect = ((x.float() / 127.5 - 1 + change * (1 - 4 / size)).clamp(-1, 1) + 1) * 127.5
    assert (clean - expect.round())[strong.expand_as(x)].abs().max() <= 1  # a strong one: 4/255 less
    photo = np.asarray(model.edit(face, {"Smiling": 1, "Eyeglasses": 0}, mode="clean"))
    whole = np.asarray(Image.open(face).convert("RGB"))
    box = model.crop_box(Image.open(face))
    assert np.array_equal(photo, paste_change(whole, quiet(change, 4 / 255)[0], box))  # the whole photo, the same
    assert not np.array_equal(photo, np.asarray(model.edit(face, {"Smiling": 1, "Eyeglasses": 0})))  # change


def test_unset_attributes_keep_the_classifiers_inferred_values(trained_run, face, monkeypatch):
    model = faderkit.load(trained_run / "best.safetensors")
    x = model.prepare(face)
    inferred = model.infer(faderkit.imageio.to_unit(x))
    seen = []
    real = model.model.decoder.forward

    def spy(feats, code):
        seen.append(code)
        return real(feats, code)

    monkeypatch.setattr(model.model.decoder, "forward", spy)
    model.edit_tensor(x, {"Smiling": 0.8})
    own, target = (c[0].tolist() for c in seen)  # D(z, y) for the residual, then D(z, y')
    assert target[:2] == pytest.approx([0.2, 0.8])
    assert target[2:] == own[2:] == [1.0 - inferred[0, 1].item(), float(inferred[0, 1].item())]
    assert own[:2] == [1.0 - inferred[0, 0].item(), float(inferred[0, 0].item())]


def test_any_size_and_mode_is_prepared_like_the_training_data(trained_run):
    """Without alignment (these are not faces: see test_faces.py for photos) any image is cropped like the data."""
    model = faderkit.load(trained_run / "best.safetensors")
    for arr in (np.zeros((300, 120, 3), np.uint8), np.zeros((218, 178, 3), np.uint8)):
        assert tuple(model.prepare(arr, align=False).shape) == (1, 3, 32, 32)
    grey = Image.fromarray(np.full((50, 70), 128, np.uint8), "L")
    assert tuple(model.prepare(grey, align=False).shape) == (1, 3, 32, 32)


def test_cli_edit_writes_the_edit_and_a_comparison(trained_run, face, tmp_path):
    out = tmp_path / "out.png"
    result = run_edit(face, "-c", trained_run / "best.safetensors", "--set", "Smiling=0.5", "-o", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (178, 218)  # residual: the input's size
    wide = tmp_path / "cmp.png"
    result = run_edit(face, "-c", trained_run / "best.safetensors", "--set", "Eyeglasses=1.5", "--compare", "-o", wide)
    assert result.exit_code == 0 and Image.open(wide).size == (178 * 2 + 2, 218)
    result = run_edit(face, "-c", trained_run / "best.safetensors", "--set", "Eyeglasses=1.5", "--compare",
                      "--mode", "decoded", "-o", wide)
    assert result.exit_code == 0 and Image.open(wide).size == (32 * 2 + 2, 32)  # the model's crop | its image
    result = run_edit(face, "-c", trained_run / "best.safetensors", "--mode", "blend", "-o", out)
    assert result.exit_code == 2 and "'blend' is not one of 'local', 'residual', 'clean', 'decoded'" in result.output


@pytest.mark.parametrize("setting,message", [
    ("Smilng=1", "unknown attribute 'Smilng'; this model has: Smiling, Eyeglasses"),
    ("Smiling", "malformed --set 'Smiling'"),
    ("Smiling=", "malformed --set"),
    ("Smiling=lots", "expected a number"),
    ("Smiling=nan", "finite number"),
])
def test_cli_edit_bad_settings(trained_run, face, tmp_path, setting, message):
    result = run_edit(face, "-c", trained_run / "best.safetensors", "--set", setting, "-o", tmp_path / "o.png")
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.png").exists()


def test_cli_edit_bad_images(trained_run, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    for img, message in ((tmp_path / "missing.jpg", "image not found"), (text, "not in an image format"),
                         (truncated, "cannot read image")):
        result = run_edit(img, "-c", trained_run / "best.safetensors", "--set", "Smiling=1", "-o", tmp_path / "o.png")
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_cli_edit_bad_checkpoints(trained_run, face, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((trained_run / "best.safetensors").read_bytes()[:5000])
    pickled = tmp_path / "model.pt"
    torch.save({"x": 1}, pickled)
    for ck, message in ((cut, "not a readable faderkit checkpoint"), (pickled, "not a readable faderkit checkpoint"),
                        (trained_run / "classifier.safetensors", "not a trained fader model"),
                        (tmp_path / "none.safetensors", "checkpoint not found")):
        result = run_edit(face, "-c", ck, "--set", "Smiling=1", "-o", tmp_path / "o.png")
        assert result.exit_code == 2 and message in result.output, result.output


def test_cli_edit_never_overwrites_its_input_unless_asked(trained_run, tmp_path, face):
    img = tmp_path / "me.png"
    Image.open(face).save(img)
    before = img.read_bytes()
    result = run_edit(img, "-c", trained_run / "best.safetensors", "--set", "Smiling=1", "-o", img)
    assert result.exit_code == 2 and "is the input image" in result.output
    assert img.read_bytes() == before
    result = run_edit(img, "-c", trained_run / "best.safetensors", "--set", "Smiling=1", "-o", img, "--overwrite-input")
    assert result.exit_code == 0 and img.read_bytes() != before
