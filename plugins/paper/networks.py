"""The Fader Networks architecture (Lample et al., 2017), with the published code's variants.

Ck: 4x4 convolution, stride 2, padding 1, norm, activation. The encoder halves the image
``n_layers`` times (no norm on the first layer, LeakyReLU 0.2); the decoder mirrors it with
transposed convolutions (ReLU, Tanh last) and receives the attribute code, tiled, as extra input
channels at *every* layer.

Their ``params`` are declared in :mod:`.params` and checked by faderkit before a network is built;
only the checks that need the architecture (``n_skip``, a patch discriminator's depth) are here.
"""

from __future__ import annotations

import torch
from torch import nn

from faderkit.errors import FaderkitError
from faderkit.interfaces import ArchSpec, Classifier, Decoder, Discriminator, Encoder, ImageDiscriminator
from faderkit.quantiles import column_quantiles
from faderkit.cpuconv import CPUConv2d, CPUConvTranspose2d, is_channels_last

NORMS = {"batch": nn.BatchNorm2d, "instance": lambda c: nn.InstanceNorm2d(c, affine=True)}


def widths(arch: ArchSpec) -> list[int]:
    """Output channels of each encoder layer: init_fm doubling up to max_fm."""
    return [min(arch.init_fm * 2**i, arch.max_fm) for i in range(arch.n_layers)]


def _check(arch: ArchSpec) -> None:
    if arch.image_size % 2**arch.n_layers:
        raise FaderkitError(
            f"image_size {arch.image_size} cannot be halved {arch.n_layers} times; "
            f"lower model.n_layers to at most {arch.image_size.bit_length() - 1}"
        )


class PaperEncoder(Encoder):
    def __init__(self, arch: ArchSpec, norm: str = "batch"):
        super().__init__()
        _check(arch)
        make_norm = NORMS[norm]
        layers, c_in = [], 3
        for i, c_out in enumerate(widths(arch)):
            block = [CPUConv2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                block.append(make_norm(c_out))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Sequential(*block))
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        side = arch.image_size // 2**arch.n_layers
        self.latent_shape = (c_in, side, side)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


def _up(c_in: int, c_out: int, mode: str) -> nn.Module:
    if mode == "deconv":
        return CPUConvTranspose2d(c_in, c_out, 4, 2, 1)
    if mode == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1))
    return nn.Sequential(nn.Conv2d(c_in, c_out * 4, 3, 1, 1), nn.PixelShuffle(2))


def _stack(enc: list[int], own: list[int], code_dim: int, out: int, n_skip: int, upsample: str, make_norm,
           dropout: float, last: list[nn.Module], refine: int = 0, coords: bool = False,
           refine_layers: int = 1) -> nn.ModuleList:
    """Decoder layers from the latent (``enc[-1]`` maps) up: hidden widths ``own`` (deepest first), ``out`` maps
    at the end followed by ``last``; the code tiled into every layer, the encoder's maps into the first n_skip,
    and with ``coords`` two maps of each pixel's x and y into every layer.
    ``refine`` > 0: the last doubling draws that many maps, and a 3x3 convolution at full size draws ``out``
    (``refine_layers`` > 1: that many 3x3 convolutions at full size, the first ones drawing ``refine`` maps)."""
    layers, c_prev = [], enc[-1]
    outs = own + ([refine] * refine_layers if refine else []) + [out]
    for j, c_out in enumerate(outs):
        c_in = c_prev + code_dim + (enc[-1 - j] if 0 < j <= n_skip else 0) + (2 if coords else 0)
        block = [_up(c_in, c_out, upsample) if j <= len(own) else CPUConv2d(c_in, c_out, 3, 1, 1)]
        if j == len(outs) - 1:
            block += last
        else:
            block += [make_norm(c_out), nn.ReLU(inplace=True)]
            if dropout:
                block.append(nn.Dropout(dropout))
        layers.append(nn.Sequential(*block))
        c_prev = c_out
    return nn.ModuleList(layers)


def _film(code_dim: int, layers: nn.ModuleList) -> nn.ModuleList:
    """Per hidden layer, a linear map from the code to a scale and a shift of each of its maps, zero at the start
    (so the decoder starts as the paper's)."""
    out = nn.ModuleList()
    for layer in layers[:-1]:
        lin = nn.Linear(code_dim, 2 * layer[1].num_features)
        nn.init.zeros_(lin.weight)
        nn.init.zeros_(lin.bias)
        out.append(lin)
    return out


def coordinates(x: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W): each pixel's column and row, from -1 to 1 across the map (CoordConv, arXiv 1807.03247)."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)])
    return grid[None].expand(n, -1, -1, -1)


def in_layout_of(x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """``extra`` (a tiled code, coordinate maps) in ``x``'s dtype and memory layout, so that concatenating the two
    keeps x's layout: a channels_last map (what cpuconv's nhwc path gives the next layer) concatenated with an
    expanded tile comes out NCHW, and the next layer copies it back to channels_last, 3 to 20 times the cost of
    the concatenation itself (docs/training_speed.md)."""
    extra = extra.to(x.dtype)
    if is_channels_last(x):
        return extra.contiguous(memory_format=torch.channels_last)
    return extra


def _run(layers: nn.ModuleList, features: list[torch.Tensor], code: torch.Tensor | None, n_skip: int,
         film: nn.ModuleList | None = None, coords: bool = False) -> torch.Tensor:
    x = features[-1]
    for j, layer in enumerate(layers):
        if 0 < j <= n_skip:
            x = torch.cat([x, features[-1 - j]], 1)
        if code is not None:
            x = torch.cat([x, in_layout_of(x, code[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3]))], 1)
        if coords:
            x = torch.cat([x, in_layout_of(x, coordinates(x))], 1)
        if film is not None and j < len(film):  # the doubling and its norm, then the code's scale and shift
            h = layer[:2](x)
            scale, shift = film[j](code.to(h.dtype)).to(h.dtype)[:, :, None, None].chunk(2, 1)
            x = layer[2:](h * (1 + scale) + shift)
        else:
            x = layer(x)
    return x


class PaperDecoder(Decoder):
    """Mirror of the encoder. ``n_skip`` > 0 also feeds the last n_skip encoder maps (U-Net style); the latent
    adversary then reads the shallowest of them (as the published code does), so the skips carry no attribute.

    ``head: change`` draws D(z, y) = (1 - A) B + A C: a base image B from a stack that never sees the code, and a
    mask A (sigmoid) with a colour C (tanh) from a second stack, ``change_width`` as wide, that gets the code at
    every layer. What the attributes change can then only be drawn where the mask is (GANimation's attention
    mask, arXiv 1807.09251), and a residual edit x + D(z, y') - D(z, y) changes nothing outside A and A'.

    ``film``: the code also scales and shifts every hidden layer's maps after their normalisation (FiLM, arXiv
    1709.07871), so the attributes can gate what a map draws where; tiled in, they only add a constant to it.

    ``coords``: every layer also gets two maps of its pixels' x and y (CoordConv, arXiv 1807.03247). A
    convolution cannot tell where it is but from the padding; with them, a stroke the code asks for (a smile's
    curve) can be drawn at a place, not only relative to the maps it starts from."""

    def __init__(self, arch: ArchSpec, upsample: str = "deconv", norm: str = "batch",
                 dropout: float = 0.0, n_skip: int = 0, head: str = "plain", change_width: float = 0.5,
                 refine: int = 0, film: bool = False, coords: bool = False, refine_layers: int = 1):
        super().__init__()
        _check(arch)
        make_norm = NORMS[norm]
        if n_skip >= arch.n_layers:
            raise FaderkitError(f"n_skip must be between 0 and {arch.n_layers - 1} (got {n_skip})")
        enc = widths(arch)
        self.code_dim, self.n_skip, self.head, self.coords = arch.code_dim, n_skip, head, coords
        self.receives = tuple(-1 - j for j in range(n_skip + 1))
        hidden = enc[-2::-1]
        if head == "plain":
            self.layers = _stack(enc, hidden, self.code_dim, 3, n_skip, upsample, make_norm, dropout, [nn.Tanh()],
                                 refine, coords, refine_layers)
            self.film = _film(self.code_dim, self.layers) if film else None
            return
        self.layers = _stack(enc, hidden, 0, 3, n_skip, upsample, make_norm, dropout, [nn.Tanh()], refine, coords,
                             refine_layers)  # B
        narrow = [max(1, round(c * change_width)) for c in hidden]
        self.change = _stack(enc, narrow, self.code_dim, 4, n_skip, upsample, make_norm, dropout, [],
                             max(1, round(refine * change_width)) if refine else 0, coords, refine_layers)
        self.film = _film(self.code_dim, self.change) if film else None  # the stack that gets the code
        self.last_mask: torch.Tensor | None = None  # A of the latest forward, for the change_mask loss

    def forward(self, features: list[torch.Tensor], code: torch.Tensor) -> torch.Tensor:
        if self.head == "plain":
            return _run(self.layers, features, code, self.n_skip, self.film, self.coords)
        base = _run(self.layers, features, None, self.n_skip, coords=self.coords)
        out = _run(self.change, features, code, self.n_skip, self.film, self.coords)
        mask, colour = torch.sigmoid(out[:, :1]), torch.tanh(out[:, 1:])
        self.last_mask = mask
        return base + mask * (colour - base)


class RobustStandardise(nn.Module):
    """Each latent dimension centred on its median and divided by its interquartile range (as a normal's standard
    deviation: IQR / 1.349), then softly clipped at +-``clip``. In training the quartiles are the batch's own (as
    a BatchNorm's mean and deviation are, and differentiated through like them); running estimates of them serve
    in eval mode.

    A mean and a deviation can be gamed: an encoder that sends a few latents hundreds of times further out than
    the rest inflates every dimension's deviation, and the others, squashed together, look alike to the reader
    (and to eval's standardised probe) while they still carry the attributes. Quartiles do not move for a few
    far-out latents, and the clip keeps those from dominating the reader. Running estimates in training would be
    gamed too: the latents drift faster than the estimates follow, and every value ends at the clip."""

    def __init__(self, dims: int, clip: float = 3.0, momentum: float = 0.05):
        super().__init__()
        self.clip, self.momentum = clip, momentum
        self.register_buffer("median", torch.zeros(dims))
        self.register_buffer("scale", torch.ones(dims))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1).float()
        if self.training and flat.shape[0] >= 4:
            q = column_quantiles(flat, [0.25, 0.5, 0.75])  # torch.quantile's values, 10x faster (faderkit/quantiles.py)
            median, scale = q[1], (q[2] - q[0]) / 1.349
            with torch.no_grad():
                weight = 1.0 if int(self.batches_seen) == 0 else self.momentum
                self.median.lerp_(median.detach(), weight)
                self.scale.lerp_(scale.detach(), weight)
                self.batches_seen += 1
        else:
            median, scale = self.median, self.scale
        s = (flat - median) / scale.clamp_min(1e-6)
        return (self.clip * torch.tanh(s / self.clip)).view(z.shape)


class RankRead(nn.Module):
    """Each latent dimension read as its rank within the batch being read, as the normal quantile of
    (rank + 1) / (n + 1). The encoder's term gets the slope of that map at the value (the quantile step between the
    value's two neighbours over the distance between them), so the rank is what the discriminator reads and a
    gradient still reaches the latent.

    A scale is not enough: an encoder can park half the faces in a band a twentieth of the dimension's range wide
    and write an attribute in where they sit inside it (the quickstart's did, for Male). Median and interquartile
    range (``robust``) read that band as nearly one value; a rank spreads it over half the range, as eval's rank
    probe does. The batch's own ranks, not ranks among earlier latents: those were gamed as running quartiles were
    (the latents shrank to a spread of a hundredth and moved between batches by more than that, so half of each
    batch fell beyond the reference and read as its end). No increasing change of a dimension, from batch to batch or
    within one, moves a rank.

    The slope is capped at ``max_gain`` times the robust reader's (1.349 over the batch's interquartile range): with
    the slope alone (``max_gain=None``), two faces a millionth apart gave the encoder gradients ten thousand times the
    robust reader's, and it lost 12 dB of reconstruction to them (docs/quality.md, tenth round). A gap between
    neighbours also counts as at least ``1e-4`` of the dimension's spread in the batch (of the mean dimension's, for
    one whose values are all tied: a dead unit)."""

    def __init__(self, max_gain: float | None = 10.0):
        super().__init__()
        self.max_gain = max_gain

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1).float()
        n = flat.shape[0]
        if n < 2:
            return torch.zeros_like(flat).view(z.shape)
        x = flat.detach()
        knots, order = x.sort(0)  # (n, d)
        q = torch.special.ndtri(torch.arange(1, n + 1, device=x.device, dtype=x.dtype) / (n + 1))
        spread = knots[-1] - knots[0]
        floor = 1e-4 * torch.maximum(spread, spread.mean().clamp_min(1e-12))
        # the slope at each sorted place: between its neighbours (one-sided at the ends)
        up, down = torch.cat([knots[1:], knots[-1:]]), torch.cat([knots[:1], knots[:-1]])
        qu, qd = torch.cat([q[1:], q[-1:]]), torch.cat([q[:1], q[:-1]])
        slope = (qu - qd)[:, None] / (up - down).clamp_min(floor)
        if self.max_gain is not None:  # at most max_gain x the robust reader's slope (1.349 / the interquartile range)
            quart = knots[[round(0.25 * (n - 1)), round(0.75 * (n - 1))]]
            slope = slope.minimum(self.max_gain * 1.349 / (quart[1] - quart[0]).clamp_min(floor))
        rank = torch.empty_like(order).scatter_(0, order, torch.arange(n, device=x.device)[:, None].expand_as(order))
        value = q[rank]
        out = value + slope.gather(0, rank) * (flat - x)  # the rank forward, the slope backward
        return out.view(z.shape)


def _standardise(arch: ArchSpec, how: str) -> nn.Module:
    """How the discriminator reads the latent first: ``standard`` (each dimension standardised by running
    statistics, a BatchNorm without a learned scale, so that a dimension the encoder shrinks weighs as much as
    any other), ``robust`` (:class:`RobustStandardise`), ``ranks`` (:class:`RankRead`) or ``off``."""
    c, h, w = arch.latent_shape
    if how == "robust":
        return RobustStandardise(c * h * w)
    if how == "ranks":
        return RankRead()
    if how == "standard":
        return nn.Sequential(nn.Flatten(), nn.BatchNorm1d(c * h * w, affine=False), nn.Unflatten(1, (c, h, w)))
    return nn.Identity()


class LatentDiscriminator(Discriminator):
    """One C``conv_fm`` layer on the latent, then fully connected ``hid_dim`` and the code, dropout before each."""

    def __init__(self, arch: ArchSpec, conv_fm: int = 512, hid_dim: int = 512, dropout: float = 0.3,
                 input_norm: str = "off"):
        super().__init__()
        self.norm = _standardise(arch, input_norm)
        c, h, w = arch.latent_shape
        stride, kernel = (2, 4) if h >= 2 else (1, 3)
        self.conv = nn.Sequential(CPUConv2d(c, conv_fm, kernel, stride, 1), nn.BatchNorm2d(conv_fm),
                                  nn.LeakyReLU(0.2, inplace=True))
        side = h // stride
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(conv_fm * side * side, hid_dim),
            nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout), nn.Linear(hid_dim, arch.code_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(self.norm(z)))


class MLPDiscriminator(Discriminator):
    """The latent read per dimension (by default robustly: :class:`RobustStandardise`), then ``n_hidden`` fully
    connected layers of ``hid_dim`` (LeakyReLU 0.2, dropout before each): a reader as strong as eval's probe."""

    def __init__(self, arch: ArchSpec, hid_dim: int = 512, n_hidden: int = 2, dropout: float = 0.1,
                 input_norm: str = "robust"):
        super().__init__()
        c, h, w = arch.latent_shape
        layers, width = [_standardise(arch, input_norm), nn.Flatten()], c * h * w
        for _ in range(n_hidden):
            layers += [nn.Dropout(dropout), nn.Linear(width, hid_dim), nn.LeakyReLU(0.2, inplace=True)]
            width = hid_dim
        self.net = nn.Sequential(*layers, nn.Linear(width, arch.code_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PaperClassifier(Classifier):
    """An encoder-shaped conv net with its own widths, then a fully connected head per attribute block."""

    def __init__(self, arch: ArchSpec, init_fm: int = 16, max_fm: int = 256, hid_dim: int = 256,
                 dropout: float = 0.3):
        super().__init__()
        own = ArchSpec(arch.image_size, arch.attributes, arch.n_layers, init_fm, max_fm)
        self.features = PaperEncoder(own)
        c, h, w = self.features.latent_shape
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * h * w, hid_dim),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(hid_dim, arch.code_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1])


class PatchDiscriminator(ImageDiscriminator):
    """PatchGAN: ``n_layers`` Ck layers then a 1-channel map, one real/fake logit per patch."""

    def __init__(self, arch: ArchSpec, n_layers: int = 3, init_fm: int = 64, max_fm: int = 512):
        super().__init__()
        most = max(1, arch.image_size.bit_length() - 2)
        if n_layers > most:
            raise FaderkitError(f"n_layers must be from 1 to {most} at {arch.image_size} px (got {n_layers})")
        layers, c_in = [], 3
        for i in range(n_layers):
            c_out = min(init_fm * 2**i, max_fm)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1)] + ([nn.BatchNorm2d(c_out)] if i else [])
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
