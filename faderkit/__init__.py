"""faderkit: attribute editing with Fader Networks (Lample et al., 2017).

Plugins write ``from faderkit import hookimpl, Entry, Params``. Users write
``faderkit.load("run/best.safetensors").edit(image, Smiling=0.8)``.
"""

import pluggy

from .errors import FaderkitError
from .params import Params
from .registry import Entry

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("faderkit")


def load(checkpoint, device: str = "cpu"):
    """Load a checkpoint for editing: returns a :class:`faderkit.editor.Editor`."""
    from .editor import Editor

    return Editor.load(checkpoint, device=device)


__all__ = ["hookimpl", "Entry", "Params", "FaderkitError", "load", "__version__"]
