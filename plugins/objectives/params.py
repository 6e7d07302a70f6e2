"""What each built-in loss term accepts as ``params`` in a recipe's ``train.objective.losses``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from faderkit import Params

Kind = Literal["mse", "l1"]


class NoParams(Params):
    pass


class EdgesParams(Params):
    kind: Kind = Field("mse", description="the loss on the neighbouring-pixel differences")


class CoarseParams(Params):
    kind: Kind = Field("mse", description="the loss on the block averages")
    pool: int = Field(4, ge=2, le=64, description="the blocks' side in pixels (4: a 64 px image read at 16 x 16)")


class WeightedParams(Params):
    kind: Kind = Field("mse", description="the per-pixel loss that is weighted")
    strength: float = Field(4.0, ge=0, le=1000, description="how much more a pixel where the attributes change images "
                            "weighs than one where they never do (weights 1 + strength x map, then scaled to mean 1)")
    images: int = Field(4000, ge=2, le=1_000_000, description="train images the map is averaged over")
    focus: float = Field(0.0, ge=0, le=4, description="each pixel's loss also weighted by its own error to this power "
                         "(detached, scaled to mean 1 over the batch): 0 the plain loss; 2 weighs a missed stroke as "
                         "an L4 loss would, at the mse's scale (L1 is -1: it made thin features fainter)")


class FrequencyParams(Params):
    alpha: float = Field(1.0, ge=0, le=10, description="how strongly the weights follow the current error spectrum "
                         "(0: a plain loss on the spectrum)")


class MaskParams(Params):
    sparsity: float = Field(1.0, ge=0, description="weight of the mask's mean (the change kept small in area)")
    smoothness: float = Field(1.0, ge=0, description="weight of the mask's total variation (no speckle)")
    follow_change: float = Field(0.0, ge=0, le=1000, description="0: every pixel's mask costs the same; > 0: a "
                                 "pixel's mask costs 1 / (1 + follow_change x the attributes' change map), so large "
                                 "attributes (hair, beard) may open large masks where they draw and nowhere else")
    images: int = Field(4000, ge=2, le=1_000_000, description="follow_change: train images the map is averaged over")


class DistanceParams(Params):
    projections: int = Field(64, ge=0, le=100_000, description="random directions the latents are read along, "
                             "drawn anew each step (sliced Wasserstein)")
    axes: bool = Field(True, description="also read every latent dimension alone (axes off and projections 0: "
                       "no distance, the shape prior alone)")
    replay: int = Field(8, ge=0, le=1000, description="steps whose latents (detached) join the batch's in each "
                        "value's group: a rare value needs more than a batch")
    warmup: int = Field(500, ge=0, description="steps over which the weight rises linearly from 0")
    shape: float = Field(0.0, ge=0, le=1000, description="weight of each standardised dimension's distance from a "
                         "normal's shape: no dense band of a dimension where an attribute could hide in tiny "
                         "differences")


class ShapeParams(Params):
    replay: int = Field(8, ge=0, le=1000, description="steps whose latents (detached) join the batch's: the "
                        "median, quartiles and shape of each dimension are read over them all")
    warmup: int = Field(500, ge=0, description="steps over which the weight rises linearly from 0")


class SparseChangeParams(Params):
    follow: float = Field(20.0, ge=0, le=1000, description="0: every pixel's change costs the same; > 0: a pixel "
                          "costs 1 / (1 + follow x the change maps of the attributes the target flips), so an edit is "
                          "nearly free where those attributes change the train split's images")
    images: int = Field(4000, ge=2, le=1_000_000, description="follow: train images the maps are averaged over")
    warmup: int = Field(500, ge=0, description="steps over which the weight rises linearly from 0")
    flip: Literal["random", "one"] = Field("random", description="random: price the decode of random target "
                                           "attributes (shared with the patch and classifier terms); one: each image "
                                           "with one attribute changed, as a slider edits (a decode of its own)")
