"""What a training run leaves behind and how it stops: the run directory, EMA, the NaN guard, signals,
translation batches and grids. In-process with throwaway models so each test takes about a second."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from conftest import run_cli
from medsyn_cli.errors import InputError, TrainingError
from medsyn_cli.training.checkpoint import load_checkpoint, load_for_inference
from test_train_tiny import RES, TinyGAN, random_images, tiny_models, train, two_domains  # noqa: F401

ENV = {"OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}


def test_run_directory_layout(tiny_models, tmp_path, medsyn_home):
    out = tmp_path / "run"
    result, model = train(out, random_images(20), steps=7, batch_size=4, checkpoint_every=2, sample_every=3,
                          log_every=2, seed=3)
    assert result.exit_code == 0 and result.step == 7

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "tiny-gan" and cfg["res"] == RES and cfg["channels"] == 1
    assert cfg["model_config"]["lr"] == 1e-3 and cfg["training"]["seed"] == 3
    assert cfg["training"]["steps"] == 7 and cfg["training"]["batch_size"] == 4
    assert cfg["data"]["count"] == 20 and cfg["data"]["intensity"] == {"kind": "uint8"}
    assert {"medsyn", "torch", "python"} <= set(cfg["versions"])

    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stats] == [2, 4, 6, 7]  # every --log-every steps and the last
    assert set(stats[0]["losses"]) == {"loss_d", "loss_g"} and stats[0]["lr"]["generator"] == 1e-3
    assert stats[-1]["epoch"] == pytest.approx(7 / 5) and stats[-1]["images_per_s"] > 0
    assert stats[-1]["seconds"] >= stats[0]["seconds"] > 0
    assert "step 7/7" in (out / "log.txt").read_text()

    # Periodic checkpoints 2, 4, 6 and the final 7; only the last three step files are kept.
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["latest.pt", "step-000004.pt", "step-000006.pt", "step-000007.pt"]
    latest = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert latest["step"] == 7 and latest["epoch"] == 1 and latest["position"] == 2
    assert latest["data_fingerprint"] and latest["intensity"] == {"kind": "uint8"}
    assert set(latest["rng"][0]) >= {"torch", "numpy", "python"}

    grids = sorted(p.name for p in (out / "samples").iterdir())
    assert grids == ["step-000003.png", "step-000006.png", "step-000007.png"]
    with Image.open(out / "samples" / "step-000007.png") as im:
        assert im.mode == "L" and im.size[0] == 8 * RES + 9 * 2  # 64 samples, 8 per row, 2 px padding
    assert (out / "loss.png").stat().st_size > 1000

    with safe_open(str(out / "weights.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        keys = set(fh.keys())
    assert meta["model"] == "tiny-gan" and meta["res"] == str(RES) and meta["channels"] == "1"
    assert json.loads(meta["config"])["latent_dim"] == 8 and json.loads(meta["intensity"]) == {"kind": "uint8"}
    assert keys == {f"generator.{k}" for k in model.networks["generator"].state_dict()}

    runs = (medsyn_home / "data" / "runs.jsonl").read_text().splitlines()
    assert json.loads(runs[-1])["run"] == str(out.resolve()) and json.loads(runs[-1])["step"] == 7


def test_fixed_noise_grids_do_not_disturb_training(tiny_models, tmp_path):
    """Sample grids draw from their own generator and fork the RNG: the weights are the same with or without them."""
    data = random_images(12)
    _, with_grids = train(tmp_path / "a", data, steps=4, sample_every=1)
    _, without = train(tmp_path / "b", data, steps=4, sample_every=1000)
    for name, net in with_grids.networks.items():
        for (k, a), b in zip(net.state_dict().items(), without.networks[name].state_dict().values()):
            assert torch.equal(a, b), (name, k)


def test_exported_weights_load_for_inference_and_sample_like_the_model(tiny_models, tmp_path):
    out = tmp_path / "run"
    _, model = train(out, random_images(12), steps=3)
    for source in (out, out / "weights.safetensors", out / "checkpoints" / "latest.pt"):
        loaded, meta = load_for_inference(source)
        assert meta["model"] == "tiny-gan" and meta["res"] == RES and meta["step"] == 3 and meta["channels"] == 1
        assert not loaded.networks["generator"].training
        a = loaded.sample(4, generator=torch.Generator().manual_seed(1))
        b = model.sample(4, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b)


def test_load_for_inference_names_a_bad_file(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputError, match="broken.pt"):
        load_for_inference(bad)
    with pytest.raises(InputError, match="not a medsyn run directory"):
        load_for_inference(tmp_path)
    (tmp_path / "w.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="w.safetensors"):
        load_for_inference(tmp_path / "w.safetensors")


def test_ema_is_kept_checkpointed_and_exported(tiny_models, tmp_path):
    out = tmp_path / "run"
    _, model = train(out, random_images(12), steps=5, sets=["ema=true"], ema_decay=0.5)
    ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert ckpt["ema"]["updates"] == 5 and ckpt["ema"]["decay"] == 0.5
    ema_weight = ckpt["ema"]["networks"]["generator"]["0.weight"]
    live_weight = model.networks["generator"].state_dict()["0.weight"]
    assert not torch.equal(ema_weight, live_weight)  # an average, not a copy
    loaded, meta = load_for_inference(out)
    assert meta["ema"] and torch.equal(loaded.networks["generator"].state_dict()["0.weight"], ema_weight)
    # The live weights are untouched by the EMA swap used for grids.
    assert torch.equal(live_weight, ckpt["model_state"]["networks"]["generator"]["0.weight"])


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tiny_models, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(out, random_images(12), steps=10, checkpoint_every=2, log_every=1, sets=["nan_at=4"], lr=0.01)
    message = str(info.value)  # step index 4 is step 5, one past the checkpoint at step 4
    latest = out / "checkpoints" / "latest.pt"
    assert message.startswith("step 5: loss loss_d is nan; last good checkpoint at ")
    assert str(latest) in message and "(step 4)" in message and "try a lower --lr" in message
    assert TrainingError.exit_code == 1 and info.value.exit_code == 1
    ckpt = load_checkpoint(latest)
    assert ckpt["step"] == 4
    assert all(torch.isfinite(t).all() for net in ckpt["model_state"]["networks"].values() for t in net.values())
    assert not (out / "checkpoints" / "step-000005.pt").exists()
    assert not (out / "weights.safetensors").exists()  # nothing exported from a broken run
    assert "stopped: step 5" in (out / "log.txt").read_text()


def test_nan_guard_through_the_cli_exits_1_with_one_line(tiny_models, tmp_path, monkeypatch, capsys):
    import sys

    from medsyn_cli.cli import main
    from medsyn_cli.training import trainer

    monkeypatch.setattr(trainer, "load_data", lambda plan, ctx: random_images(8))
    monkeypatch.setattr(sys, "argv", ["medsyn", "train", "tiny-gan", "--res", str(RES), "--out", str(tmp_path / "r"),
                                      "--steps", "5", "--batch-size", "4", "--device", "cpu", "--set", "nan_at=0"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medsyn: error: step 1: loss loss_d is nan; no checkpoint was written yet")


def test_nan_before_any_checkpoint_says_so(tiny_models, tmp_path):
    with pytest.raises(TrainingError, match="step 1: loss loss_d is nan; no checkpoint was written yet"):
        train(tmp_path / "run", random_images(12), steps=5, sets=["nan_at=0"])


@pytest.mark.parametrize("name, exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_signal_finishes_the_step_saves_and_tells_how_to_resume(tiny_models, tmp_path, monkeypatch,
                                                                        name, exit_code):
    sig = getattr(signal, name)
    handler = signal.getsignal(sig)
    sets = []
    if name == "SIGINT":
        sets = ["signal_at=2"]  # TinyGAN presses Ctrl-C in the middle of step index 2
    else:
        original = TinyGAN.train_step

        def signalled(self, batch, step, epoch=0):
            losses = original(self, batch, step, epoch)
            if step == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-run, as from `kill` or a scheduler
            return losses

        monkeypatch.setattr(TinyGAN, "train_step", signalled)
    out = tmp_path / "run"
    result, _ = train(out, random_images(16), steps=50, batch_size=4, checkpoint_every=100, sets=sets)
    assert result.exit_code == exit_code and result.step == 3
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 3
    assert "\n" not in result.message and f"--out {out} --resume" in result.message
    assert signal.getsignal(sig) is handler  # the handler is removed again
    # The stopped run resumes to its total.
    result, _ = train(out, random_images(16), steps=5, batch_size=4, resume=True)
    assert result.exit_code == 0 and result.step == 5
    assert [r["step"] for r in map(json.loads, (out / "stats.jsonl").read_text().splitlines())][-1] == 5


def test_translation_batches_are_unpaired_and_grids_show_attention(tiny_models, tmp_path):
    data = two_domains(n_normal=6, n_tumor=13)
    out = tmp_path / "run"
    result, model = train(out, data, model="tiny-translator", steps=5, batch_size=3, sample_every=5)
    assert result.exit_code == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["batches_per_epoch"] == 4  # max(6, 13) // 3: the smaller domain cycles
    assert cfg["data"]["count"] == {"normal": 6, "tumor": 13}
    first = model.batches[0]
    assert set(first) == {"normal", "tumor", "tumor_mask", "tumor_has_mask"}
    assert first["tumor_mask"].shape == (3, 1, RES, RES) and first["tumor_has_mask"].dtype == torch.bool
    tumor_ids = [b["tumor"][:, 0, 0, 0].mul(1000).round().long() for b in model.batches[:4]]
    normal_ids = [b["normal"][:, 0, 0, 0].mul(1000).round().long() for b in model.batches[:2]]
    assert len(set(torch.cat(tumor_ids).tolist())) == 12  # 4 distinct batches of the 13 tumors
    assert sorted(torch.cat(normal_ids).tolist()) == list(range(6))  # both normal batches of epoch 0
    # Masks travel with their tumor image.
    idx = tumor_ids[0]
    assert torch.equal(first["tumor_mask"], data.tumor.masks[idx])
    assert torch.equal(first["tumor_has_mask"], data.tumor.has_mask[idx])
    with Image.open(out / "samples" / "step-000005.png") as im:
        grid = np.asarray(im)
    assert grid.shape == (6 * (RES + 2) + 2, 3 * (RES + 2) + 2)  # 6 normals x (input | output | attention)


def test_epochs_set_the_length(tiny_models, tmp_path):
    result, model = train(tmp_path / "run", random_images(10), epochs=3, batch_size=4)
    assert result.step == 6 and model.epochs_ended == [0, 1, 2]


def test_batch_larger_than_the_data_is_refused(tiny_models, tmp_path):
    with pytest.raises(InputError, match="fewer than the batch size"):
        train(tmp_path / "run", random_images(3), steps=2, batch_size=4)


def test_run_directory_of_a_dcgan_run_through_the_cli(tmp_path):
    from safetensors import safe_open
    from PIL import Image

    out = tmp_path / "run"
    proc = run_cli("train", "dcgan", "--data", "phantom:ct?n=16", "--res", "64", "--out", out, "--steps", "4",
                   "--batch-size", "4", "--set", "ngf=8", "--set", "ndf=8", "--sample-every", "2",
                   "--log-every", "2", "--checkpoint-every", "2", "--device", "cpu", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {"config.json", "stats.jsonl", "log.txt", "loss.png", "weights.safetensors", "checkpoints/latest.pt",
            "checkpoints/step-000002.pt", "checkpoints/step-000004.pt", "samples/step-000002.png",
            "samples/step-000004.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "medsyn-run-1" and cfg["training"]["steps"] == 4 and cfg["data"]["count"] == 16
    assert cfg["data"]["fingerprint"] and cfg["versions"]["torch"]
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [2, 4] and set(stats[0]["losses"]) >= {"loss_d", "loss_g"}
    grid = Image.open(out / "samples" / "step-000004.png")
    assert grid.size[0] > 64 * 7  # an 8x8 grid of 64-pixel images
    assert Image.open(out / "loss.png").size[0] > 100
    with safe_open(str(out / "weights.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        assert any(k.startswith("generator.") for k in fh.keys())
        assert not any(k.startswith("discriminator.") for k in fh.keys())
    assert {k: meta[k] for k in ("format", "model", "task", "res", "channels", "step")} == {
        "format": "medsyn-weights-1", "model": "dcgan", "task": "unconditional", "res": "64", "channels": "1",
        "step": "4"}
    assert json.loads(meta["config"])["ngf"] == 8 and "version" in meta and "intensity" in meta
    # Nothing on stdout but the run directory; the log went to stderr and log.txt.
    assert "step 4/4" in proc.stderr and "step 4/4" in (out / "log.txt").read_text()
