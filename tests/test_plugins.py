"""The plugin system: in-process registration, entry-point discovery, isolation of broken plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from medsyn_cli import registry
from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.plugins import pm

BUILTIN = {"dcgan", "wgan", "cyclegan", "sag-gan", "hagan", "ct-kernel-wgan"}


@dataclass
class _ThrowawayConfig:
    lr: float = 0.1


class _ThrowawayPlugin:
    __name__ = "throwaway"

    @hookimpl
    def register_models(self, register):
        register(registry.ModelSpec(
            name="throwaway-gan", aliases=("tg",), task="unconditional", config_cls=_ThrowawayConfig,
            factory=lambda config, res, channels: None, summary="fixture model", citation="none"))


@pytest.fixture
def throwaway_plugin():
    plugin = _ThrowawayPlugin()
    pm.register(plugin, name="throwaway")
    try:
        yield plugin
    finally:
        pm.unregister(name="throwaway")


def test_throwaway_plugin_is_listed_and_found_by_alias(throwaway_plugin):
    assert "throwaway-gan" in registry.all_models()
    spec = registry.get_model("TG")
    assert spec.name == "throwaway-gan" and spec.plugin == "throwaway"
    assert spec.default_config() == {"lr": 0.1}


def test_unregistered_plugin_is_gone(throwaway_plugin):
    pm.unregister(name="throwaway")
    try:
        assert "throwaway-gan" not in registry.all_models()
    finally:
        pm.register(throwaway_plugin, name="throwaway")


def test_unknown_model_names_the_known_ones():
    with pytest.raises(InputError) as info:
        registry.get_model("no-such-gan")
    assert "no-such-gan" in info.value.one_line() and "dcgan" in info.value.one_line()


def test_lookup_ignores_case_and_underscores():
    assert registry.get_model("SAG_GAN").name == "sag-gan"
    assert registry.get_model("ct_kernel_wgan").name == "ct-kernel-wgan"


def test_spec_rejects_unknown_task():
    with pytest.raises(ValueError):
        registry.ModelSpec(name="x", task="segmentation", config_cls=_ThrowawayConfig,
                           factory=lambda *a: None, summary="", citation="")


def test_builtin_models_come_through_entry_points():
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    names = {m["name"] for m in json.loads(r.stdout)["models"]}
    assert BUILTIN <= names
    assert "failed" not in r.stderr


def test_load_plugins_env_restricts_loading():
    r = run_cli("models", "--json", env={"MEDSYN_LOAD_PLUGINS": "dcgan"})
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)["models"]] == ["dcgan"]
    r = run_cli("models", "--json", env={"MEDSYN_LOAD_PLUGINS": ""})
    assert json.loads(r.stdout)["models"] == []


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory) -> Path:
    """The tiny third-party distribution in tests/plugin_dist, pip-installed into a temp target."""
    target = tmp_path_factory.mktemp("hello-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "tests" / "plugin_dist")],
        check=True, capture_output=True, text=True)
    return target


def _with_path(site: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_installed_distribution_is_discovered(hello_site):
    r = run_cli("models", "--json", env=_with_path(hello_site))
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert models["hello-gan"]["plugin"] == "hello"
    assert BUILTIN <= set(models)
    plugins = {p["name"]: p for p in json.loads(run_cli("plugins", "--json", env=_with_path(hello_site)).stdout)["plugins"]}
    assert plugins["hello"]["distribution"] == "medsyn-hello"
    assert set(plugins["hello"]["hooks"]) == {"register_models", "register_commands"}


def test_plugin_adds_a_subcommand(hello_site):
    r = run_cli("hello", "--name", "scans", env=_with_path(hello_site))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello scans"


def _broken_site(tmp_path: Path, body: str) -> Path:
    (tmp_path / "medsyn_broken.py").write_text(textwrap.dedent(body))
    info = tmp_path / "medsyn_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medsyn-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[medsyn]\nbroken = medsyn_broken\n")
    return tmp_path


def test_plugin_that_raises_on_import_is_reported_and_isolated(tmp_path):
    site = _broken_site(tmp_path, "raise RuntimeError('missing CUDA toolkit')\n")
    r = run_cli("models", "--json", env=_with_path(site))
    assert r.returncode == 0
    assert "'broken'" in r.stderr and "missing CUDA toolkit" in r.stderr
    assert r.stderr.count("missing CUDA toolkit") == 1
    assert BUILTIN <= {m["name"] for m in json.loads(r.stdout)["models"]}
    plugins = json.loads(run_cli("plugins", "--json", env=_with_path(site)).stdout)["plugins"]
    assert any(p["name"] == "broken" and "missing CUDA toolkit" in p["error"] for p in plugins)


def test_plugin_whose_registration_raises_is_isolated(tmp_path):
    site = _broken_site(tmp_path, """
        from medsyn_cli.hookspecs import hookimpl

        @hookimpl
        def register_models(register):
            raise ValueError("bad spec")
    """)
    r = run_cli("models", "--json", env=_with_path(site))
    assert r.returncode == 0
    assert "'broken'" in r.stderr and "bad spec" in r.stderr
    assert BUILTIN <= {m["name"] for m in json.loads(r.stdout)["models"]}


class _HalfBrokenPlugin:
    """Registers one dataset, then raises: the half-done registration must not show."""

    @hookimpl
    def register_datasets(self, register):
        register("half", lambda *a: None)
        raise RuntimeError("disk gone")

    @hookimpl
    def register_commands(self, app):
        raise RuntimeError("no app for you")


def test_collect_isolates_a_failing_hook_reports_it_once_and_drops_its_registrations(capsys):
    from medsyn_cli import plugins
    from medsyn_cli.data.datasets import plugin_datasets

    pm.register(_HalfBrokenPlugin(), name="half-broken")
    try:
        assert "half" not in plugin_datasets()
        assert plugins.collect("register_datasets", lambda name, loader: name) == []
        assert "half-broken" in plugins.failed
    finally:
        pm.unregister(name="half-broken")
        plugins.failed.pop("half-broken", None)
    err = capsys.readouterr().err
    assert err.count("plugin 'half-broken' failed in register_datasets: RuntimeError: disk gone") == 1


def test_a_bad_registration_is_the_plugins_failure_not_the_hosts(throwaway_plugin, capsys):
    class _NotASpec:
        @hookimpl
        def register_models(self, register):
            register("not a spec")

    pm.register(_NotASpec(), name="not-a-spec")
    try:
        models = registry.all_models()
    finally:
        pm.unregister(name="not-a-spec")
    assert "throwaway-gan" in models
    assert "plugin 'not-a-spec' failed in register_models: TypeError" in capsys.readouterr().err


def test_failing_register_commands_leaves_the_cli_working(tmp_path):
    site = _broken_site(tmp_path, """
        from medsyn_cli.hookspecs import hookimpl

        @hookimpl
        def register_commands(app):
            raise RuntimeError("typer too old")
    """)
    r = run_cli("models", "--json", env=_with_path(site))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("plugin 'broken' failed in register_commands: RuntimeError: typer too old") == 1
    assert BUILTIN <= {m["name"] for m in json.loads(r.stdout)["models"]}
