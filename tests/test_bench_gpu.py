"""bench/gpu.sh --smoke: the GPU bench runs end to end on the CPU and prints every figure it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_gpu_bench_smoke_prints_every_figure():
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke", "--models", "dcgan,sag-gan"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["smoke"] is True and result["peak_flops_per_s"] > 0
    assert result["amp"]["setting"] == "auto"  # gpu.sh runs as medsyn train does by default
    for name in ("dcgan", "sag-gan"):
        m = result["models"][name]
        assert m["train_images_per_s"] > 0 and m["train_flops_per_image"] > 0 and 0 < m["mfu"] < 1.5
    assert result["models"]["dcgan"]["sample_images_per_s"] > 0
    assert result["fid_features"]["images_per_s"] > 0
    assert result["translate_volume"]["seconds"] > 0 and result["peak_memory_mib"] > 0


@pytest.mark.slow
def test_gpu_bench_compiles_the_networks_when_asked():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke", "--compile", "--models", "dcgan"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    m = result["models"]["dcgan"]
    assert result["compile"] is True and m["compiled"] is True and m["warmup_seconds"] > 0
    assert m["train_images_per_s"] > 0 and m["train_flops_per_image"] > 0
