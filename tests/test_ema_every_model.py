"""``--set ema=true`` for every unconditional model: the trainer keeps an average of the generator,
exports and samples it, and leaves training itself untouched (the live weights are those of the
same run without the average, so the bench can compare the two at exactly equal cost).

The model list comes from the registry, so a new unconditional model must accept the setting too.
"""

from __future__ import annotations

import pytest
import torch

from conftest import run_cli

#: Per model, settings that make its networks small enough for a few CPU steps.
SMALL = {
    "dcgan": {"ngf": 8, "ndf": 8},
    "wgan": {"ngf": 8, "ndf": 8},
    "hagan": {"g_channels": 8, "d_channels": 8, "pixel_channels": 4, "max_channels": 32},
    "ct-kernel-wgan": {"widths": "32,16,8", "critic_widths": "8,16,32,64"},
    "wgan-linconv": {"widths": "32,16,8", "critic_widths": "8,16,32,64"},
}


def _unconditional() -> list[tuple[str, int]]:
    from medsyn_cli.registry import all_models

    return [(name, min(spec.resolutions)) for name, spec in all_models().items()
            if spec.task == "unconditional"]


UNCONDITIONAL = _unconditional()


def test_every_unconditional_model_has_an_ema_setting_off_by_default():
    from medsyn_cli.registry import all_models

    for name, _ in UNCONDITIONAL:
        config = all_models()[name].config_cls()
        assert getattr(config, "ema", None) is False, f"{name}: no `ema` setting, or on by default"


def _train(name: str, res: int, out, ema: bool):
    sets = [a for k, v in {**SMALL.get(name, {}), "ema": str(ema).lower()}.items() for a in ("--set", f"{k}={v}")]
    proc = run_cli("train", name, "--res", str(res), "--steps", "3", "--batch-size", "5", "--seed", "0",
                   "--ema-decay", "0.5", "--out", out, *sets)
    assert proc.returncode == 0, proc.stderr
    from medsyn_cli.training.checkpoint import load_checkpoint  # weights_only: loading runs no code

    return load_checkpoint(out / "checkpoints" / "latest.pt")


@pytest.mark.parametrize("name,res", UNCONDITIONAL, ids=[n for n, _ in UNCONDITIONAL])
def test_ema_is_exported_and_sampled_and_leaves_training_alone(name, res, tmp_path):
    from safetensors import safe_open

    averaged = _train(name, res, tmp_path / "ema", ema=True)
    plain = _train(name, res, tmp_path / "plain", ema=False)
    assert averaged["ema"]["updates"] == 3 and not plain.get("ema")
    live, reference = averaged["model_state"]["networks"], plain["model_state"]["networks"]
    for net, state in reference.items():  # the same steps were taken: the average is only watched
        assert all(torch.equal(v, live[net][k]) for k, v in state.items()), f"{name}: {net} differs"
    shadow = averaged["ema"]["networks"]["generator"]
    assert any(not torch.equal(v, live["generator"][k]) for k, v in shadow.items() if v.is_floating_point())
    with safe_open(str(tmp_path / "ema" / "weights.safetensors"), framework="pt") as fh:
        assert fh.metadata()["ema"] == "true"
        exported = {k.split(".", 1)[1]: fh.get_tensor(k) for k in fh.keys() if k.startswith("generator.")}
    assert exported and all(torch.equal(v, shadow[k]) for k, v in exported.items())
    sampled = run_cli("sample", tmp_path / "ema", "--n", "2", "--out", tmp_path / "samples")
    assert sampled.returncode == 0, sampled.stderr
    assert len(list((tmp_path / "samples").glob("*.png"))) == 2

    # --weights live: the average's own run gives the images of the run that kept none.
    from medsyn_cli.training.checkpoint import load_for_inference

    seeded = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    live_model, live_meta = load_for_inference(tmp_path / "ema", weights="live")
    plain_model, _ = load_for_inference(tmp_path / "plain")
    average_model, average_meta = load_for_inference(tmp_path / "ema")
    assert not live_meta["ema"] and average_meta["ema"]
    live_images = live_model.sample(2, seeded())
    assert torch.equal(live_images, plain_model.sample(2, seeded()))
    assert not torch.equal(live_images, average_model.sample(2, seeded()))


def test_sample_live_weights_from_the_cli_and_refused_where_only_the_average_is(tmp_path):
    run = tmp_path / "run"
    trained = run_cli("train", "dcgan", "--res", "64", "--steps", "2", "--batch-size", "4", "--out", run,
                      "--set", "ngf=8", "--set", "ndf=8", "--set", "ema=true")
    assert trained.returncode == 0, trained.stderr
    sampled = run_cli("sample", run, "--n", "2", "--weights", "live", "--out", tmp_path / "live")
    assert sampled.returncode == 0, sampled.stderr
    assert len(list((tmp_path / "live").glob("*.png"))) == 2
    refused = run_cli("sample", run / "weights.safetensors", "--n", "2", "--weights", "live",
                      "--out", tmp_path / "refused")
    assert refused.returncode == 2 and not (tmp_path / "refused").exists()
    message = refused.stderr.strip().splitlines()
    assert len(message) == 1 and "weights.safetensors" in refused.stderr and "average" in refused.stderr
