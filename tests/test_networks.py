"""Every registered network gets a tiny forward/backward test, without anyone writing one for it."""

import pytest
import torch

from faderkit.interfaces import ArchSpec, Attribute
from faderkit.plugins import registries

ATTRS = (Attribute("A"), Attribute("B"), Attribute("color", ("r", "g", "b")))


def arch(size=32, n_layers=3):
    return ArchSpec(size, ATTRS, n_layers, 8, 32)


def encoder_and_arch():
    enc = registries()["encoder"].create("paper", arch())
    return enc, arch().with_latent(enc.latent_shape)


@pytest.mark.parametrize("name", registries()["encoder"].list())
def test_encoders(name):
    enc = registries()["encoder"].create(name, arch())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    feats = enc(x)
    assert tuple(feats[-1].shape[1:]) == enc.latent_shape
    feats[-1].square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", registries()["decoder"].list())
@pytest.mark.parametrize("params", [{}, {"upsample": "nearest"}, {"upsample": "pixelshuffle", "norm": "instance"},
                                    {"n_skip": 2, "dropout": 0.2}, {"head": "change", "n_skip": 1},
                                    {"refine": 8}, {"refine": 6, "head": "change", "upsample": "nearest"},
                                    {"film": True, "refine": 4}, {"film": True, "head": "change", "norm": "instance"},
                                    {"coords": True, "refine": 4}, {"coords": True, "head": "change", "n_skip": 1}])
def test_decoders(name, params):
    enc, a = encoder_and_arch()
    dec = registries()["decoder"].create(name, a, **params)
    feats = enc(torch.randn(2, 3, 32, 32))
    code = torch.rand(2, a.code_dim, requires_grad=True)
    out = dec(feats, code)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    out.mean().backward()
    assert torch.isfinite(code.grad).all() and code.grad.abs().sum() > 0


def _first_conv(layer):
    """A decoder layer's convolution: the block's first module, or the first inside an upsampling sequence."""
    return layer[0] if isinstance(layer[0], torch.nn.Conv2d | torch.nn.ConvTranspose2d) else layer[0][0]


def _position_weights(conv, t):
    """The slice of ``t`` (a convolution's weight or its gradient) that reads the last two input maps: x and y of a
    CoordConv layer. A transposed convolution's weight lists its inputs first, a convolution's second."""
    axis = 1 if isinstance(conv, torch.nn.Conv2d) else 0
    return t.narrow(axis, t.shape[axis] - 2, 2)


def test_paper_decoder_feeds_the_code_to_every_layer():
    enc, a = encoder_and_arch()
    dec = registries()["decoder"].create("paper", a)
    for layer in dec.layers:
        assert _first_conv(layer).in_channels >= a.code_dim
    assert dec.layers[0][0].in_channels == enc.latent_shape[0] + a.code_dim


def test_a_refining_decoder_draws_at_full_size_with_the_code():
    enc, a = encoder_and_arch()
    dec = registries()["decoder"].create("paper", a, refine=8)
    plain = registries()["decoder"].create("paper", a)
    assert len(dec.layers) == len(plain.layers) + 1
    last_doubling, full = dec.layers[-2][0], dec.layers[-1][0]
    assert isinstance(last_doubling, torch.nn.ConvTranspose2d) and last_doubling.out_channels == 8
    assert (full.kernel_size, full.stride, full.in_channels, full.out_channels) == ((3, 3), (1, 1), 8 + a.code_dim, 3)
    feats = enc(torch.randn(2, 3, 32, 32))
    seen = []
    full.register_forward_hook(lambda m, inp, out: seen.append((inp[0].shape, out.shape)))
    dec(feats, torch.rand(2, a.code_dim))
    assert seen == [((2, 8 + a.code_dim, 32, 32), (2, 3, 32, 32))]  # at the image's own size


def test_a_refining_decoder_can_draw_through_more_layers_at_full_size():
    enc, a = encoder_and_arch()
    one = registries()["decoder"].create("paper", a, refine=8)
    three = registries()["decoder"].create("paper", a, refine=8, refine_layers=3)
    assert list(registries()["decoder"].create("paper", a, refine=8, refine_layers=1).state_dict()) == \
        list(one.state_dict())  # 1 is the refine decoder as before: its checkpoints load
    assert len(three.layers) == len(one.layers) + 2
    seen = []
    for layer in three.layers[-3:]:
        conv = layer[0]
        assert (conv.kernel_size, conv.in_channels) == ((3, 3), 8 + a.code_dim)  # each also gets the code
        conv.register_forward_hook(lambda m, inp, out: seen.append(out.shape))
    assert isinstance(three.layers[-2][1], torch.nn.BatchNorm2d) and isinstance(three.layers[-1][1], torch.nn.Tanh)
    three(enc(torch.randn(2, 3, 32, 32)), torch.rand(2, a.code_dim))
    assert seen == [(2, 8, 32, 32), (2, 8, 32, 32), (2, 3, 32, 32)]  # all at the image's own size
    with pytest.raises(Exception, match="refine_layers"):
        registries()["decoder"].create("paper", a, refine=8, refine_layers=0)


def test_the_tiled_code_keeps_the_maps_layout_and_the_decoder_its_values(monkeypatch):
    """A map in channels_last (cpuconv's nhwc path) concatenated with the tiled code stays channels_last, so the
    next layer copies nothing; an NCHW map stays NCHW; the decoder draws the same image either way."""
    from faderkit import cpuconv
    from faderkit_plugins.paper import networks

    code = torch.randn(2, 3)
    for layout in (torch.channels_last, torch.contiguous_format):
        x = torch.randn(2, 5, 8, 8, dtype=torch.bfloat16).contiguous(memory_format=layout)
        tile = networks.in_layout_of(x, code[:, :, None, None].expand(-1, -1, 8, 8))
        joined = torch.cat([x, tile], 1)
        assert tile.dtype == torch.bfloat16 and joined.is_contiguous(memory_format=layout)
        assert torch.equal(joined[:, 5:], code.to(torch.bfloat16)[:, :, None, None].expand(-1, -1, 8, 8))
    enc, a = encoder_and_arch()
    dec = registries()["decoder"].create("paper", a, refine=8)
    feats, y = enc(torch.randn(2, 3, 32, 32)), torch.rand(2, a.code_dim)
    monkeypatch.setattr(cpuconv, "_path", lambda m, x, positions: "nhwc")  # every layer on the nhwc path
    inputs = []
    for layer in dec.layers:
        layer[0].register_forward_pre_hook(lambda m, inp: inputs.append(inp[0]))
    got = dec(feats, y)
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in inputs[1:])
    monkeypatch.setattr(networks, "in_layout_of", lambda x, extra: extra.to(x.dtype))  # the tile as before
    inputs.clear()
    want = dec(feats, y)
    assert not any(t.is_contiguous(memory_format=torch.channels_last) for t in inputs[1:])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head", ["plain", "change"])
def test_a_film_decoder_starts_as_the_paper_and_learns_how_the_code_scales_each_map(head):
    enc, a = encoder_and_arch()
    torch.manual_seed(0)
    film = registries()["decoder"].create("paper", a, film=True, head=head, refine=4)
    torch.manual_seed(0)
    plain = registries()["decoder"].create("paper", a, head=head, refine=4)
    film.eval(), plain.eval()
    extra = {k for k in film.state_dict() if k.startswith("film.")}
    # one scale and one shift per map of every hidden layer of the stack that gets the code
    stack = film.layers if head == "plain" else film.change
    assert len(film.film) == len(stack) - 1 and len(extra) == 2 * len(film.film)
    assert all(lin.out_features == 2 * layer[1].num_features for lin, layer in zip(film.film, stack))
    assert set(film.state_dict()) - extra == set(plain.state_dict())
    feats, code = enc(torch.randn(2, 3, 32, 32)), torch.rand(2, a.code_dim)
    assert torch.equal(film(feats, code), plain(feats, code))  # zero scale and shift: the paper's decoder
    film.train()
    film(feats, code).square().mean().backward()
    assert all(lin.weight.grad.abs().sum() > 0 for lin in film.film)  # trained like every other weight
    with torch.no_grad():
        film.film[0].weight.normal_()
    film.eval()
    assert not torch.allclose(film(feats, code), plain(feats, code))
    assert not torch.allclose(film(feats, code), film(feats, 1 - code))


def test_coordinate_maps_run_from_minus_one_to_one_along_each_axis():
    from plugins.paper.networks import coordinates
    grid = coordinates(torch.zeros(2, 5, 3, 4))
    assert grid.shape == (2, 2, 3, 4)
    assert torch.allclose(grid[0, 0, 1], torch.tensor([-1, -1 / 3, 1 / 3, 1]))  # x along a row
    assert torch.equal(grid[1, 1, :, 2], torch.tensor([-1.0, 0.0, 1.0]))     # y down a column
    assert (grid[:, 0] == grid[:, 0, :1]).all() and (grid[:, 1] == grid[:, 1, :, :1]).all()


@pytest.mark.parametrize("head", ["plain", "change"])
def test_a_coordconv_decoder_is_the_paper_plus_two_position_maps_at_every_layer(head):
    """With the weights that read x and y set to zero it draws exactly what the paper's decoder draws with the
    same other weights; with them it draws differently, and training reaches them."""
    enc, a = encoder_and_arch()
    coord = registries()["decoder"].create("paper", a, coords=True, head=head, refine=4)
    plain = registries()["decoder"].create("paper", a, head=head, refine=4)
    stacks = [(coord.layers, plain.layers)] + ([(coord.change, plain.change)] if head == "change" else [])
    mine, theirs = coord.state_dict(), plain.state_dict()
    assert set(mine) == set(theirs)
    with torch.no_grad():
        for k, v in theirs.items():  # the paper's weights, into the first inputs of each layer
            grown = [d for d in range(v.dim()) if mine[k].shape[d] != v.shape[d]]
            assert len(grown) <= 1
            (mine[k].narrow(grown[0], 0, v.shape[grown[0]]) if grown else mine[k]).copy_(v)
        for cs, ps in stacks:
            for cl, pl in zip(cs, ps):
                c, p = _first_conv(cl), _first_conv(pl)
                assert c.in_channels == p.in_channels + 2  # x and y: the last two inputs
                _position_weights(c, c.weight).zero_()
    coord.eval(), plain.eval()
    feats, code = enc(torch.randn(2, 3, 32, 32)), torch.rand(2, a.code_dim)
    assert torch.allclose(coord(feats, code), plain(feats, code), atol=1e-6)
    coord.train()
    coord(feats, code).square().mean().backward()
    for cs, _ in stacks:
        for cl in cs:
            c = _first_conv(cl)
            assert _position_weights(c, c.weight.grad).abs().sum() > 0
    with torch.no_grad():
        c = _first_conv(stacks[0][0][-1])
        _position_weights(c, c.weight).normal_()
    coord.eval()
    assert not torch.allclose(coord(feats, code), plain(feats, code))


@pytest.mark.parametrize("name", registries()["discriminator"].list())
def test_discriminators(name):
    enc, a = encoder_and_arch()
    dis = registries()["discriminator"].create(name, a)
    z = enc(torch.randn(4, 3, 32, 32))[-1].detach().requires_grad_(True)
    logits = dis(z)
    assert logits.shape == (4, a.code_dim)
    logits.sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", registries()["classifier"].list())
def test_classifiers(name):
    cls = registries()["classifier"].create(name, arch())
    logits = cls(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, arch().code_dim) and torch.isfinite(logits).all()
    logits.sum().backward()


def test_image_size_the_architecture_cannot_halve():
    from faderkit import FaderkitError

    with pytest.raises(FaderkitError, match="cannot be halved"):
        registries()["encoder"].create("paper", ArchSpec(16, ATTRS, 5, 8, 32))


@pytest.mark.parametrize("bad", [{"upsample": "bicubic"}, {"norm": "group"}])
def test_unknown_variant_lists_choices(bad):
    from faderkit import FaderkitError

    _, a = encoder_and_arch()
    with pytest.raises(FaderkitError, match="choose one of"):
        registries()["decoder"].create("paper", a, **bad)


@pytest.mark.parametrize("name", registries()["image_discriminator"].list())
def test_image_discriminators(name):
    net = registries()["image_discriminator"].create(name, arch())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    logits = net(x)
    assert logits.shape[0] == 2 and torch.isfinite(logits).all()
    logits.mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["mlp", "latent"])
def test_a_standardised_discriminator_reads_a_shrunk_dimension_as_well_as_any(name):
    """The lever that hides the attributes: with input_norm, scaling one latent dimension down (the
    encoder's way of hiding an attribute from a discriminator that reads raw z) changes nothing."""
    torch.manual_seed(0)
    spec = arch().with_latent((8, 2, 2))
    net = registries()["discriminator"].create(name, spec, params={"input_norm": "standard"})
    raw = registries()["discriminator"].create(name, spec, params={"input_norm": "off"})
    raw.load_state_dict(net.state_dict(), strict=False)
    z = torch.randn(256, 8, 2, 2)
    shrunk = z.clone()
    shrunk[:, 3] *= 0.05  # variance 2.5e-3, well above the standardisation's eps (1e-5)
    for model, inputs in ((net, z), (net, shrunk)):  # running statistics from each input's own batches
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average: exact statistics of what it saw
        with torch.no_grad():
            model(inputs)
        model.eval()
        with torch.no_grad():
            out = model(inputs)
        if inputs is z:
            first = out
    assert torch.allclose(first, out, atol=1e-3)
    raw.eval()
    with torch.no_grad():  # without the standardisation the shrunk dimension's contribution is lost
        assert not torch.allclose(raw(z), raw(shrunk), atol=1e-3)


def test_a_robust_reader_is_not_blinded_by_a_few_far_out_latents():
    """The encoder's way past a standardising discriminator: send 4% of the latents 500 times further out. Their
    deviation then squashes everyone else's latent together (the standardised spread of the rest falls to a few
    hundredths); the robust reader's quartiles do not move for them, and the clip keeps them from dominating."""
    from faderkit_plugins.paper.networks import RobustStandardise, _standardise

    torch.manual_seed(0)
    spec = arch().with_latent((8, 2, 2))
    z = torch.randn(500, 8, 2, 2)
    z[:20] *= 500
    rest = slice(20, None)
    spread = {}
    for how in ("standard", "robust"):
        norm = _standardise(spec, how)
        norm.train()
        for _ in range(40):  # training batches of 25, the far-out ones spread over them
            norm(z[torch.randperm(500)[:25]])
        norm.eval()
        with torch.no_grad():
            out = norm(z)
        assert out.shape == z.shape and torch.isfinite(out).all()
        spread[how] = out[rest].std().item()
    assert spread["standard"] < 0.1 and 0.7 < spread["robust"] < 1.3
    robust = RobustStandardise(32, clip=3.0)
    robust.train()
    robust(z.flatten(1))
    assert robust(z.flatten(1)).abs().max() <= 3.0  # the far-out ones end at the clip
    # a gradient reaches the latent through the reader (the adversary's pull on the encoder), none through its statistics
    zz = torch.randn(16, 32, requires_grad=True)
    robust(zz).sum().backward()
    assert zz.grad.abs().sum() > 0 and not robust.median.requires_grad


def _dense_band_latents(n: int = 400, seed: int = 0):
    """The encoder's way past the robust reader (found in the quickstart's latent, docs/quality.md tenth round): half
    the faces parked in a band a hundredth of the dimension's spread wide, the attribute written as where each
    sits inside it; the other half spread over the whole range, carrying nothing."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=g)
    band = torch.rand(n, generator=g) < 0.5
    v = torch.where(band, 0.01 * (y.float() + 0.5 * torch.rand(n, generator=g)), 1.0 + 2 * torch.rand(n, generator=g))
    z = torch.randn(n, 4, generator=g)
    z[:, 0] = v
    return z, y, band


def test_a_rank_reader_reads_an_attribute_written_inside_a_dense_band():
    from faderkit_plugins.paper.networks import RankRead, RobustStandardise

    z, y, band = _dense_band_latents()
    gaps = {}
    for name, reader in (("robust", RobustStandardise(4)), ("ranks", RankRead())):
        reader.train()
        for start in range(0, 384, 16):  # training batches (the robust reader's running quartiles for eval)
            reader(z[start:start + 16])
        reader.eval()
        with torch.no_grad():
            out = reader(z)[:, 0]
        inside = out[band]
        gaps[name] = float((inside[y[band] == 1].mean() - inside[y[band] == 0].mean()) / out.std())
    assert gaps["robust"] < 0.05  # the band reads as one value
    assert gaps["ranks"] > 0.5    # by rank it spans half the range, the attribute's two halves apart


def test_no_increasing_change_of_a_batch_moves_what_the_rank_reader_reads():
    """The encoder's ways past readers with a memory (running quartiles, ranks among earlier latents): shift or
    shrink the latents from batch to batch. Within a batch, ranks see none of it."""
    from faderkit_plugins.paper.networks import RankRead

    torch.manual_seed(0)
    reader = RankRead()
    z = torch.randn(16, 8, 2, 2)
    out = reader(z)
    assert out.shape == z.shape
    for changed in (0.01 * z + 7.0, torch.exp(3 * z), torch.where(z > 0, z * 100, z)):
        assert torch.allclose(reader(changed), out, atol=1e-6)
    q = torch.special.ndtri(torch.arange(1, 17) / 17.0)
    assert torch.allclose(out[:, 0, 0, 0].sort().values, q)  # each dimension: the 16 quantiles, once each
    assert torch.equal(reader(z[:1]), torch.zeros_like(z[:1]))  # one latent: nothing to rank it among


def test_the_rank_reader_passes_a_bounded_gradient_to_the_latent():
    from faderkit_plugins.paper.networks import RankRead

    torch.manual_seed(0)
    x = torch.randn(16, 3)
    x[:, 1] = 0.0  # a dead unit: every value tied
    x[:5, 2] = torch.tensor([0.0, 1e-20, 1e-15, 1e-12, -1e-20])  # and values just beside one another
    x.requires_grad_(True)
    g = torch.randn(16, 3)
    out = RankRead(max_gain=None)(x)
    (out * g).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:, 0].abs().sum() > 0
    assert x.grad.abs().max() < 1e6  # tied or near-tied gaps count as a floor, not as 0
    uncapped = x.grad.clone()
    x.grad = None
    (RankRead(max_gain=10)(x) * g).sum().backward()
    knots = x.detach()[:, 2].sort().values
    iqr = knots[round(0.75 * 15)] - knots[round(0.25 * 15)]  # the batch's quartiles, as the nearest order statistics
    assert uncapped[:, 2].abs().max() > 500  # the near-ties: slopes of hundreds and more
    assert (x.grad[:, 2].abs() <= 10 * 1.349 / iqr * g[:, 2].abs() * 1.0001).all()  # capped
    assert (x.grad[:, 2].abs() >= 0.999 * 10 * 1.349 / iqr * g[:, 2].abs()).any()  # and the cap was reached
    y = x.detach().clone()
    y[3, 0] += 1e-4
    with torch.no_grad():
        moved = RankRead()(y)
    assert moved[3, 0] == out[3, 0]  # the forward reads ranks: a small move that keeps the order changes nothing
