"""Small contract breaks: bad values exit 2 in one line, bare groups print usage on stderr,
`medsyn models NAME`, examples in every group's help."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli


def _error(proc, *needles) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


def test_data_info_refuses_an_unknown_axis():
    _error(run_cli("data", "info", "phantom:ct", "--axis", "diagonal"), "diagonal", "axial")


@pytest.mark.parametrize("flag,value", [("--channels", "0"), ("--res", "0"), ("--channels", "-1")])
def test_models_info_refuses_zero_and_negative(flag, value):
    _error(run_cli("models", "info", "dcgan", flag, value), value)


def test_weights_default_refuses_a_run_of_another_model(tmp_path):
    run = tmp_path / "dcgan-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": "medsyn-run-1", "model": "dcgan"}))
    _error(run_cli("weights", "default", "sag-gan", run), run, "dcgan", "sag-gan")
    ok = run_cli("weights", "default", "dcgan", run, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["model"] == "dcgan"
    empty = tmp_path / "empty"
    empty.mkdir()
    _error(run_cli("weights", "default", "dcgan", empty), empty, "not a medsyn run")


@pytest.mark.parametrize("args", [[], ["train"], ["sample"], ["translate"], ["edges"], ["eval"], ["eval", "fid"],
                                  ["data"], ["data", "prepare"], ["cache"], ["weights"]])
def test_bare_command_prints_usage_on_stderr_and_exits_2(args):
    r = run_cli(*args)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout)
    assert "Usage:" in r.stderr and "-h" in r.stderr


def test_models_name_shows_the_settings_and_their_rules():
    r = run_cli("models", "wgan")
    assert r.returncode == 0, r.stderr
    assert "n_critic" in r.stdout and ">= 1" in r.stdout and "layer|none" in r.stdout
    doc = json.loads(run_cli("models", "wgan-gp", "--json").stdout)  # an alias works too
    settings = {s["name"]: s for s in doc["settings"]}
    assert doc["name"] == "wgan" and settings["lr"]["allowed"] == "> 0" and settings["lr"]["default"] == 1e-4
    _error(run_cli("models", "no-such-gan"), "no-such-gan")
    assert run_cli("models", "info", "dcgan", "--json").returncode == 0  # sub-commands still win


@pytest.mark.parametrize("group", [[], ["eval"], ["data"], ["data", "prepare"], ["cache"], ["weights"], ["models"]])
def test_every_group_help_has_examples(group):
    r = run_cli(*group, "-h")
    assert r.returncode == 0 and "Examples" in r.stdout and "medsyn " in r.stdout.split("Examples", 1)[1]
