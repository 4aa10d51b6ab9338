"""The benchmarks under bench/ run end to end at tiny sizes and print the figures they promise; the
shared step timer counts steps as a run does; the quality bench never deletes a folder it did not make."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
_policy = os.environ.get("OMP_WAIT_POLICY")
import _common  # noqa: E402  (after the path)

if _policy is None:  # _common sets the benches' OpenMP policy; the other tests' subprocesses keep the default
    os.environ.pop("OMP_WAIT_POLICY", None)


def bench_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}


def bench(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=bench_env(), timeout=timeout, cwd=ROOT)


def figures(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


class CountingModel:
    """Records the step numbers it is called with; its loss is the step number."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def train_step(self, batch, step):
        self.steps.append(step)
        return {"loss": _common.torch.tensor(float(step))}


def test_time_train_steps_goes_on_from_the_first_step_and_reports_the_median():
    model = CountingModel()
    timing = _common.time_train_steps(model, {}, warmup=2, steps=3, first_step=10)
    # two warm-up steps, one counted for FLOPs, three timed: the step numbers go on as in a run
    assert model.steps == [10, 11, 12, 13, 14, 15]
    assert len(timing["step_seconds"]) == 3 and timing["median_seconds"] == sorted(timing["step_seconds"])[1]
    assert timing["flops_per_step"] == 0 and timing["warmup_seconds"] >= 0
    assert timing["last_losses"] == {"loss": 15.0}
    with pytest.raises(ValueError):
        _common.time_train_steps(model, {}, warmup=0, steps=0)


@pytest.mark.slow
def test_train_bench_measures_dcgan():
    result = figures(bench("bench_train.py", "--models", "dcgan", "--batch-size", "2", "--warmup", "1",
                           "--steps", "2", "--matmul-size", "256"))
    m = result["models"]["dcgan"]
    assert m["images_per_s"] > 0 and m["train_flops_per_image"] > 0 and len(m["step_seconds"]) == 2
    assert 0 < m["fraction_of_matmul"] and result["peak_rss_mb"] > 0


@pytest.mark.slow
def test_ct_kernel_bench_measures_the_small_variant():
    result = figures(bench("bench_ct_kernel.py", "--variants", "small", "--batch-size", "2", "--warmup", "0",
                           "--steps", "1", "--matmul-size", "256"))
    v = result["variants"]["small"]
    assert v["res"] == 64 and v["images_per_s"] > 0 and v["train_flops_per_image"] > 0 and v["n_critic"] == 5


@pytest.mark.slow
def test_hagan_bench_measures_both_phases():
    result = figures(bench("bench_hagan.py", "--batch", "2", "--warmup", "0", "--steps", "1"))
    assert result["warmup_phase"]["attnmix_active"] is False
    assert result["attnmix_phase"]["attnmix_active"] is True
    for phase in ("warmup_phase", "attnmix_phase"):
        assert result[phase]["images_per_s"] > 0 and result[phase]["flops_per_training_image"] > 0
        assert 0 < result[phase]["fraction_of_matmul_rate"]


@pytest.mark.slow
def test_translation_bench_trains_and_translates_a_volume():
    result = figures(bench("bench_translation.py", "--models", "cyclegan", "--res", "64", "--warmup", "0",
                           "--steps", "1", "--translate-res", "64", "--translate-batch", "32"))
    assert result["train"]["cyclegan"]["pairs_per_s"] > 0
    assert result["translate"]["seconds"] > 0 and result["translate"]["slices_translated"] > 0


# -- bf16 autocast (issue 36) -----------------------------------------------------------------------
def test_amp_helpers_set_the_trainers_autocast_and_compare_configurations():
    import contextlib

    model = type("M", (), {})()
    cpu = _common.torch.device("cpu")
    assert _common.set_amp(model, cpu, None) is False and model.autocast is contextlib.nullcontext  # CPU default
    assert _common.set_amp(model, cpu, True) is True
    with model.autocast():
        assert _common.torch.is_autocast_enabled("cpu")
        assert _common.torch.get_autocast_dtype("cpu") == _common.torch.bfloat16
    configs = {"fp32": {"images_per_s": 10.0}, "fp32_channels_last": {"images_per_s": 12.0},
               "bf16": {"images_per_s": 18.0}, "bf16_channels_last": {"images_per_s": 15.0}}
    assert _common.amp_ratios(configs) == {
        "bf16_over_fp32": 1.8, "bf16_over_fp32_channels_last": 1.25, "channels_last_over_plain_fp32": 1.2,
        "channels_last_over_plain_bf16": 0.833, "fastest": "bf16"}
    assert _common.amp_ratios({"fp32": {"images_per_s": 1.0}})["bf16_over_fp32"] is None
    batch = _common.training_batch("translation", 4, 16)
    assert set(batch) == {"normal", "tumor", "tumor_mask", "tumor_has_mask"}
    assert batch["tumor_has_mask"].tolist() == [True, False, True, False]
    assert _common.training_batch("unconditional", 3, 16)["image"].shape == (3, 1, 16, 16)


@pytest.mark.slow
def test_train_bench_amp_table_times_each_model_and_the_reference_four_ways():
    result = figures(bench("bench_train.py", "--amp", "--models", "dcgan,sag-gan", "--batch-size", "2",
                           "--warmup", "0", "--steps", "1", "--matmul-size", "256"))
    assert result["benchmark"] == "train_throughput_amp" and result["configurations"] == list(_common.AMP_CONFIGS)
    reference = result["reference"]
    for entry in (reference, result["models"]["dcgan"], result["models"]["sag-gan"]):
        assert set(entry["configs"]) == set(_common.AMP_CONFIGS)
        for label, figures_ in entry["configs"].items():
            assert figures_["images_per_s"] > 0 and figures_["losses_finite"] is True
            assert figures_["bf16_autocast"] is label.startswith("bf16")
        assert entry["bf16_over_fp32"] > 0 and entry["fastest"] in _common.AMP_CONFIGS
    assert reference["batch_size"] == 2 and reference["parameters"]["generator"] == 3574656  # the example's G, nc=1
    assert set(result["models"]["dcgan"]["over_reference"]) == set(_common.AMP_CONFIGS)
    sag = result["models"]["sag-gan"]
    assert sag["task"] == "translation" and sag["images_per_step"] == 2 * sag["batch_size"]
    assert sag["over_reference"] is None  # another task: no like-for-like comparison


@pytest.mark.slow
def test_hagan_ct_kernel_and_translation_benches_take_amp():
    hagan = figures(bench("bench_hagan.py", "--batch", "2", "--warmup", "0", "--steps", "1", "--amp"))
    assert hagan["amp"] is True and hagan["bf16"]["attnmix_phase"]["attnmix_active"] is True
    assert hagan["bf16_over_fp32"]["warmup_phase"] > 0 and hagan["warmup_phase"]["images_per_s"] > 0
    ct = figures(bench("bench_ct_kernel.py", "--variants", "small", "--batch-size", "2", "--warmup", "0",
                       "--steps", "1", "--matmul-size", "256", "--amp"))
    small = ct["variants"]["small"]
    assert small["bf16_autocast"] is False and small["bf16"]["bf16_autocast"] is True and small["bf16_over_fp32"] > 0
    tr = figures(bench("bench_translation.py", "--models", "cyclegan", "--res", "64", "--warmup", "0",
                       "--steps", "1", "--translate-res", "64", "--translate-batch", "32", "--amp"))
    assert tr["train"]["cyclegan"]["bf16"]["pairs_per_s"] > 0 and tr["train"]["cyclegan"]["bf16_over_fp32"] > 0
    assert tr["translate_bf16"]["bf16_autocast"] is True and tr["translate"]["bf16_autocast"] is False
    assert tr["translate_bf16"]["slices_translated"] == tr["translate"]["slices_translated"]


@pytest.mark.slow
def test_amp_numerics_bench_trains_through_the_trainer_and_reads_its_losses(tmp_path):
    result = figures(bench("bench_amp_numerics.py", "--models", "dcgan", "--steps", "3", "--log-every", "1",
                           "--batch-size", "4", "--data", "phantom:ct", "--with-fp32", "--out", str(tmp_path)))
    run = result["models"]["dcgan"]
    assert result["all_finite"] is True and result["no_nan_guard"] is True
    assert run["amp"] is True and run["fp32"]["amp"] is False and run["exit_code"] == 0
    assert run["steps_done"] == 3 and run["records"] == 3 and run["losses_finite"] is True
    assert run["nan_guard_tripped"] is False and set(run["final_losses"]) >= {"loss_d", "loss_g"}
    assert (tmp_path / "dcgan-bf16" / "stats.jsonl").is_file()


def test_inference_amp_bench_times_both_precisions():
    result = figures(bench("bench_inference_amp.py", "--models", "dcgan,sag-gan", "--batch-size", "2",
                           "--translate-batch", "1", "--batches", "1"))
    for name, task in (("dcgan", "unconditional"), ("sag-gan", "translation")):
        m = result["models"][name]
        assert m["task"] == task and m["fp32_images_per_s"] > 0 and m["bf16_images_per_s"] > 0
        assert 0 < m["mean_abs_diff"] < 0.05 and m["bf16_over_fp32"] > 0


def test_quality_bench_refuses_a_folder_it_did_not_make(tmp_path):
    out = tmp_path / "my-scans"
    out.mkdir()
    (out / "scan.png").write_bytes(b"keep me")
    proc = bench("bench_quality.py", "--model", "dcgan", "--data", str(tmp_path), "--minutes", "1",
                 "--out", str(out))
    assert proc.returncode == 2
    assert "not a quality-bench folder" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (out / "scan.png").read_bytes() == b"keep me"


def covid_subset(tmp_path, shared_data, n: int):
    """The first ``n`` COVID-CT slices, copied to a folder of their own."""
    data = tmp_path / "covid"
    data.mkdir()
    for image in sorted((shared_data / "covid-ct-noncovid").iterdir())[:n]:
        shutil.copy(image, data / image.name)
    return data


@pytest.mark.slow
def test_quality_bench_scores_a_short_run_and_reruns_into_its_own_folder(tmp_path, shared_data, fid_weights):
    data = covid_subset(tmp_path, shared_data, 16)
    out = tmp_path / "bench"
    args = ("--model", "dcgan", "--data", str(data), "--res", "64", "--minutes", "0.03", "--points", "2",
            "--batch-size", "8", "--fid-weights", str(fid_weights), "--out", str(out))
    result = figures(bench("bench_quality.py", *args))
    assert [p["images"] for p in result["points"]] == [16] * len(result["points"])  # as many as training images
    # the second run empties the first's folder (it is a bench folder); --samples scores fewer than auto
    result = figures(bench("bench_quality.py", *args, "--samples", "10"))
    assert [p["images"] for p in result["points"]] == [10] * len(result["points"]) and result["samples"] == "10"
    assert result["points"][-1]["steps"] >= 1 and result["points"][-1]["fid"] > 0
    assert result["real_split_half_fid"] > 0 and result["training_images"] == 16
    assert (out / "fid_vs_minutes.png").is_file() and (out / "final_grid.png").is_file()
    assert not list(out.glob("samples-*"))  # the scored samples are removed after scoring


def test_quality_bench_continues_only_a_bench_it_started_with_the_same_settings(tmp_path, shared_data):
    import bench_quality

    data = str(shared_data / "covid-ct-noncovid")
    args = ("--model", "dcgan", "--data", data, "--minutes", "1", "--out", str(tmp_path / "bench"), "--continue")
    empty = bench("bench_quality.py", *args)  # nothing was started there
    assert empty.returncode == 2 and "no bench to continue" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1 and not (tmp_path / "bench").exists()
    settings = {key: None for key in bench_quality.SETTINGS}
    settings.update(model="dcgan", data=data, res=64, minutes=2.0, points=5, recipe="paper", sets=[], seed=0,
                    device="cpu", samples="auto", score_live=False)
    bench_quality.start_bench(tmp_path / "bench", settings)
    other = bench("bench_quality.py", *args)  # started with 2 minutes, continued with 1
    assert other.returncode == 2 and "--minutes 2.0, not 1.0" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    assert json.loads((tmp_path / "bench" / "bench.json").read_text())["continued"] == []  # refused: not recorded


@pytest.mark.slow
def test_quality_bench_killed_between_points_continues_where_it_stopped(tmp_path, shared_data, fid_weights):
    import signal
    import time

    data = covid_subset(tmp_path, shared_data, 12)
    out = tmp_path / "bench"
    args = ("--model", "dcgan", "--data", str(data), "--res", "64", "--minutes", "0.04", "--points", "2",
            "--batch-size", "6", "--fid-weights", str(fid_weights), "--out", str(out))
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bench_quality.py"), *args], env=bench_env(),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    points = out / "points.jsonl"
    while not (points.is_file() and points.read_text().endswith("\n")) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # a closed session: the bench and its medsyn child die at once
    proc.wait()
    first = [json.loads(line) for line in points.read_text().splitlines()]
    assert len(first) == 1 and not (out / "result.json").exists()  # killed after the first point, before the end
    result = figures(bench("bench_quality.py", *args, "--continue"))
    assert result["points"][0] == first[0]  # the scored point is kept, not scored again
    assert result["points"][1]["steps"] > first[0]["steps"] and result["points"][1]["minutes"] >= 0.04
    assert result["real_split_half_fid"] > 0 and result["continued"][0]["points_done"] == 1
    assert json.loads((out / "result.json").read_text())["points"] == result["points"]
    assert (out / "fid_vs_minutes.png").is_file()


@pytest.mark.parametrize("samples", ["1", "some", "-5"])
def test_quality_bench_refuses_a_sample_count_it_cannot_score(tmp_path, samples):
    out = tmp_path / "bench"
    proc = bench("bench_quality.py", "--model", "dcgan", "--data", str(tmp_path), "--minutes", "1",
                 "--samples", samples, "--out", str(out))
    assert proc.returncode == 2 and "--samples" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_quality_bench_refuses_to_score_live_weights_of_a_run_without_an_average(tmp_path, shared_data):
    out = tmp_path / "bench"
    refused = bench("bench_quality.py", "--model", "dcgan", "--data", str(shared_data / "covid-ct-noncovid"),
                    "--minutes", "1", "--score-live", "--out", str(out))
    assert refused.returncode == 2 and "ema=true" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not out.exists()  # refused before anything ran


@pytest.mark.slow
def test_quality_bench_scores_the_average_and_the_live_weights(tmp_path, shared_data, fid_weights):
    data = covid_subset(tmp_path, shared_data, 12)
    args = ("--model", "dcgan", "--data", str(data), "--res", "64", "--minutes", "0.02", "--points", "1",
            "--batch-size", "6", "--fid-weights", str(fid_weights), "--score-live")
    result = figures(bench("bench_quality.py", *args, "--set", "ema=true", "--out", str(tmp_path / "ema")))
    point = result["points"][-1]
    assert result["score_live"] and point["fid_live"] > 0 and point["fid"] > 0
    assert point["fid_live"] != point["fid"]  # two generators: the average and the last step's
    assert (tmp_path / "ema" / "fid_vs_minutes.png").is_file()


def test_translation_smoothing_filters_remove_speckle_and_keep_flat_regions():
    import numpy as np
    from translation_smoothing import smoother

    flat = np.full((1, 1, 9, 9), 0.5, np.float32)
    speckled = flat.copy()
    speckled[0, 0, 4, 4] = -1.0  # one dark pixel inside a bright lesion
    assert smoother("none") is None
    np.testing.assert_allclose(smoother("median3")(speckled), flat)  # a 3x3 median removes a lone pixel
    blurred = smoother("gauss0.7")(speckled)
    assert blurred[0, 0, 4, 4] > -1.0 and blurred[0, 0, 0, 0] == pytest.approx(0.5)
    with pytest.raises(SystemExit, match="unknown filter"):
        smoother("sharpen")
