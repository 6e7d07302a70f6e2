"""The built-in terms of the autoencoder's objective: the paper's and the published code's, and the levers of
docs/quality.md. They register through the same hook a third-party plugin uses."""

from faderkit import Entry, hookimpl

from .distance import LatentDistance, LatentShape
from .params import (CoarseParams, DistanceParams, EdgesParams, FrequencyParams, MaskParams, NoParams, ShapeParams,
                     SparseChangeParams, WeightedParams)
from .terms import (AdversaryTerm, AttributeWeighted, ChangeMaskPrior, ClassifierTerm, Coarse, Edges, FocalFrequency,
                    PatchTerm, Pixels, SparseChange)


@hookimpl
def faderkit_losses():
    return [
        Entry("mse", lambda env: Pixels("mse"), "the paper's reconstruction: mean squared error of D(E(x), y) and x",
              params=NoParams),
        Entry("l1", lambda env: Pixels("l1"), "reconstruction as the mean absolute error", params=NoParams),
        Entry("edges", Edges, "the reconstruction's neighbouring-pixel differences against x's (thin lines)",
              params=EdgesParams),
        Entry("coarse", Coarse, "the reconstruction's block averages against x's (colours and shading, which the "
              "edges' term cannot see)", params=CoarseParams),
        Entry("adversary", AdversaryTerm, "the latent adversary (Lample et al.): the discriminator's updates, and the "
              "encoder's term against it; weight = lambda_E, raised over train.adversary.lambda_warmup", params=NoParams),
        Entry("patch", PatchTerm, "a PatchGAN critic on images decoded with random attributes (published code; "
              "needs model.patch_discriminator)", params=NoParams),
        Entry("classifier", ClassifierTerm, "the run's frozen attribute classifier on images decoded with random "
              "attributes (published code)", params=NoParams),
        Entry("attribute_weighted", AttributeWeighted, "reconstruction weighted per pixel by where the attributes "
              "change images (|mean with - mean without| over the train split, MagGAN-style)", params=WeightedParams),
        Entry("focal_frequency", FocalFrequency, "focal frequency loss (Jiang et al. 2021): the error's spectrum, "
              "weighted towards the frequencies reconstructed worst", params=FrequencyParams),
        Entry("change_mask", ChangeMaskPrior, "for a decoder with a change head: the attribute mask kept sparse and "
              "smooth (GANimation's L1 and total variation)", params=MaskParams),
        Entry("latent_distance", LatentDistance, "latent invariance without a discriminator: for each attribute, the "
              "sliced Wasserstein distance between the latents of its values (batch + replay), read by median and "
              "interquartile range; shape > 0 also pulls each dimension towards a normal's shape", params=DistanceParams),
        Entry("latent_shape", LatentShape, "each latent dimension (by median and interquartile range) pulled towards a "
              "normal's shape: no dense band for an attribute to hide in from the adversary (docs/quality.md, "
              "eleventh round)", params=ShapeParams),
        Entry("sparse_change", SparseChange, "the edit's change D(E(x), y') - D(E(x), y) kept sparse (L1), nearly free "
              "where the flipped attributes change the train split's images: no faint blotches over cheeks and "
              "background", params=SparseChangeParams),
    ]
