"""The paper's architecture: encoder, decoder, latent discriminator and attribute classifier."""

from faderkit import Entry, hookimpl

from .networks import LatentDiscriminator, PaperClassifier, PaperDecoder, PaperEncoder, PatchDiscriminator


@hookimpl
def faderkit_encoders():
    return [Entry("paper", PaperEncoder, "Conv4x4/stride 2/BatchNorm/LeakyReLU(0.2) stack (norm: batch|instance)")]


@hookimpl
def faderkit_decoders():
    return [Entry("paper", PaperDecoder,
                  "Mirror of the encoder, code tiled into every layer (upsample: deconv|nearest|pixelshuffle, "
                  "norm, dropout, n_skip)")]


@hookimpl
def faderkit_discriminators():
    return [Entry("latent", LatentDiscriminator, "One conv layer + FC 512 + FC n on the latent, dropout 0.3")]


@hookimpl
def faderkit_image_discriminators():
    return [Entry("patch", PatchDiscriminator, "PatchGAN on decoded images (published code's optional loss)")]


@hookimpl
def faderkit_classifiers():
    return [Entry("paper", PaperClassifier, "Conv+BN attribute classifier on images (for edit and eval)")]
