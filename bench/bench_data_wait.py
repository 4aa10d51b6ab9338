"""How long training steps wait for their batch: every registered model, trained through `medsyn train`
on real data, with the wait read from its `stats.jsonl` (`data_wait_s`, `data_wait_fraction`).

    python bench/bench_data_wait.py                       # every model, real data from ../shared/data
    python bench/bench_data_wait.py --models dcgan,sag-gan --after-epochs 2

Unconditional models train on the COVID-CT images (a folder of PNGs), translation models straight on the
BraTS NIfTI cases (sliced on load), at 64x64 with their default batch. Each run trains one epoch plus
`--extra-steps` (translation: `--extra-steps` only, its epochs are hundreds of batch-1 steps) with a
stats record every `--log-every` steps; the figures are over the records after the first epoch (the
issue's goal: under 5% of the step time). Prints one JSON object: per model the wait fraction (mean
and max over those records), seconds waited per step, images/s, steps, batch and data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def train(model: str, data: Path, out: Path, steps: int, log_every: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "medsyn_cli", "train", model, "--data", str(data), "--res", "64", "--out", str(out),
           "--steps", str(steps), "--log-every", str(log_every), "--sample-every", "100000",
           "--checkpoint-every", "100000", "--json", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MEDSYN_PROGRESS": "0"})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=None, help="comma list (default: every registered model)")
    ap.add_argument("--images", default=str(SHARED / "covid-ct-noncovid"), help="data of unconditional models")
    ap.add_argument("--volumes", default=str(SHARED / "brats2018-sample"), help="data of translation models")
    ap.add_argument("--extra-steps", type=int, default=8)
    ap.add_argument("--log-every", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from medsyn_cli.registry import all_models

    specs = all_models()
    names = args.models.split(",") if args.models else sorted(specs)
    load_start = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = specs[name]
            data = Path(args.images if spec.task == "unconditional" else args.volumes)
            out = Path(tmp) / name
            # One step first: the data's steps per epoch (and the dataset cache) for the real run.
            train(name, data, out, 1, 1, ["--device", args.device])
            bpe = json.loads((out / "config.json").read_text())["training"]["batches_per_epoch"]
            skip = bpe if spec.task == "unconditional" else 0
            steps = skip + args.extra_steps
            started = time.perf_counter()
            train(name, data, out, steps, args.log_every, ["--device", args.device, "--force"])
            records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]
            records = [r for r in records if "data_wait_fraction" in r]
            after = [r for r in records if r["step"] > skip + 1] or records[-1:]
            seconds = [r["data_wait_s"] for r in after]
            cfg = json.loads((out / "config.json").read_text())
            results[name] = {
                "data": str(data), "task": spec.task, "batch_size": cfg["training"]["batch_size"],
                "batches_per_epoch": bpe, "steps": steps, "records_used": len(after),
                "data_wait_fraction_mean": round(sum(r["data_wait_fraction"] for r in after) / len(after), 5),
                "data_wait_fraction_max": round(max(r["data_wait_fraction"] for r in after), 5),
                "data_wait_ms_per_step": round(1000 * sum(seconds) / max(1, sum(
                    r["step"] - p["step"] for p, r in zip(records, records[1:]) if r in after)), 3),
                "images_per_s": round(sum(r["images_per_s"] for r in after) / len(after), 2),
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
            print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps({"models": results, "goal": "data_wait_fraction under 0.05 after the first epoch",
                      "all_under_goal": all(r["data_wait_fraction_max"] < 0.05 for r in results.values()),
                      "device": args.device, "load_average_start": [round(x, 2) for x in load_start],
                      "load_average_end": [round(x, 2) for x in os.getloadavg()]}, indent=1))


if __name__ == "__main__":
    main()
