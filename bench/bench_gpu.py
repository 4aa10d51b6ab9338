"""The GPU bench: is the device kept busy? Every model's training step, sampling, FID features and the
translation of a whole BraTS-sized volume, as one JSON object (run it through ``bench/gpu.sh``).

Per registered model: training images/s (median of the timed steps after warm-up, synthetic batches at
the model's default batch size), the training FLOPs per image counted by PyTorch, and the model-FLOP
utilisation (MFU) against the device's dense peak: ``--peak-tflops`` when given, else a bf16 (GPU) or,
on a CPU, a matmul in the steps' precision (bf16 under autocast, else fp32) timed in the same process.
Sampling images/s for unconditional models; FID feature images/s of the FID Inception network (its architecture, random weights unless ``--fid-weights``: speed
does not depend on the values); and the seconds to translate a 240x240x155 volume slice by slice with
sag-gan. Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's max RSS on a CPU.
``--amp auto`` (the default, what ``bench/gpu.sh`` passes): bf16 autocast where the trainer takes it by
default (CUDA, CPUs with native bf16), for training, sampling and the translated volume alike, as
``medsyn train``/``sample``/``translate`` run; ``--amp on``/``off`` force it. On a GPU the networks are
channels-last, as the trainer does; ``--compile`` compiles each network as ``medsyn train --compile`` does
(FLOPs are counted on the eager step).

``--smoke``: tiny steps, batches and volume, for a CPU check that everything runs (not a measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import (cpu_name, matmul_flops_per_s, peak_memory, synchronize,  # first: sets the OpenMP policy
                     time_train_steps)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.errors import TrainingError  # noqa: E402
from medsyn_cli.registry import all_models  # noqa: E402
from medsyn_cli.training.device import amp_choice, autocast_factory  # noqa: E402
from medsyn_cli.training.speedups import check_compile, prepare_networks  # noqa: E402

AMP_SETTINGS = {"auto": None, "on": True, "off": False}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="", help="comma-separated (default: every registered model)")
    p.add_argument("--res", type=int, default=64, help="unconditional models' resolution")
    p.add_argument("--translation-res", type=int, default=128)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (else measured)")
    p.add_argument("--fid-weights", default=None)
    p.add_argument("--volume", default="240,240,155", help="X,Y,Z of the volume to translate")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs (CPU)")
    p.add_argument("--amp", choices=list(AMP_SETTINGS), default="auto",
                   help="bf16 autocast: auto (as medsyn train: CUDA and CPUs with native bf16), on or off")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each network as `medsyn train --compile` does (the warm-up steps wait for "
                        "the compiler: their warmup_seconds include it)")
    return p.parse_args(argv)


def peak_memory_mib(device: torch.device) -> float:
    """The allocator's peak on a GPU, the process's max RSS on a CPU (MiB)."""
    memory = peak_memory(device)
    return memory["cuda_max_memory_allocated_mb"] if device.type == "cuda" else memory["peak_rss_mb"]


def batch_for(spec, batch: int, res: int, device: torch.device) -> dict:
    def img():
        return torch.rand(batch, 1, res, res, device=device) * 2 - 1
    if spec.task == "unconditional":
        return {"image": img()}
    masks = (torch.rand(batch, 1, res, res, device=device) > 0.8).float()
    return {"normal": img(), "tumor": img(), "tumor_mask": masks,
            "tumor_has_mask": torch.ones(batch, dtype=torch.bool, device=device)}


def bench_model(name, spec, args, device, peak) -> dict:
    res = args.res if spec.task == "unconditional" else args.translation_res
    res = res if res in spec.resolutions else min(spec.resolutions)
    batch = 2 if args.smoke else spec.default_batch_size
    torch.manual_seed(0)
    model = spec.factory(build_config(spec.config_cls, {}), res, 1).to(device)
    model.autocast = autocast_factory(device, args.amp_on)
    if device.type == "cuda":
        for net in model.networks.values():
            net.to(memory_format=torch.channels_last)
    model.train()
    data = batch_for(spec, batch, res, device)
    if args.compile:
        prepare_networks(model, device, compile=True)
    # FLOPs are counted eagerly (the same arithmetic as compiled); the warm-up holds the compiler
    timing = time_train_steps(model, data, warmup=args.warmup, steps=args.steps, device=device)
    median, flops = timing["median_seconds"], timing["flops_per_step"]
    out = {"res": res, "batch": batch, "train_images_per_s": round(batch / median, 2),
           "train_flops_per_image": int(flops / batch), "mfu": round(flops / median / peak, 4),
           "step_seconds_median": round(median, 5), "compiled": args.compile,
           "warmup_seconds": round(timing["warmup_seconds"], 2)}  # with --compile: mostly the compiler's
    if spec.task == "unconditional":
        model.eval()
        n = 8 if args.smoke else 256
        with torch.inference_mode():
            model.sample(n, generator=torch.Generator().manual_seed(0))
            synchronize(device)
            t = time.perf_counter()
            model.sample(n, generator=torch.Generator().manual_seed(1))
            synchronize(device)
        out["sample_images_per_s"] = round(n / (time.perf_counter() - t), 1)
    return out


def bench_fid(args, device) -> dict:
    from medsyn_cli.metrics.features import preprocess
    from medsyn_cli.metrics.inception import FIDInception, fold_batchnorm

    if args.fid_weights:
        from medsyn_cli.metrics.weights import build_verified_model

        net = build_verified_model(args.fid_weights)
    else:
        net = fold_batchnorm(FIDInception().eval())
    net = net.to(device).to(memory_format=torch.channels_last)
    n = 4 if args.smoke else 512
    batch = 4 if args.smoke else 128
    images = [np.random.default_rng(i).integers(0, 256, (64, 64, 1), dtype=np.uint8) for i in range(n)]
    with torch.inference_mode():
        x = torch.stack([preprocess(im) for im in images[:batch]]).to(device).contiguous(memory_format=torch.channels_last)
        net(x)
        synchronize(device)
        t = time.perf_counter()
        for start in range(0, n, batch):
            x = torch.stack([preprocess(im) for im in images[start:start + batch]]).to(device)
            net(x.contiguous(memory_format=torch.channels_last))
        synchronize(device)
    return {"images": n, "images_per_s": round(n / (time.perf_counter() - t), 1), "preprocessing": "included"}


def bench_translate(args, device) -> dict:
    import nibabel as nib

    from medsyn_cli.translation import translate_volume

    shape = (32, 32, 4) if args.smoke else tuple(int(v) for v in args.volume.split(","))
    spec = all_models()["sag-gan"]
    res = 32 if args.smoke else args.translation_res
    model = spec.factory(build_config(spec.config_cls, {}), res, 1).to(device).eval()
    model.autocast = autocast_factory(device, args.amp_on)
    rng = np.random.default_rng(0)
    vol = np.zeros(shape, np.float32)
    vol[shape[0] // 8:-shape[0] // 8, shape[1] // 8:-shape[1] // 8] = rng.random(
        (shape[0] - 2 * (shape[0] // 8), shape[1] - 2 * (shape[1] // 8), shape[2])) * 1000
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.nii.gz", Path(tmp) / "out.nii.gz"
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(src))
        t = time.perf_counter()
        with torch.inference_mode():
            translate_volume(model, src, dst, "tumor", batch_size=64)
        synchronize(device)
        seconds = time.perf_counter() - t
    return {"volume": list(shape), "model_res": res, "seconds": round(seconds, 2)}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.smoke:
        args.warmup, args.steps, args.res, args.translation_res = 1, 2, 64, 64
    device = torch.device(args.device)
    if args.compile:
        try:
            check_compile(device)  # before any model is built, where the compiler cannot work
        except TrainingError as exc:
            sys.exit(f"bench_gpu: {exc}")
    args.amp_on, amp_reason = amp_choice(device, AMP_SETTINGS[args.amp])
    started = time.time()
    if args.peak_tflops:
        peak, peak_from = args.peak_tflops * 1e12, "--peak-tflops"
    elif device.type == "cuda":
        peak, peak_from = matmul_flops_per_s(8192, device, dtype=torch.bfloat16), "bf16 matmul 8192^2, measured"
    else:  # the CPU: a matmul in the precision the steps run in
        dtype = torch.bfloat16 if args.amp_on else torch.float32
        peak = matmul_flops_per_s(512 if args.smoke else 2048, device, dtype=dtype)
        peak_from = f"{'bf16' if args.amp_on else 'fp32'} matmul, measured"
    specs = all_models()
    names = [m for m in args.models.split(",") if m] or list(specs)
    models = {}
    for name in names:
        print(f"bench_gpu: {name}", file=sys.stderr, flush=True)
        models[name] = bench_model(name, specs[name], args, device, peak)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__, "smoke": args.smoke, "compile": args.compile,
        "amp": {"setting": args.amp, "bf16_autocast": args.amp_on, "reason": amp_reason},
        "peak_flops_per_s": peak, "peak_from": peak_from,
        "models": models, "fid_features": bench_fid(args, device), "translate_volume": bench_translate(args, device),
        "peak_memory_mib": peak_memory_mib(device), "seconds": round(time.time() - started, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
