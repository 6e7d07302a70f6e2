"""The paper's architecture: encoder, decoder, latent discriminator and attribute classifier."""

from faderkit import Entry, hookimpl

from .networks import (LatentDiscriminator, MLPDiscriminator, PaperClassifier, PaperDecoder, PaperEncoder,
                       PatchDiscriminator)
from .params import (ClassifierParams, DecoderParams, EncoderParams, LatentDiscriminatorParams,
                     MLPDiscriminatorParams, PatchDiscriminatorParams)


@hookimpl
def faderkit_encoders():
    return [Entry("paper", PaperEncoder, "Conv4x4/stride 2/BatchNorm/LeakyReLU(0.2) stack",
                  params=EncoderParams)]


@hookimpl
def faderkit_decoders():
    return [Entry("paper", PaperDecoder,
                  "Mirror of the encoder, code tiled into every layer; upsampling, skips and dropout "
                  "of the published code", params=DecoderParams)]


@hookimpl
def faderkit_discriminators():
    return [Entry("latent", LatentDiscriminator, "The paper's: one conv layer + FC 512 + FC n on the latent, dropout 0.3 "
                  "(input_norm: standardise the latent first)", params=LatentDiscriminatorParams),
            Entry("mlp", MLPDiscriminator, "The latent standardised per dimension, then an MLP (hid_dim, n_hidden, "
                  "dropout): as strong a reader as eval's latent probe", params=MLPDiscriminatorParams)]


@hookimpl
def faderkit_image_discriminators():
    return [Entry("patch", PatchDiscriminator, "PatchGAN on decoded images (published code's optional loss)",
                  params=PatchDiscriminatorParams)]


@hookimpl
def faderkit_classifiers():
    return [Entry("paper", PaperClassifier, "Conv+BN attribute classifier on images (for edit and eval)",
                  params=ClassifierParams)]
