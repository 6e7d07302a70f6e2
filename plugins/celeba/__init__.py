"""The CelebA dataset plugin: registers ``celeba`` through the same hook a third-party package would use."""

from faderkit import Entry, hookimpl

from .cache import ImageCacheParams
from .dataset import CelebA


@hookimpl
def faderkit_datasets():
    return [Entry("celeba", CelebA, "CelebA aligned faces: img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt",
                  params=ImageCacheParams)]
