"""Built-in plugin: toy flowers, a synthetic Oxford-102-layout dataset whose petal colour is the attribute."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_datasets():
    from .dataset import ToyFlowers, ToyFlowersParams  # imported here so that listing plugins stays fast

    return [Entry("toyflowers", ToyFlowers,
                  "Synthetic flowers in the Oxford-102 layout with noisy colour captions, generated on first use; "
                  "renders other colours", params=ToyFlowersParams)]
