"""Numerics under bf16 autocast: every unconditional model trained N steps through the real trainer
(``medsyn train MODEL --amp``), and whether its losses stayed finite.

    .venv/bin/python bench/bench_amp_numerics.py                          # 2000 steps per model (hours on a CPU)
    .venv/bin/python bench/bench_amp_numerics.py --steps 20 --models dcgan  # a check that it runs
    .venv/bin/python bench/bench_amp_numerics.py --data phantom:ct --recipe fast --with-fp32

Each model trains at ``--res`` (64) on ``--data`` (default: the COVID-CT slices of ../shared/data when
present, else the built-in ``phantom:ct``) with its default settings (or ``--recipe``), a stats record
every ``--log-every`` steps, no grids or checkpoints between. Prints one JSON object: per model
``losses_finite`` (every logged loss mean was finite), ``nan_guard_tripped`` and its message (the
trainer stops at the first non-finite loss and exits 1), ``steps_done``, ``records``, ``final_losses``
(the last record's means), ``amp`` and ``amp_reason`` (from the run's config.json), ``images_per_s``
(mean over the records), ``seconds`` (training time) and ``exit_code``; with ``--with-fp32`` the same
run in float32 (``fp32``) for comparison. Top level: ``all_finite`` and ``no_nan_guard`` over the models,
the load average at start and end. A run that fails otherwise has its last stderr line in ``error``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COVID = ROOT.parent / "shared" / "data" / "covid-ct-noncovid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None, help="comma-separated (default: every registered unconditional model)")
    p.add_argument("--data", default=None,
                   help="a folder or phantom:ct (default: COVID-CT when present, else phantom:ct)")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--log-every", type=int, default=None, help="steps between stats records (default: steps/40, >= 1)")
    p.add_argument("--recipe", default=None, help="a recipe every model has (e.g. paper); default: the models' own")
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--with-fp32", action="store_true", help="also train each model in float32 (--no-amp)")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    return p.parse_args(argv)


def train(model: str, out: Path, args: argparse.Namespace, amp: bool) -> dict:
    """One run through ``medsyn train``; its figures from stats.jsonl and config.json."""
    log_every = args.log_every or max(1, args.steps // 40)
    cmd = [sys.executable, "-m", "medsyn_cli", "train", model, "--data", args.data, "--res", str(args.res),
           "--out", str(out), "--steps", str(args.steps), "--log-every", str(log_every), "--seed", str(args.seed),
           "--sample-every", str(10**9), "--checkpoint-every", str(10**9), "--device", args.device,
           "--amp" if amp else "--no-amp", "--force"]
    if args.recipe:
        cmd += ["--recipe", args.recipe]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MEDSYN_PROGRESS": "0"})
    stats = out / "stats.jsonl"
    records = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()] if stats.is_file() else []
    records = [r for r in records if r.get("losses")]
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    training = config.get("training", {})
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    nan_line = next((line for line in reversed(lines) if "try a lower --lr" in line), None)
    result = {
        "exit_code": proc.returncode,
        "amp": training.get("amp"), "amp_reason": training.get("amp_reason"),
        "steps_done": records[-1]["step"] if records else 0,
        "records": len(records),
        "losses_finite": bool(records) and all(math.isfinite(v) for r in records for v in r["losses"].values()),
        "nan_guard_tripped": nan_line is not None,
        "nan_guard_message": nan_line,
        "final_losses": records[-1]["losses"] if records else None,
        "images_per_s": round(sum(r["images_per_s"] for r in records) / len(records), 2) if records else None,
        "seconds": records[-1]["seconds"] if records else None,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if proc.returncode != 0 and nan_line is None:
        result["error"] = lines[-1] if lines else f"exit code {proc.returncode}"
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.data = args.data or (str(COVID) if COVID.is_dir() else "phantom:ct")
    from medsyn_cli.registry import all_models

    specs = all_models()
    names = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
             else sorted(n for n, s in specs.items() if s.task == "unconditional"))
    load_start = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        for name in names:
            print(f"bench_amp_numerics: {name} ({args.steps} steps, bf16) ...", file=sys.stderr, flush=True)
            results[name] = train(name, root / f"{name}-bf16", args, amp=True)
            if args.with_fp32:
                print(f"bench_amp_numerics: {name} ({args.steps} steps, fp32) ...", file=sys.stderr, flush=True)
                results[name]["fp32"] = train(name, root / f"{name}-fp32", args, amp=False)
            print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "amp_numerics",
        "data": args.data, "res": args.res, "steps": args.steps, "recipe": args.recipe, "seed": args.seed,
        "device": args.device,
        "models": results,
        "all_finite": all(r["losses_finite"] for r in results.values()),
        "no_nan_guard": not any(r["nan_guard_tripped"] for r in results.values()),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
