"""Every hook a faderkit plugin can implement. Each returns a list of registry entries.

A plugin writes ``from faderkit import hookimpl, Entry`` and implements any of these; the
built-in plugins in ``plugins/`` use exactly the same hooks, found through the ``faderkit``
entry-point group.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("faderkit")


@hookspec
def faderkit_datasets():
    """Attribute datasets.

    :returns: a list of :class:`faderkit.Entry` whose factory is an
        :class:`faderkit.interfaces.AttributeDataset` subclass.
    """


@hookspec
def faderkit_encoders():
    """Image encoders.

    :returns: a list of :class:`faderkit.Entry`; ``factory(arch, **params)`` returns an
        :class:`faderkit.interfaces.Encoder`.
    """


@hookspec
def faderkit_decoders():
    """Decoders that rebuild an image from the latent and the attribute code.

    :returns: a list of :class:`faderkit.Entry`; ``factory(arch, **params)`` returns a
        :class:`faderkit.interfaces.Decoder`.
    """


@hookspec
def faderkit_discriminators():
    """Latent discriminators that predict the attributes from the latent.

    :returns: a list of :class:`faderkit.Entry`; ``factory(arch, **params)`` returns a
        :class:`faderkit.interfaces.Discriminator`.
    """


@hookspec
def faderkit_image_discriminators():
    """Image discriminators (e.g. PatchGAN) for the optional adversarial loss on decoded images.

    :returns: a list of :class:`faderkit.Entry`; ``factory(arch, **params)`` returns an
        :class:`faderkit.interfaces.ImageDiscriminator`.
    """


@hookspec
def faderkit_classifiers():
    """Attribute classifiers on images, used by ``edit`` to infer unset attributes and by ``eval``.

    :returns: a list of :class:`faderkit.Entry`; ``factory(arch, **params)`` returns a
        :class:`faderkit.interfaces.Classifier`.
    """


@hookspec
def faderkit_face_locators():
    """Face locators, used by ``edit`` to find and align the faces of a photo like the training data.

    :returns: a list of :class:`faderkit.Entry`; ``factory(**params)`` returns a
        :class:`faderkit.interfaces.FaceLocator`.
    """


@hookspec
def faderkit_losses():
    """Terms of the autoencoder's objective, listed in a recipe's ``train.objective.losses`` with their weights.

    :returns: a list of :class:`faderkit.Entry`; ``factory(env, **params)`` returns a
        :class:`faderkit.train.objective.LossTerm` (``env``: a :class:`faderkit.train.objective.TermEnv`).
    """


@hookspec
def faderkit_executors():
    """Sweep executors, which run the jobs of ``faderkit sweep`` (see :mod:`faderkit.sweep.executors`).

    :returns: a list of :class:`faderkit.Entry`; ``factory(jobs=N, **params)`` returns an object with
        ``run(jobs, done)`` that calls :func:`faderkit.sweep.jobs.execute` on every job, wherever it
        likes, and ``done(result)`` in the calling process as each finishes (a job it loses:
        ``done(faderkit.sweep.jobs.lost(job, stage, error))``). ``params`` come from ``faderkit sweep
        -x KEY=VALUE``.
    """
