"""A wheel built from the repository ships the host, every built-in model and their entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import ROOT

PLUGINS = ("dcgan", "wgan", "cyclegan", "sag_gan", "hagan", "ct_kernel_wgan")


def test_wheel_contains_builtin_plugins_and_entry_points(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, text=True)
    (wheel,) = tmp_path.glob("medsyn-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "medsyn_cli/cli/__init__.py" in names
    assert not any(n.startswith("plugins/") for n in names), "repository folder name must not leak"
    for plugin in PLUGINS:
        assert f"medsyn_plugins/{plugin}/__init__.py" in names
        assert f"medsyn_plugins/{plugin}/model.py" in names
        assert f"{plugin} = medsyn_plugins.{plugin}" in entry_points
    assert "[console_scripts]\nmedsyn = medsyn_cli.cli:main" in entry_points
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
