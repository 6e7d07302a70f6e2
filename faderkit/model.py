"""Assembling a Fader Network (and its attribute classifier) from a recipe through the registries."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .changemaps import LocalMask, MaskSetting, attribute_masks, edit_mask
from .codes import blocks, labels_to_code
from .errors import FaderkitError
from .interfaces import ArchSpec, Attribute, Classifier, Decoder, Discriminator, Encoder, ImageDiscriminator
from .modes import DEFAULT_MODE, OUTPUT_MODES, check_mode, edited  # noqa: F401  (their old home: evaluate/ imports them here)
from .plugins import registries
from .recipe import Component, Recipe


def _create(kind: str, component: Component, arch: ArchSpec, expected: type):
    try:
        module = registries()[kind].create(component.name, arch, params=component.params)
    except TypeError as exc:  # a component without a params model: a misspelled param is an unexpected keyword
        raise FaderkitError(f"{kind} '{component.name}': bad params {component.params}: {exc}") from None
    if not isinstance(module, expected):
        raise FaderkitError(f"{kind} '{component.name}' built a {type(module).__name__}, not a {expected.__name__}")
    return module


def arch_spec(recipe: Recipe, attributes: Sequence[Attribute]) -> ArchSpec:
    m = recipe.model
    return ArchSpec(recipe.data.image_size, tuple(attributes), m.n_layers, m.init_fm, m.max_fm)


class FaderModel(nn.Module):
    """Encoder E, decoder D and latent discriminator P, with the attributes they were built for."""

    def __init__(self, encoder: Encoder, decoder: Decoder, discriminator: Discriminator,
                 attributes: Sequence[Attribute]):
        super().__init__()
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.attributes = tuple(attributes)
        # (A, S, S): where each attribute changes the training images (faderkit.changemaps), stored in checkpoints
        # beside the weights, not in the state_dict (older checkpoints have none); None: unknown
        self.register_buffer("change_maps", None, persistent=False)
        #: how the local mode masks an edit (faderkit.changemaps.MaskSetting)
        self.mask_setting = MaskSetting()
        self._masks = None

    @classmethod
    def build(cls, recipe: Recipe, attributes: Sequence[Attribute]) -> "FaderModel":
        arch = arch_spec(recipe, attributes)
        encoder = _create("encoder", recipe.model.encoder, arch, Encoder)
        arch = arch.with_latent(encoder.latent_shape)
        decoder = _create("decoder", recipe.model.decoder, arch, Decoder)
        shapes = encoder.feature_shapes(arch.image_size) if decoder.receives != (-1,) else [encoder.latent_shape]
        try:
            read = shapes[min(decoder.receives)]
        except IndexError:
            raise FaderkitError(f"decoder '{recipe.model.decoder.name}' reads encoder map {min(decoder.receives)} "
                                f"of {len(shapes)}") from None
        # the adversary reads the shallowest map the decoder receives (z itself without skips)
        discriminator = _create("discriminator", recipe.model.discriminator, arch.with_latent(read), Discriminator)
        return cls(encoder, decoder, discriminator, attributes)

    def adversary_input(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The map the latent discriminator reads: the shallowest one the decoder receives."""
        return feats[min(self.decoder.receives)]

    def received(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Every map the decoder receives, by its (negative) index: what must carry no attribute."""
        return {i: feats[i] for i in sorted(self.decoder.receives, reverse=True)}

    def code(self, labels: torch.Tensor) -> torch.Tensor:
        return labels_to_code(labels, self.attributes)

    def reconstruct(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x), code)

    def edit_mask(self, code: torch.Tensor, target: torch.Tensor) -> LocalMask | None:
        """The ``local`` output mode's mask of the change from ``code`` to ``target`` (B, code size): where the change
        maps of the attributes whose block moves let it be, and how the image's own change is kept there
        (:attr:`mask_setting`); None without maps."""
        if self.change_maps is None:
            return None
        st = self.mask_setting
        if self._masks is None or self._masks[0] is not self.change_maps or self._masks[1] != (st.threshold, st.grow):
            self._masks = (self.change_maps, (st.threshold, st.grow),
                           attribute_masks(self.change_maps.float(), st.threshold, st.grow))
        moved = torch.stack([(target[:, s] - code[:, s]).abs().amax(1) > 1e-6 for s in blocks(self.attributes)], 1)
        return LocalMask(edit_mask(self._masks[2], moved), st)

    def encode(self, x: torch.Tensor, labels: torch.Tensor) -> "Encoded":
        """``x`` encoded once, with its own code and reconstruction, for decoding with attributes swapped."""
        return Encoded(self, x, labels)


class Encoded:
    """A batch encoded once: the encoder's maps ``feats``, the code of its own ``labels`` and the reconstruction
    D(E(x), y). :meth:`swapped` decodes it with one attribute's block of the code replaced: the edit that sample
    grids, validation and evaluation make."""

    def __init__(self, model: FaderModel, x: torch.Tensor, labels: torch.Tensor):
        self.model = model
        self.feats = model.encoder(x)
        self.code = model.code(labels)
        self.recon = model.decoder(self.feats, self.code)

    def swapped_code(self, i: int, block: torch.Tensor) -> torch.Tensor:
        """y' = y with attribute ``i``'s block set to ``block`` (per image, or one for all)."""
        code = self.code.clone()
        code[:, blocks(self.model.attributes)[i]] = block
        return code

    def swapped(self, i: int, block: torch.Tensor) -> torch.Tensor:
        """D(E(x), y') for y' = :meth:`swapped_code`."""
        return self.model.decoder(self.feats, self.swapped_code(i, block))

    def mask(self, i: int, block: torch.Tensor) -> torch.Tensor | None:
        """The ``local`` mode's mask of that swap (:meth:`FaderModel.edit_mask`)."""
        return self.model.edit_mask(self.code, self.swapped_code(i, block))


def build_classifier(recipe: Recipe, attributes: Sequence[Attribute]) -> Classifier:
    c = recipe.classifier
    return _create("classifier", Component(name=c.name, params=c.params), arch_spec(recipe, attributes), Classifier)


def build_patch_discriminator(recipe: Recipe, attributes: Sequence[Attribute]) -> ImageDiscriminator | None:
    comp = recipe.model.patch_discriminator
    if comp is None:
        return None
    return _create("image_discriminator", comp, arch_spec(recipe, attributes), ImageDiscriminator)
