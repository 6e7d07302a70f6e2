"""What each of the paper's networks accepts as ``params`` in a recipe; faderkit checks them before building."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from faderkit import Params

Norm = Literal["batch", "instance"]
#: How a latent discriminator reads the latent first; true and false (the switch this once was) mean standard and off.
InputNorm = Annotated[Literal["off", "standard", "robust", "ranks"],
                      BeforeValidator(lambda v: {True: "standard", False: "off"}.get(v, v) if isinstance(v, bool) else v)]
#: A width or count: whole, at least 1 (a zero-width layer would train silently to nothing).
WIDE = {"ge": 1, "le": 65536}


class EncoderParams(Params):
    norm: Norm = Field("batch", description="normalisation after every convolution but the first "
                       "(instance: the published code's option)")


class DecoderParams(Params):
    upsample: Literal["deconv", "nearest", "pixelshuffle"] = Field(
        "deconv", description="how each layer doubles the size: 4x4 transposed convolution (paper), "
        "nearest upsampling + 3x3 convolution, or 3x3 convolution + pixel shuffle")
    norm: Norm = Field("batch", description="normalisation after every layer but the last")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after every layer but the last (published code)")
    n_skip: int = Field(0, ge=0, description="U-Net skips: the last n_skip encoder maps also feed the decoder layers "
                        "of their size (the latent adversary reads the shallowest); fewer than model.n_layers")
    head: Literal["plain", "change"] = Field(
        "plain", description="plain: one stack draws the image (paper); change: a base image that never sees the "
        "attributes, blended with a colour through a mask that a second stack draws from them (the edit stays "
        "where the mask is; pair it with the change_mask loss)")
    change_width: float = Field(0.5, gt=0, le=4, description="head change: the mask-and-colour stack's width as a "
                                "share of the base stack's")
    refine: int = Field(0, ge=0, le=1024, description="0: the last layer draws the image while it doubles the size "
                        "(paper). N: it draws N maps at full size instead, and a 3x3 convolution that also gets the "
                        "code turns them into the image (thin strokes drawn at full resolution)")
    refine_layers: int = Field(1, ge=1, le=8, description="with refine: the 3x3 convolutions at full size (1: one "
                               "draws the image; N: N - 1 more of refine maps, each with its norm, ReLU and the code, "
                               "before it: a wider view at full size, for a curve's corners)")
    film: bool = Field(False, description="the code also scales and shifts every hidden layer's maps after their "
                       "normalisation (FiLM): the attributes gate what each map draws where, where tiled in they only "
                       "add a constant to it; zero at the start, so the decoder starts as the paper's")
    coords: bool = Field(False, description="every layer also gets two maps of its pixels' x and y (CoordConv): "
                         "a stroke can be drawn at a place, where a convolution alone knows only the padding")


class LatentDiscriminatorParams(Params):
    conv_fm: int = Field(512, **WIDE, description="feature maps of its one convolution on the latent (paper: 512)")
    hid_dim: int = Field(512, **WIDE, description="width of the hidden fully connected layer (paper: 512)")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout before each fully connected layer (paper: 0.3)")
    input_norm: InputNorm = Field("off", description="how it reads the latent first: off (paper), standard (each "
                                  "dimension standardised by running statistics), robust (median and interquartile "
                                  "range, softly clipped) or ranks (each dimension's rank within the batch)")


class MLPDiscriminatorParams(Params):
    hid_dim: int = Field(512, **WIDE, description="width of each hidden layer")
    n_hidden: int = Field(2, ge=1, le=8, description="hidden fully connected layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout before each fully connected layer")
    input_norm: InputNorm = Field("robust", description="how it reads the latent first: robust (each dimension by "
                                  "its median and interquartile range, softly clipped, so a dimension the encoder "
                                  "shrinks weighs as much as any other and a few far-out latents cannot blind it), "
                                  "ranks (each dimension's rank within the batch: an attribute written in small "
                                  "offsets inside a dense band is read too), standard (mean and "
                                  "deviation: far-out latents fool it) or off")


class ClassifierParams(Params):
    init_fm: int = Field(16, **WIDE, description="feature maps of its first layer, doubling per layer")
    max_fm: int = Field(256, **WIDE, description="cap on its feature maps")
    hid_dim: int = Field(256, **WIDE, description="width of the hidden fully connected layer")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout before the hidden layer")


class PatchDiscriminatorParams(Params):
    n_layers: int = Field(3, ge=1, description="stride-2 convolutions before the per-patch logit; "
                          "at most log2(data.image_size) - 2")
    init_fm: int = Field(64, **WIDE, description="feature maps of its first layer, doubling per layer")
    max_fm: int = Field(512, **WIDE, description="cap on its feature maps")
