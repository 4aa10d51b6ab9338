"""Inference under bf16 autocast: `medsyn sample`, `medsyn translate` and `load_for_inference` follow the
training rule (auto: on where the device computes bf16 natively); outputs are float32 and close to the
float32 ones for every registered model; `--no-amp` gives the float32 result exactly; metric features
stay float32 inside a caller's autocast."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from medsyn_cli.config import build_config
from medsyn_cli.registry import all_models, get_model
from medsyn_cli.training import device as device_mod
from medsyn_cli.training.checkpoint import load_for_inference
from medsyn_cli.training.device import amp_choice
from medsyn_cli.training.export import export_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest

BUILTIN = sorted(all_models())  # every registered model, both tasks
TINY_SAG = {"ngf": "4", "ndf": "4", "attention_ngf": "4", "se_reduction": "4", "n_blocks": "1"}


def build(name: str, res: int | None = None, overrides: dict | None = None):
    spec = get_model(name)
    res = res or min(spec.resolutions)
    torch.manual_seed(0)
    return spec, spec.factory(build_config(spec.config_cls, overrides or {}), res, 1).eval()


def export_run(model, run_dir, name: str, task: str):
    """A run folder holding weights.safetensors, as the trainer leaves it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    states = {k: model.networks[k].state_dict() for k in model.inference_networks}
    window = {"kind": "percentile", "low": 0.5, "high": 99.5, "lo_value": 0.0, "hi_value": 1.0}
    export_weights(run_dir / "weights.safetensors", states, model=name, task=task, res=model.res,
                   channels=model.channels, step=1, config=dataclasses.asdict(model.config),
                   intensity={"normal": window, "tumor": window} if task == "translation" else {"kind": "uint8"},
                   ema=False)
    return run_dir


def outputs(model, task: str) -> torch.Tensor:
    """What `medsyn sample` / `medsyn translate` draw from the generator, for a fixed seed."""
    with torch.inference_mode():
        if task == "unconditional":
            return model.sample(4, generator=torch.Generator().manual_seed(0))
        x = torch.rand(2, model.channels, model.res, model.res, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return model.translate(x, "tumor")[0]


@pytest.mark.parametrize("name", BUILTIN)
def test_bf16_outputs_are_float32_and_close_to_float32_and_no_amp_is_float32_exactly(name, tmp_path):
    spec, model = build(name)
    reference = outputs(model, spec.task)  # built directly: autocast is a no-op, float32
    run = export_run(model, tmp_path / "run", name, spec.task)
    fp32, meta_off = load_for_inference(run, amp=False)
    bf16, meta_on = load_for_inference(run, amp=True)
    assert (meta_off["amp"], meta_on["amp"]) == (False, True)
    assert torch.equal(outputs(fp32, spec.task), reference)
    got = outputs(bf16, spec.task)
    assert got.dtype == torch.float32 and got.shape == reference.shape
    assert not torch.equal(got, reference)  # the autocast really ran
    diff = float((got - reference).abs().mean())
    # absolute in [-1, 1], and relative: an untrained generator's outputs can be small
    assert diff < 0.05 and diff < 0.05 * float(reference.abs().mean()), (diff, float(reference.abs().mean()))


def test_auto_follows_the_training_rule_and_library_callers_keep_float32(tmp_path, monkeypatch):
    spec, model = build("dcgan", overrides={"ngf": "8", "ndf": "8", "latent_dim": "16"})
    run = export_run(model, tmp_path / "run", "dcgan", spec.task)
    assert load_for_inference(run)[1]["amp"] is False  # metrics and the yardsticks measure in float32
    _, meta = load_for_inference(run, amp=None)
    assert (meta["amp"], meta["amp_reason"]) == amp_choice(torch.device("cpu"), None)
    monkeypatch.setattr(device_mod, "cpu_bf16", lambda: None)
    assert load_for_inference(run, amp=None)[1]["amp"] is False
    assert load_for_inference(run, amp=True)[1]["amp"] is True  # forced
    monkeypatch.setattr(device_mod, "cpu_bf16", lambda: "avx512_bf16")
    monkeypatch.setattr(device_mod, "bf16_speedup", lambda: 1.8)
    _, meta = load_for_inference(run, amp=None)
    assert (meta["amp"], meta["amp_reason"]) == (True, "auto: CPU with avx512_bf16, bf16 measured 1.80x fp32")
    monkeypatch.setattr(device_mod, "bf16_speedup", lambda: 0.6)  # the flag, but slower: float32
    assert load_for_inference(run, amp=None)[1]["amp"] is False


def _sample(capsys, run, out, **kw):
    from medsyn_cli.cli.sample import sample

    args = dict(n=3, fmt="npy", seed=0, batch_size=64, device="cpu", as_json=True, force=False, weights="last",
                amp=None)
    args.update(kw)
    capsys.readouterr()
    sample(source=str(run), out=str(out), **args)
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    return torch.from_numpy(np.stack([np.load(r["path"]) for r in records])), records, captured.err


def test_sample_amp_flags_and_environment(capsys, tmp_path, monkeypatch):
    spec, model = build("dcgan", overrides={"ngf": "8", "ndf": "8", "latent_dim": "16"})
    reference = outputs(model, spec.task)[:3]
    run = export_run(model, tmp_path / "run", "dcgan", spec.task)
    images, records, err = _sample(capsys, run, tmp_path / "off", amp=False)
    assert torch.equal(images, reference) and {r["amp"] for r in records} == {False}
    assert "fp32: --no-amp" in err
    images, records, err = _sample(capsys, run, tmp_path / "on", amp=True)
    assert {r["amp"] for r in records} == {True} and "bf16 autocast: --amp" in err
    assert not torch.equal(images, reference) and float((images - reference).abs().mean()) < 0.05
    monkeypatch.setenv("MEDSYN_AMP", "false")  # the training setting's variable turns it off here too
    images, records, _ = _sample(capsys, run, tmp_path / "env")
    assert torch.equal(images, reference) and records[0]["amp"] is False
    monkeypatch.setenv("MEDSYN_AMP", "maybe")
    from medsyn_cli.errors import InputError

    with pytest.raises(InputError, match="MEDSYN_AMP"):
        _sample(capsys, run, tmp_path / "bad")


def test_translate_amp_flags(tmp_path):
    spec, model = build("sag-gan", res=32, overrides=TINY_SAG)
    run = export_run(model, tmp_path / "run", "sag-gan", spec.task)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "in.png")
    env = {"OMP_NUM_THREADS": "1"}
    seen = {}
    for flag in ("--no-amp", "--amp"):
        out = tmp_path / f"out{flag}.png"
        r = run_cli("translate", "--to", "tumor", tmp_path / "in.png", "--model", run, "-o", out, "--json", flag,
                    env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["amp"] is (flag == "--amp")
        assert ("bf16 autocast" if flag == "--amp" else "fp32: --no-amp") in r.stderr
        seen[flag] = np.asarray(Image.open(out), dtype=np.int16)
    # 8-bit outputs: bf16 moves a grey level here and there, not the picture
    assert np.abs(seen["--amp"] - seen["--no-amp"]).mean() < 0.05 * 255


def test_metric_features_stay_float32_inside_a_callers_autocast():
    from medsyn_cli.metrics.features import FeatureExtractor
    from medsyn_cli.metrics.inputs import ArrayPart, ImageInput

    class Pool3(torch.nn.Module):  # stands in for the Inception network: a conv, then 2048 pooled features
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 2048, 8, stride=8)

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    extractor = FeatureExtractor(weights=None, device="cpu", batch_size=4, workers=1)
    extractor._model = Pool3().to(memory_format=torch.channels_last)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    images = ImageInput("test", [ArrayPart(pixels, "test")], {"array"})
    plain, _ = extractor.extract(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # e.g. a training run scoring FID at a log step
        inside, _ = extractor.extract(images)
    assert inside.dtype == np.float32 and np.array_equal(plain, inside)
