"""Built-in plugin: the ``mtcnn`` face locator for photographs (five landmarks), weights from a PyPI package."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_face_locators():
    from .locator import MTCNNLocator, MTCNNParams  # imported here so that listing plugins stays fast

    return [Entry("mtcnn", MTCNNLocator, "Photographs: MTCNN (Zhang et al. 2016), five landmarks; weights from the "
                  "'mtcnn' package (pip install 'faderkit[faces]')", params=MTCNNParams)]
