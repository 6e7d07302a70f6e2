"""What an edit returns: the output modes, defined once for the library, ``edit --mode``, the console's
``/api/model`` and its page. A new mode is one more :class:`OutputMode` here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import FaderkitError


@dataclass(frozen=True)
class OutputMode:
    """One way of showing an edit.

    ``adds_change``: the output is the input plus the change the decoder makes, D(z, y') - D(z, y),
    so what the edit leaves alone keeps the input's own detail; else it is the decoder's image D(z, y')
    itself. ``whole_photo``: the output is the input at its own size, the change mapped back over
    each face (or the crop); else it is the model's own S x S square. ``help`` is ``edit --mode``'s
    text, ``note`` the few words the console's page shows beside the choice. ``floor`` (with
    ``adds_change``): the change's faint part is dropped, see :func:`quiet`. ``local`` (with ``adds_change``):
    the change is kept where the moved attributes change the training images (:mod:`faderkit.changemaps`; a
    checkpoint without change maps keeps all of it).
    """

    name: str
    adds_change: bool
    whole_photo: bool
    help: str
    note: str
    floor: float = 0.0
    local: bool = False

    def as_json(self) -> dict:
        return asdict(self)


#: The modes, the default first (local: the residual's progress with a fraction of its change outside the
#: attribute, and higher flip PSNR: docs/quality.md, thirteenth round).
MODES: tuple[OutputMode, ...] = (
    OutputMode("local", adds_change=True, whole_photo=True, local=True,
               help="residual with the change kept where the attributes you move change the training images (their "
                    "change maps, stored in the checkpoint when it was trained) and, there, where the change is at "
                    "least a tenth of the image's own largest: the faint blotches over background and cheeks are "
                    "dropped, the attribute's own stroke kept (a checkpoint without maps: residual)",
               note="the whole photo, changed only where the attribute draws"),
    OutputMode("residual", adds_change=True, whole_photo=True,
               help="the input at its own size plus the change the model makes (what the edit leaves alone keeps "
                    "its detail)",
               note="the whole photo, changed where the model looks"),
    OutputMode("clean", adds_change=True, whole_photo=True, floor=4 / 255,
               help="residual without the faint change the decoder spreads over the face and background: a pixel "
                    "whose change is under 4/255 (mean over its channels) keeps the input, the others change by "
                    "that much less",
               note="the whole photo, faint change dropped"),
    OutputMode("decoded", adds_change=False, whole_photo=False,
               help="the model's own S x S image (the paper's output)",
               note="the model's own square, as in the paper"),
)
OUTPUT_MODES: tuple[str, ...] = tuple(m.name for m in MODES)
DEFAULT_MODE: str = OUTPUT_MODES[0]


def output_mode(name: str | OutputMode | None) -> OutputMode:
    """The mode called ``name`` (None: the default); an unknown name is a one-line error listing the modes."""
    if isinstance(name, OutputMode):
        return name
    for mode in MODES:
        if mode.name == (name or DEFAULT_MODE):
            return mode
    raise FaderkitError(f"unknown output mode '{name}'; choose one of: {', '.join(OUTPUT_MODES)}")


def check_mode(name: str | None) -> str:
    return output_mode(name).name


def quiet(change, floor: float):
    """``change`` (B, 3, S, S) in the model's [-1, 1] units without its faint part: each pixel's change shrunk by
    ``floor`` (a mean over channels, in [0, 1] image units), a pixel under it left unchanged. A soft threshold, so
    the edit has no seam where the change crosses it."""
    if floor <= 0:
        return change
    size = change.abs().mean(1, keepdim=True)
    return change * (1 - 2 * floor / size.clamp_min(1e-12)).clamp_min(0)


def kept(change, mode: OutputMode, mask=None):
    """What of the change D(z, y') - D(z, y) an ``adds_change`` mode adds: without its faint part (``floor``),
    and what ``mask`` keeps of it in a ``local`` mode (a :class:`faderkit.changemaps.LocalMask`; None: all of it)."""
    change = quiet(change, mode.floor)
    return mask.keep(change) if mode.local and mask is not None else change


def edited(x, recon, decoded, mode: str | OutputMode, mask=None):
    """The edit of images ``x`` in [-1, 1], given D(z, y) (``recon``) and D(z, y') (``decoded``); ``mask``: the local
    mode's (:meth:`faderkit.model.FaderModel.edit_mask`)."""
    mode = output_mode(mode)
    return (x + kept(decoded - recon, mode, mask)).clamp(-1, 1) if mode.adds_change else decoded
