"""Built-in plugin: toy faces, a synthetic CelebA-layout dataset that trains in minutes on a CPU."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_datasets():
    from .dataset import ToyFaces, ToyFacesParams  # imported here so that listing plugins stays fast

    return [Entry("toyfaces", ToyFaces, "Synthetic faces in the CelebA layout, generated on first use; renders counterfactuals",
                  params=ToyFacesParams)]


@hookimpl
def faderkit_face_locators():
    from .locate import ToyFaceLocator, ToyFaceLocatorParams

    return [Entry("toyfaces", ToyFaceLocator, "Toy faces at any rotation, scale and place: eyes from their white "
                  "sclera and dark iris", params=ToyFaceLocatorParams)]
