"""The CelebA dataset plugin: registers ``celeba`` through the same hook a third-party package would use."""

from faderkit import Entry, hookimpl

from .cache import ImageCacheParams
from .dataset import CelebA


@hookimpl
def faderkit_datasets():
    return [Entry("celeba", CelebA, "CelebA aligned faces as downloaded: the original (img_align_celeba/, list_attr_celeba.txt, "
                  "list_eval_partition.txt), the Kaggle copy (CSV) or torchvision's celeba/; the folder or its parent",
                  params=ImageCacheParams)]
