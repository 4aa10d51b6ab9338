"""Speed settings that must not change what is trained or saved: Adam's fused kernel (also when resuming
a checkpoint written with the older per-parameter kernel), --channels-last and --compile (the same
checkpoint keys as a plain run, exact resume)."""

from __future__ import annotations

import json

import pytest
import torch

import medsyn_cli.model
from medsyn_cli.errors import TrainingError
from medsyn_cli.nn.adam_kernel import use_fast_kernels
from medsyn_cli.training.checkpoint import load_checkpoint
from medsyn_cli.training.plan import TrainFlags, resolve_plan
from test_resume import SMALL, assert_same, compare_runs
from test_train_tiny import random_images, train

torch.set_num_threads(1)
#: Twice the distance six Adam steps at dcgan's lr (2e-4) can move one weight.
LR_STEPS_6 = 2 * 6 * 2e-4
# fp32: the layouts are compared to float tolerance, which bf16 rounding (the CPU default where it is native) exceeds
# and the plain layout (dcgan's own is channels-last): the layout tests below name theirs
COMMON = dict(model="dcgan", batch_size=4, sets=SMALL, log_every=1, checkpoint_every=100, sample_every=2, amp=False,
              channels_last=False)
CHANNELS_LAST = {**COMMON, "channels_last": True}


def networks(run) -> dict:
    return load_checkpoint(run / "checkpoints" / "latest.pt")["model_state"]["networks"]


def assert_close_networks(a: dict, b: dict, atol: float, mean_atol: float = 1e-4) -> None:
    """Same keys; each value within ``atol``, and the mean difference of each tensor within ``mean_atol``.
    Adam moves a weight by about lr whatever the gradient's size, so a rounding difference can move a
    few weights by lr per step; a wrong layout or graph would move them all. BatchNorm's running
    statistics follow the activations, not Adam, and are left out."""
    assert a.keys() == b.keys()
    for net in a:
        assert a[net].keys() == b[net].keys(), net
        for k in (k for k in a[net] if "running_" not in k and "num_batches" not in k):
            diff = (a[net][k].float() - b[net][k].float()).abs()
            assert diff.max() <= atol and diff.mean() <= mean_atol, (net, k, diff.max().item(), diff.mean().item())


# -- Adam's kernel -------------------------------------------------------------------------------
def test_adam_on_the_cpu_takes_the_fused_kernel_with_the_same_update():
    torch.manual_seed(0)
    a = torch.nn.Linear(16, 8)
    b = torch.nn.Linear(16, 8)
    b.load_state_dict(a.state_dict())
    plain = torch.optim.Adam(a.parameters(), lr=1e-2, foreach=False)
    fast = torch.optim.Adam(b.parameters(), lr=1e-2, foreach=False)
    use_fast_kernels(fast, torch.device("cpu"))
    assert all(g["fused"] and not g["foreach"] for g in fast.param_groups)
    for _ in range(5):
        x = torch.randn(4, 16)
        for net, opt in ((a, plain), (b, fast)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6) and not torch.equal(p, torch.zeros_like(p))
    # Not an Adam, or a capturable one: left alone.
    sgd = torch.optim.SGD(a.parameters(), lr=0.1)
    use_fast_kernels(sgd, torch.device("cpu"))
    assert not sgd.param_groups[0].get("fused")


def test_a_checkpoint_written_with_the_old_adam_kernel_resumes_on_the_fused_one(tmp_path, monkeypatch):
    data = random_images(12, res=64)
    train(tmp_path / "straight", data, steps=6, **COMMON)

    def old_kernel(opt, device):  # what the code before the fused kernel left in the param groups
        for group in opt.param_groups:
            group["foreach"], group["fused"] = None, None

    with monkeypatch.context() as m:
        m.setattr(medsyn_cli.model, "use_fast_kernels", old_kernel)
        train(tmp_path / "old", data, steps=3, **COMMON)
    saved = load_checkpoint(tmp_path / "old" / "checkpoints" / "latest.pt")["model_state"]["optimizers"]
    assert saved["generator"]["param_groups"][0]["fused"] is None

    result, model = train(tmp_path / "old", data, steps=6, resume=True, **COMMON)
    assert result.step == 6
    for opt in model.optimizers.values():
        assert all(g["fused"] for g in opt.param_groups)
        assert all(s["step"].item() == 6 and s["step"].dtype == torch.float32 for s in opt.state.values())
    # Only the first three steps took the other kernel: the weights differ in the last bits at most.
    assert_close_networks(networks(tmp_path / "straight"), networks(tmp_path / "old"), atol=1e-5)


# -- --channels-last and --compile ---------------------------------------------------------------
def test_speed_flags_are_training_settings_recorded_in_the_run(tmp_path, monkeypatch):
    plan = resolve_plan(TrainFlags(model="hagan", out=str(tmp_path / "a"), compile=True))
    assert plan.settings.compile and not plan.settings.channels_last  # hagan's own layout: plain
    assert plan.as_dict()["training"]["compile"] is True
    assert plan.as_dict()["training"]["channels_last"] is False
    monkeypatch.setenv("MEDSYN_CHANNELS_LAST", "1")
    assert resolve_plan(TrainFlags(model="hagan", out=str(tmp_path / "b"))).settings.channels_last
    monkeypatch.delenv("MEDSYN_CHANNELS_LAST")
    assert resolve_plan(TrainFlags(model="dcgan", out=str(tmp_path / "c"))).settings.channels_last  # dcgan's own
    plain = resolve_plan(TrainFlags(model="dcgan", out=str(tmp_path / "d"), channels_last=False))
    assert not plain.settings.channels_last


def test_each_model_trains_in_the_layout_bench_train_measured_faster():
    """bench/README.md (bench_train.py --amp, two repeats): channels-last pays for dcgan and the WGAN-GP
    family in fp32 and bf16; it does not for hagan and costs the translation models at batch 1."""
    from medsyn_cli.registry import all_models

    layouts = {spec.name: spec.channels_last for spec in all_models().values()}
    assert {name for name, on in layouts.items() if on} == {"dcgan", "wgan", "ct-kernel-wgan", "wgan-linconv"}
    assert {"hagan", "sag-gan", "cyclegan"} <= {name for name, on in layouts.items() if not on}


def test_a_run_resumes_in_the_layout_it_was_started_in(tmp_path):
    train(tmp_path / "run", random_images(8, res=64), steps=1, **COMMON)
    resumed = resolve_plan(TrainFlags(model="dcgan", out=str(tmp_path / "run"), resume=True))
    assert resumed.settings.channels_last is False  # not dcgan's default: the layout the run was started in


def test_channels_last_trains_the_same_weights_under_the_same_keys_and_resumes_exactly(tmp_path):
    data = random_images(12, res=64)
    train(tmp_path / "plain", data, steps=6, **COMMON)
    _, model = train(tmp_path / "straight", data, steps=6, **CHANNELS_LAST)
    conv = next(p for p in model.networks["discriminator"].parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    train(tmp_path / "resumed", data, steps=3, **CHANNELS_LAST)
    train(tmp_path / "resumed", data, steps=6, resume=True, **{**COMMON, "channels_last": None})  # the run's kept
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["training"]["channels_last"] is True
    compare_runs(tmp_path / "straight", tmp_path / "resumed")
    assert_close_networks(networks(tmp_path / "plain"), networks(tmp_path / "straight"), atol=LR_STEPS_6)


def test_compile_that_cannot_work_stops_the_run_with_one_line(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        def fn(*a, **k):
            raise RuntimeError("InductorError: no C++ compiler found\nlong details")
        return fn

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(TrainingError) as err:
        train(tmp_path / "run", random_images(8, res=64), steps=1, compile=True, **COMMON)
    message = str(err.value)
    assert "--compile" in message and "no C++ compiler found" in message and "\n" not in message


@pytest.mark.slow
def test_compiled_dcgan_trains_saves_plain_keys_and_resumes_exactly(tmp_path):
    data = random_images(12, res=64)
    train(tmp_path / "plain", data, steps=4, **COMMON)
    _, model = train(tmp_path / "straight", data, steps=4, compile=True, **COMMON)
    assert all(getattr(net, "_compiled_call_impl", None) is not None for net in model.networks.values())
    train(tmp_path / "resumed", data, steps=2, compile=True, **COMMON)
    train(tmp_path / "resumed", data, steps=4, resume=True, **COMMON)
    compare_runs(tmp_path / "straight", tmp_path / "resumed")
    plain, compiled = (load_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("plain", "straight"))
    assert_same(jsonable_keys(plain["model_state"]), jsonable_keys(compiled["model_state"]))
    from safetensors import safe_open

    keys = []
    for run in ("plain", "straight"):
        with safe_open(str(tmp_path / run / "weights.safetensors"), "pt") as f:
            keys.append(sorted(f.keys()))
    assert keys[0] == keys[1] and not any("_orig_mod" in k for k in keys[1])
    assert_close_networks(plain["model_state"]["networks"], compiled["model_state"]["networks"], atol=LR_STEPS_6)


@pytest.mark.slow
def test_compiled_wgan_runs_its_gradient_penalty_eagerly(tmp_path):
    result, model = train(tmp_path / "run", random_images(12, res=64), steps=2, compile=True,
                          **{**COMMON, "model": "wgan"})
    assert result.step == 2
    losses = [json.loads(x)["losses"] for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in losses)


def jsonable_keys(state):
    """The nested keys of a state dict (values dropped)."""
    if isinstance(state, dict):
        return {k: jsonable_keys(v) for k, v in state.items()}
    return None
