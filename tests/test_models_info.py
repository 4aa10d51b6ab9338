"""`medsyn models info`: parameters and FLOPs per network, counted on a real forward pass."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from conftest import run_cli
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.plugins import load_plugins, pm
from medsyn_cli.registry import ModelSpec


@dataclass
class TinyConfig:
    latent_dim: int = 4
    lr: float = 1e-3


def _build_tiny(config, res, channels):
    from torch import nn

    from medsyn_cli.model import GANModel

    class Tiny(GANModel):
        def __init__(self):
            super().__init__(config, res, channels)
            self.networks = {
                "generator": nn.Linear(config.latent_dim, 8),  # 2*4*8 = 64 FLOPs, 40 parameters
                "discriminator": nn.Conv2d(channels, 2, 3, padding=1, bias=False),  # 2*res²*2*C*9 FLOPs
            }

    return Tiny()


def _build_paired(config, res, channels):
    import torch
    from torch import nn

    from medsyn_cli.model import GANModel

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, 5, bias=False)

        def forward(self, a, b):  # needs two inputs: the default convention cannot feed it
            return self.proj(a) + self.proj(b)

    class Paired(GANModel):
        task = "translation"

        def __init__(self):
            super().__init__(config, res, channels)
            self.networks = {"mixer": TwoInputs()}

        def example_inputs(self, network_name, batch=1):
            return (torch.zeros(batch, 3), torch.zeros(batch, 3))

    return Paired()


class TinyPlugin:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="tiny-info", task="unconditional", config_cls=TinyConfig, factory=_build_tiny,
                           summary="test", citation="none", resolutions=(8, 16), channels=(1, 3)))
        register(ModelSpec(name="paired-info", task="translation", config_cls=TinyConfig, factory=_build_paired,
                           summary="test", citation="none", resolutions=(8,), channels=(1,)))


@pytest.fixture
def tiny_plugin():
    load_plugins()
    plugin = TinyPlugin()
    pm.register(plugin, name="tiny-info-test")
    yield
    pm.unregister(plugin)


def invoke(*args: str):
    from medsyn_cli.cli import build_app

    return CliRunner().invoke(build_app(), list(args))


def test_counts_match_hand_computed_flops_and_parameters(tiny_plugin):
    r = invoke("models", "info", "tiny-info", "--res", "8", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    g, d = out["networks"]["generator"], out["networks"]["discriminator"]
    assert (g["parameters"], g["flops"], g["macs"]) == (40, 64, 32)
    assert g["inputs"] == [[1, 4]] and g["input_source"] == "default latent"
    assert (d["parameters"], d["flops"]) == (18, 2 * 8 * 8 * 2 * 1 * 9)
    assert d["inputs"] == [[1, 1, 8, 8]] and d["input_source"] == "default image"
    assert out["total_parameters"] == 58 and "example_inputs" in out["input_convention"]
    r16 = json.loads(invoke("models", "info", "tiny-info", "--res", "16", "--channels", "3", "--json").stdout)
    assert r16["networks"]["discriminator"]["flops"] == 2 * 16 * 16 * 2 * 3 * 9  # scales with res² and C


def test_example_inputs_feed_networks_with_other_signatures(tiny_plugin):
    out = json.loads(invoke("models", "info", "paired-info", "--json").stdout)
    mixer = out["networks"]["mixer"]
    assert mixer["input_source"] == "example_inputs" and mixer["inputs"] == [[1, 3], [1, 3]]
    assert mixer["flops"] == 2 * (2 * 3 * 5)  # two projections of 3 -> 5


def test_unsupported_resolution_and_unknown_model_are_usage_errors(tiny_plugin):
    from medsyn_cli.errors import InputError

    r = invoke("models", "info", "tiny-info", "--res", "64")
    assert isinstance(r.exception, InputError) and "does not support --res 64" in str(r.exception)
    r = run_cli("models", "info", "no-such-model")
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_builtin_model_table_and_listing_still_work():
    r = run_cli("models", "info", "dcgan", "--res", "64")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["network", "parameters"]
    assert any(line.startswith("generator") for line in lines) and any(line.startswith("discriminator") for line in lines)
    listing = run_cli("models", "--json")
    assert listing.returncode == 0 and any(m["name"] == "dcgan" for m in json.loads(listing.stdout)["models"])
