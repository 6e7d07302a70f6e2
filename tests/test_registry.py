import inspect

import pluggy
import pytest
from click.testing import CliRunner

from faderkit import Entry, FaderkitError, hookimpl, hookspecs
from faderkit.cli import cli
from faderkit.plugins import KINDS, collect, make_plugin_manager, registries
from faderkit.registry import Registry


def test_registry_lists_creates_and_names_choices_for_unknown():
    reg = Registry("widget")
    reg.add(Entry("beta", lambda k=1: ("beta", k)))
    reg.add(Entry("alpha", lambda: "alpha"))
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("b*") == ["beta"]
    assert reg.create("beta", k=3) == ("beta", 3)
    with pytest.raises(FaderkitError, match="unknown widget 'gamma'; choose one of: alpha, beta"):
        reg.create("gamma")


def test_registry_refuses_duplicate_names():
    reg = Registry("widget")
    reg.add(Entry("a", object, plugin="one"))
    with pytest.raises(FaderkitError, match="registered twice.*one.*two"):
        reg.add(Entry("a", object, plugin="two"))


def test_builtins_register_through_entry_points():
    regs = registries()
    assert {"paper", "toyfaces", "celeba"} <= set(regs.plugins)
    assert "celeba" in regs.datasets and "toyfaces" in regs.datasets
    assert "paper" in regs["encoder"] and "paper" in regs["decoder"]
    assert "latent" in regs["discriminator"] and "paper" in regs["classifier"]


def test_a_third_party_plugin_object_registers_and_is_attributed():
    class Mine:
        @hookimpl
        def faderkit_datasets(self):
            return [Entry("mine", object, "my data")]

    regs = collect(make_plugin_manager([Mine()], autoload=False))
    assert regs.datasets.get("mine").plugin.startswith("")  # registered under pluggy's name
    assert ("dataset", "mine") in [item for items in regs.plugins.values() for item in items]


def test_two_plugins_with_one_name_is_an_error():
    class A:
        @hookimpl
        def faderkit_encoders(self):
            return [Entry("same", object)]

    class B(A):
        pass

    with pytest.raises(FaderkitError, match="registered twice"):
        collect(make_plugin_manager([A(), B()], autoload=False))


def test_misspelled_hook_is_rejected():
    class Typo:
        @hookimpl
        def faderkit_dataset(self):  # missing the final s
            return []

    with pytest.raises(pluggy.PluginValidationError):
        make_plugin_manager([Typo()], autoload=False)


def test_every_hook_is_documented_and_has_a_registry():
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("faderkit_")]
    assert sorted(hooks) == sorted(KINDS.values())
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ":returns:" in doc, f"{name} does not say what it returns"


def test_plugins_command_lists_what_each_plugin_registers():
    result = CliRunner().invoke(cli, ["plugins"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for word in ("paper", "toyfaces", "celeba", "latent", "classifier"):
        assert word in result.output
