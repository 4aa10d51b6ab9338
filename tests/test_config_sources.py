"""No traceback from any config source, and every bad value names where it came from: the flag, the file
and its key, or the MEDSYN_* variable (issue 39, cases 6 and 9, and the `steps='abc'` item of 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

DRY = ["train", "dcgan", "--dry-run"]


def user_toml(home: Path, content: bytes | str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def one_line(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsyn: error:") and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("content, says", [
    (b"[train]\nsteps = \xff\n", "not valid TOML: not UTF-8 text"),
    ("train = 5\n", "train = 5: expected a table, [train]"),
    ("sample = [1]\n", "sample = [1]: expected a table"),
    ("[train]\nsteps = 3\n[train]\n", "not valid TOML"),
    ('[train]\nres = "abc"\n', '[train] res = "abc": expected an integer'),
    ("[train]\nres = 64.5\n", "[train] res = 64.5: expected an integer"),
    ("[train]\ndevice = 5\n", "[train] device = 5: expected text"),
    ("[train]\ncheckpoint_every = 0\n", "[train] checkpoint_every = 0: checkpoint-every must be a positive integer"),
    ('[train]\nsteps = "abc"\n', "[train] steps"),
    ("[train]\nsteps = -5\n", "[train] steps"),
    ('[train]\nlr = "x"\n', '[train] lr = "x": expected a number'),
    ('[train]\namp = "maybe"\n', '[train] amp = "maybe": expected true, false or auto'),
])
def test_a_bad_user_config_is_one_line_naming_the_file_and_key(medsyn_home, content, says):  # case 6
    path = user_toml(medsyn_home, content)
    one_line(run_cli(*DRY), str(path), says)


@pytest.mark.parametrize("var, value, says", [
    ("MEDSYN_STEPS", "abc", "MEDSYN_STEPS"),
    ("MEDSYN_STEPS", "0", "MEDSYN_STEPS"),
    ("MEDSYN_CHECKPOINT_EVERY", "0", "MEDSYN_CHECKPOINT_EVERY='0': checkpoint-every must be a positive integer"),
    ("MEDSYN_RES", "abc", "MEDSYN_RES='abc': expected an integer"),
    ("MEDSYN_LR", "-1", "(from MEDSYN_LR)"),
    ("MEDSYN_AMP", "maybe", "MEDSYN_AMP='maybe': expected true, false or auto"),
    ("MEDSYN_EMA_DECAY", "5", "MEDSYN_EMA_DECAY='5'"),
    ("MEDSYN_DEVICE", "tpu", "MEDSYN_DEVICE='tpu': unknown --device"),
    ("MEDSYN_RES", "48", "MEDSYN_RES='48': model 'dcgan' does not support --res 48"),
    ("MEDSYN_CHANNELS", "2", "MEDSYN_CHANNELS='2'"),
    ("MEDSYN_FIT", "zoom", "MEDSYN_FIT='zoom': unknown --fit"),
    ("MEDSYN_RECIPE", "turbo", "MEDSYN_RECIPE='turbo': model 'dcgan' has no recipe"),
])
def test_a_bad_environment_variable_is_named(var, value, says):  # case 11: steps='abc' from where?
    one_line(run_cli(*DRY, env={var: value}), says)


@pytest.mark.parametrize("content, says", [
    ("train = 5\n", "train = 5: expected a table"),
    ("steps = 3\n", "unknown key 'steps' at the top (expected the tables [train], [model])"),
    (b"\xff", "not UTF-8"),
    ('[train]\nsteps = "abc"\n', "[train] steps"),
    ("[train]\nlog_every = 0\n", "[train] log_every = 0: log-every must be a positive integer"),
    ('[model]\nngf = "wide"\n', "(from [model] ngf"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_key(tmp_path, content, says):
    path = tmp_path / "exp.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    one_line(run_cli(*DRY, "--config", path), str(path), says)


def test_a_flag_value_is_named_as_the_flag():
    one_line(run_cli(*DRY, "--checkpoint-every", "0"), "checkpoint-every must be a positive integer")
    one_line(run_cli(*DRY, "--set", "ngf=wide"), "(from --set)")


def test_unknown_top_level_keys_warn_once_and_the_run_goes_on(medsyn_home):  # case 9
    path = user_toml(medsyn_home, "steps = 3\n[train]\nbatch_size = 4\n")
    proc = run_cli(*DRY)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert warnings == [f"medsyn: warning: {path}: unknown top-level key 'steps' ignored (medsyn reads the tables "
                        "[train], [sample], [data]; training settings such as steps go under [train])"]
    assert '"batch_size": 4' in proc.stdout


def test_setting_names_each_source(medsyn_home, monkeypatch, tmp_path):
    from medsyn_cli.config import setting
    from medsyn_cli.errors import InputError

    def positive(v):
        if v < 1:
            raise InputError("must be positive")
        return v

    path = user_toml(medsyn_home, "[sample]\nn = 0\n")
    with pytest.raises(InputError) as info:
        setting("n", None, 5, cast=int, section="sample", check=positive)
    assert info.value.path == str(path) and info.value.message == "[sample] n = 0: must be positive"
    with pytest.raises(InputError, match=r"\[sample\] n = true: expected an integer"):
        setting("n", None, 5, cast=int, section="sample", file=(tmp_path / "f.toml", {"n": True}))
    monkeypatch.setenv("MEDSYN_N", "-2")
    with pytest.raises(InputError, match="MEDSYN_N='-2': must be positive"):
        setting("n", None, 5, cast=int, section="sample", check=positive)
    assert setting("n", 7, 5, cast=int, section="sample", check=positive) == 7


def test_a_misspelled_train_key_in_config_toml_warns_naming_the_likely_key(medsyn_home):
    path = user_toml(medsyn_home, "[train]\nstesp = 3\nbatch_size = 4\n")
    proc = run_cli(*DRY)
    assert proc.returncode == 0, proc.stderr
    assert f"medsyn: warning: {path}: unknown key 'stesp' in [train] (did you mean 'steps'?), ignored" in proc.stderr
    assert '"batch_size": 4' in proc.stdout


def test_a_misspelled_train_key_in_a_config_file_is_refused(tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text("[train]\nbatchsize = 4\n")
    proc = run_cli("train", "dcgan", "--config", str(cfg), "--dry-run", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "exp.toml: unknown key 'batchsize' in [train] (did you mean 'batch_size'?)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_the_train_table_knows_every_setting_the_trainer_reads():
    import dataclasses

    from medsyn_cli.config import TABLE_KEYS
    from medsyn_cli.training.plan import TrainSettings

    fields = {f.name for f in dataclasses.fields(TrainSettings)} - {"per_rank_batch_size", "world_size"}
    assert fields <= TABLE_KEYS["train"], fields - TABLE_KEYS["train"]
