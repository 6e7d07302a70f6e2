"""faderkit-example-plugin: registers the ``stripes`` dataset through the ``faderkit`` entry-point group.

Installed (``pip install -e plugins/example_plugin``), faderkit finds this module through the entry
point declared in this package's pyproject.toml and calls its hooks. In a notebook or a test,
``faderkit.plugins.register(faderkit_stripes, "stripes")`` does the same in-process.
"""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_datasets():
    from .dataset import Stripes, StripesParams  # imported lazily: `faderkit plugins` stays fast

    return [Entry("stripes", Stripes, "Example plugin: synthetic stripes (Vertical, Thick), drawn in memory",
                  params=StripesParams)]
