"""Model plugins share code only through the host: no built-in plugin imports (or names as a lazy factory
"package.module:Class") another model plugin."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file())


def test_every_builtin_plugin_is_checked():
    assert {"dcgan", "wgan", "hagan", "cyclegan", "sag_gan", "ct_kernel_wgan"} <= set(PLUGINS)


def referenced_modules(source: str) -> list[str]:
    """Modules a plugin file imports, and the modules its ``"package.module:Class"`` strings name."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value:
            names.append(node.value.partition(":")[0])
    return names


def test_referenced_modules_sees_imports_and_factory_strings():
    source = 'import medsyn_plugins.a\nfrom medsyn_plugins.b import x\nf = "medsyn_plugins.c.model:C"\n'
    assert referenced_modules(source) == ["medsyn_plugins.a", "medsyn_plugins.b", "medsyn_plugins.c.model"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugin_imports_only_itself_and_the_host(plugin):
    paths = sorted((ROOT / "plugins" / plugin).rglob("*.py"))
    assert paths
    for path in paths:
        for name in referenced_modules(path.read_text()):
            if name.startswith("medsyn_plugins"):
                assert name == f"medsyn_plugins.{plugin}" or name.startswith(f"medsyn_plugins.{plugin}."), \
                    f"{path.relative_to(ROOT)} imports {name}"


def test_lazy_factories_import_the_model_module_only_when_a_model_is_built():
    import subprocess
    import sys

    code = ("import sys; from medsyn_cli.registry import all_models, get_model; specs = all_models(); "
            "print(sorted(m for m in sys.modules if m.startswith('medsyn_plugins.') and m.count('.') > 1), "
            "'torch' in sys.modules); get_model('dcgan').factory(get_model('dcgan').config_cls(), 64, 1); "
            "print('medsyn_plugins.dcgan.model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[] False", "True"]


def test_a_factory_string_must_name_module_and_class():
    from medsyn_cli.registry import LazyFactory, ModelSpec
    from medsyn_plugins.dcgan import DCGANConfig

    spec = ModelSpec(name="x", task="unconditional", config_cls=DCGANConfig, summary="", citation="",
                     factory="medsyn_plugins.dcgan.model:DCGAN")
    assert spec.factory == LazyFactory("medsyn_plugins.dcgan.model:DCGAN")
    assert type(spec.factory(DCGANConfig(ngf=8, ndf=8), 64, 1)).__name__ == "DCGAN"
    with pytest.raises(ValueError, match="package.module:Class"):
        LazyFactory("medsyn_plugins.dcgan.model.DCGAN")
