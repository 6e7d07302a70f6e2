"""The Oxford-102 flowers plugin: registers ``oxford102`` (colour attributes from the Reed et al. captions)."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_datasets():
    from .dataset import Oxford102, Oxford102Params  # imported here so that listing plugins stays fast

    return [Entry("oxford102", Oxford102,
                  "Oxford-102 flowers: jpg/, imagelabels.mat, setid.mat; colours from text_c10/ captions (5 of 10)",
                  params=Oxford102Params)]
