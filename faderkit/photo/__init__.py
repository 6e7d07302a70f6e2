"""Editing a photograph rather than a training-size crop: find its faces (:mod:`.faces`), align each like
the training data (:mod:`.align`), and put the model's change back at the photo's own resolution
(:mod:`.compose`). :class:`faderkit.editor.Editor` drives them."""
