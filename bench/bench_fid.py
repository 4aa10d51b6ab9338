"""Benchmark: medsyn's FID against pytorch-fid 0.3.0 on the same images, same weights, one run.

Prints one JSON object: images/s of each tool end to end (paths in, number out: model build,
decoding, features, statistics, matrix square root) for a first evaluation and for a repeat in
which medsyn's REAL statistics come from its cache, plus the FID values and their difference.

The images: the COVID-CT non-COVID set (``../shared/data/covid-ct-noncovid``) written once as
256x256 grey PNG (REAL; pytorch-fid's default batching needs one size per folder) and a disjoint-
by-seed sample of them at 64x64 (FAKE, the size a 64-px generator writes). pytorch-fid runs with its
command-line defaults (batch 50, ``min(8, cpus)`` loader workers); medsyn with its defaults.

    .venv/bin/python bench/bench_fid.py                 # REAL 397, FAKE 200, best of 2 rounds
    .venv/bin/python bench/bench_fid.py --n-fake 300 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "covid-ct-noncovid"
WEIGHTS = SHARED / "weights" / "fid-inception-pool3.pth"


def prepare(workdir: Path, n_real: int | None, n_fake: int, seed: int) -> tuple[Path, Path, int, int]:
    from PIL import Image

    files = sorted(p for p in DATA.iterdir() if p.is_file())
    real_files = files if n_real is None else files[:n_real]
    rng = np.random.default_rng(seed)
    fake_files = [files[i] for i in sorted(rng.choice(len(files), n_fake, replace=False))]
    real, fake = workdir / "real", workdir / "fake"
    real.mkdir()
    fake.mkdir()
    for i, f in enumerate(real_files):
        Image.open(f).convert("L").resize((256, 256), Image.Resampling.BICUBIC).save(real / f"{i:04d}.png")
    for i, f in enumerate(fake_files):
        Image.open(f).convert("L").resize((64, 64), Image.Resampling.BICUBIC).save(fake / f"{i:04d}.png")
    return real, fake, len(real_files), len(fake_files)


def run_pytorch_fid(real: Path, fake: Path) -> tuple[float, float]:
    import torch
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pfi

    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state.setdefault("fc.weight", torch.zeros(1008, 2048))  # unused by pool3; its loader is strict
    state.setdefault("fc.bias", torch.zeros(1008))
    pfi.load_state_dict_from_url = lambda *args, **kwargs: state  # no network: the local weights
    cpus = len(os.sched_getaffinity(0))
    start = time.perf_counter()
    value = fid_score.calculate_fid_given_paths([str(real), str(fake)], batch_size=50, device="cpu",
                                                dims=2048, num_workers=min(cpus, 8))
    return float(value), time.perf_counter() - start


def run_medsyn(real: Path, fake: Path) -> tuple[float, float, dict]:
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate

    start = time.perf_counter()
    # real_as_is: pytorch-fid reads the folders as they are, so medsyn must too for the same number (by
    # default medsyn brings the 256x256 reals to the 64x64 fakes' size first: another protocol, another FID).
    result = evaluate(str(real), str(fake), EvalOptions(metrics=("fid",), weights=str(WEIGHTS), real_as_is=True))
    return result["metrics"]["fid"], time.perf_counter() - start, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-real", type=int, default=None, help="REAL images (default: all 397)")
    ap.add_argument("--n-fake", type=int, default=200, help="FAKE images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of (medsyn first, pytorch-fid, medsyn repeat); the fastest of each is kept, "
                         "which filters out other people's load on a shared machine")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    if not DATA.is_dir() or not WEIGHTS.is_file():
        sys.exit(f"bench needs {DATA} and {WEIGHTS}")
    import torch

    runs: dict[str, list[tuple[float, float, dict]]] = {"first": [], "theirs": [], "repeat": []}
    with tempfile.TemporaryDirectory(prefix="bench-fid-") as tmp:
        tmp_path = Path(tmp)
        real, fake, n_real, n_fake = prepare(tmp_path, args.n_real, args.n_fake, args.seed)
        n = n_real + n_fake
        for r in range(args.rounds):
            os.environ["MEDSYN_HOME"] = str(tmp_path / f"home{r}")  # an empty cache: a true first evaluation
            runs["first"].append(run_medsyn(real, fake))
            runs["theirs"].append((*run_pytorch_fid(real, fake), {}))
            runs["repeat"].append(run_medsyn(real, fake))
            print(f"round {r + 1}: medsyn first {runs['first'][-1][1]:.1f}s, pytorch-fid "
                  f"{runs['theirs'][-1][1]:.1f}s, medsyn repeat {runs['repeat'][-1][1]:.1f}s", file=sys.stderr)
    (ours_first, t_first, first), (theirs, t_theirs, _), (ours_repeat, t_repeat, repeat) = (
        min(runs[k], key=lambda run: run[1]) for k in ("first", "theirs", "repeat"))
    all_values = {run[0] for k in ("first", "repeat") for run in runs[k]}
    out = {
        "images": {"real": n_real, "fake": n_fake, "total_per_evaluation": n,
                   "real_format": "256x256 grey PNG", "fake_format": "64x64 grey PNG"},
        "pytorch_fid": {"fid": theirs, "seconds": round(t_theirs, 2), "images_per_s": round(n / t_theirs, 2),
                        "settings": "calculate_fid_given_paths, batch_size=50, num_workers=min(cpus, 8)"},
        "medsyn_first": {"fid": ours_first, "seconds": round(t_first, 2), "images_per_s": round(n / t_first, 2),
                         "breakdown_s": first["seconds"], "speedup_vs_pytorch_fid": round(t_theirs / t_first, 2)},
        "medsyn_repeat_cached_real": {"fid": ours_repeat, "seconds": round(t_repeat, 2),
                                      "images_per_s": round(n / t_repeat, 2), "real_from_cache": repeat["real"]["cached"],
                                      "breakdown_s": repeat["seconds"],
                                      "speedup_vs_pytorch_fid": round(t_theirs / t_repeat, 2)},
        "fid_abs_diff_vs_pytorch_fid": abs(ours_first - theirs),
        "fid_first_equals_repeat": ours_first == ours_repeat,
        "medsyn_fid_identical_across_all_runs": len(all_values) == 1,
        "rounds": args.rounds,
        "seconds_every_round": {k: [round(run[1], 2) for run in v] for k, v in runs.items()},
        "machine": {"cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
