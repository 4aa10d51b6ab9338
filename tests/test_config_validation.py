"""Model settings are validated (types, ranges, finiteness) before anything is built or written."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

import pytest

from conftest import run_cli
from medsyn_cli.config import build_config
from medsyn_cli.config_rules import field_rules, validate_config
from medsyn_cli.errors import InputError
from medsyn_cli.registry import all_models

MODELS = sorted(all_models())
BUILTIN = {"dcgan", "wgan", "cyclegan", "sag-gan", "hagan", "ct-kernel-wgan"}


def _bad_values(tp, rules: dict) -> list[str]:
    """Values for ``--set`` that break a field's type or one of its rules."""
    base = next((t for t in (tp, *typing.get_args(tp)) if t in (int, float, bool, str)), None)
    bad: list[str] = []
    if base is float:
        bad += ["nan", "inf", "-inf", "abc", "true"]
    if base is int:
        bad += ["abc", "1.5", "true"]
    if base is bool:
        bad += ["maybe", "2"]
    step = 1 if base is int else 0.5
    if "gt" in rules:
        bad += [str(rules["gt"]), str(rules["gt"] - step)]
    if "min" in rules:
        bad.append(str(rules["min"] - step))
    if "lt" in rules:
        bad += [str(rules["lt"]), str(rules["lt"] + step)]
    if "max" in rules:
        bad.append(str(rules["max"] + step))
    if "choices" in rules or "items" in rules:
        bad.append("no-such-value")
    if rules.get("odd"):
        bad.append(str(max(2, rules.get("min", 2) + 1) // 2 * 2))
    if "length" in rules:
        bad.append(",".join(["0.5"] * (rules["length"] + 1)))
    return bad


def _cases():
    for name in MODELS:
        cls = all_models()[name].config_cls
        hints = typing.get_type_hints(cls)
        rules = field_rules(cls)
        for f in dataclasses.fields(cls):
            for value in _bad_values(hints[f.name], rules[f.name]):
                yield pytest.param(name, f.name, value, id=f"{name}-{f.name}={value}")


def test_every_field_of_every_model_has_bad_values_to_try():
    for name in MODELS:
        cls = all_models()[name].config_cls
        hints = typing.get_type_hints(cls)
        rules = field_rules(cls)
        for f in dataclasses.fields(cls):
            assert _bad_values(hints[f.name], rules[f.name]), f"{name}.{f.name} has no checkable rule"


@pytest.mark.parametrize("model", sorted(BUILTIN))
def test_every_number_of_a_builtin_model_has_a_lower_bound(model):
    """Built-in models declare a range for every numeric setting (generic by name, or metadata)."""
    cls = all_models()[model].config_cls
    hints = typing.get_type_hints(cls)
    for name, rules in field_rules(cls).items():
        base = next((t for t in (hints[name], *typing.get_args(hints[name])) if t in (int, float, bool)), None)
        if base in (int, float):
            assert "min" in rules or "gt" in rules, f"{model}.{name} has no lower bound"


@pytest.mark.parametrize("model", MODELS)
def test_defaults_are_valid(model):
    spec = all_models()[model]
    validate_config(build_config(spec.config_cls, {}, model=model), model)


@pytest.mark.parametrize("model,key,value", list(_cases()))
def test_bad_value_is_refused_naming_the_setting(model, key, value):
    spec = all_models()[model]
    with pytest.raises(InputError) as info:
        build_config(spec.config_cls, {key: value}, model=model)
    assert key in info.value.one_line()
    assert info.value.exit_code == 2


@pytest.mark.parametrize("model,key,value", [
    ("dcgan", "lr", "1e-3"), ("dcgan", "beta1", "0"), ("wgan", "n_critic", "1"),
    ("hagan", "latent_dim", "0"), ("hagan", "warmup_steps", "-1"), ("hagan", "policy", "color,cutout"),
    ("ct-kernel-wgan", "kernel_size", "5"), ("ct-kernel-wgan", "betas", "0,0.99"),
    ("cyclegan", "lambda_identity", "0"), ("sag-gan", "pool_size", "0"),
])
def test_good_edge_values_are_accepted(model, key, value):
    spec = all_models()[model]
    build_config(spec.config_cls, {key: value}, model=model)


def test_toml_boolean_is_not_a_number():
    with pytest.raises(InputError, match="lr"):
        build_config(all_models()["dcgan"].config_cls, {"lr": True})


@dataclass
class _ThirdPartyConfig:
    lr: float = 0.1
    beta2: float = 0.9
    ngf: int = 8
    lambda_rec: float = 1.0
    steps_per_cycle: int = field(default=2, metadata={"min": 1})
    off_at: int = -1  # a -1 sentinel stays legal without metadata
    gain: float = field(default=0.5, metadata={"max": 1.0})


@pytest.mark.parametrize("key,value", [("lr", "0"), ("beta2", "1"), ("ngf", "0"), ("lambda_rec", "-1"),
                                       ("steps_per_cycle", "0"), ("off_at", "nan"), ("gain", "1.5"), ("gain", "nan")])
def test_generic_rules_cover_a_config_without_metadata(key, value):
    with pytest.raises(InputError, match=key):
        build_config(_ThirdPartyConfig, {key: value})
    assert build_config(_ThirdPartyConfig, {"off_at": "-1"}).off_at == -1


def test_hagan_policy_names_match_diffaugment():
    from medsyn_cli.nn.diffaugment import POLICIES
    from medsyn_plugins.hagan import DIFFAUGMENT_POLICIES

    assert tuple(DIFFAUGMENT_POLICIES) == tuple(POLICIES)


@pytest.mark.parametrize("args", [
    ["--lr", "nan"], ["--lr", "-1"], ["--lr", "inf"], ["--set", "beta1=2"], ["--set", "ngf=0"],
    ["--set", "latent_dim=-3"], ["--set", "ngf=wide"],
])
def test_train_refuses_bad_setting_before_creating_the_run(tmp_path, args):
    out = tmp_path / "run"
    r = run_cli("train", "dcgan", "--steps", "2", "-b", "4", "--device", "cpu", "--out", out, *args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_setting_in_a_config_file_is_refused(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nbeta2 = 1.5\n")
    r = run_cli("train", "wgan", "--config", cfg, "--out", tmp_path / "run", "--dry-run")
    assert r.returncode == 2 and "beta2" in r.stderr
