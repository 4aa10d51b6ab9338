"""How big is `medsyn report` for a full-length run? A fake run directory shaped like a default
10,000-step run (a grid every 500 steps: 20 grids; a stats record every 50 steps: 200 records; an
FID score every 1,000 steps) whose grids are mosaics of *real* images of the data at the model's
resolution, the way a converged generator's grids look. Prints one JSON object.

    .venv/bin/python bench/bench_report_size.py --data ../shared/data/covid-ct-noncovid --res 64 128 256
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fake_run(root: Path, data: str, res: int, steps: int, sample_every: int, log_every: int) -> Path:
    import torch

    from medsyn_cli.data import load_dataset
    from medsyn_cli.training.grids import save_grid
    from medsyn_cli.training.plan import TrainFlags, resolve_plan

    run = root / f"dcgan-{res}"
    plan = resolve_plan(TrainFlags(model="dcgan", data=data, res=res, out=str(run), steps=steps,
                                   sample_every=sample_every, log_every=log_every, device="cpu"))
    images = load_dataset(data, res=res, channels=1).images
    n = 64 if res <= 128 else 16  # what the trainer puts in a grid
    (run / "samples").mkdir(parents=True)
    cfg = plan.as_dict()
    cfg["created"] = 0.0
    cfg["resumes"] = []
    (run / "config.json").write_text(json.dumps(cfg))
    rng = random.Random(0)
    for step in range(sample_every, steps + 1, sample_every):
        pick = torch.tensor([rng.randrange(len(images)) for _ in range(n)])
        save_grid(images[pick], run / "samples" / f"step-{step:06d}.png", nrow=math.isqrt(n))
    with open(run / "stats.jsonl", "w") as fh:
        for step in range(log_every, steps + 1, log_every):
            decay = math.exp(-step / 3000)
            losses = {k: round(v * (0.5 + decay) + rng.gauss(0, 0.05), 5)
                      for k, v in (("loss_d", 1.2), ("loss_g", 2.0), ("d_real", 0.7), ("d_fake", 0.3))}
            fh.write(json.dumps({"step": step, "epoch": step / 16, "losses": losses, "images_per_s": 900.0,
                                 "seconds": step * 0.04, "lr": {"generator": 2e-4, "discriminator": 2e-4}}) + "\n")
            if step % 1000 == 0:
                fh.write(json.dumps({"step": step, "fid": round(150 * decay + 40 + rng.gauss(0, 3), 3)}) + "\n")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="phantom:ct")
    parser.add_argument("--res", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--grids", type=int, default=20, help="the report's --grids")
    parser.add_argument("--keep", help="build the fake runs in this folder and keep them")
    args = parser.parse_args()

    from medsyn_cli.report.build import build_report
    from medsyn_cli.report.sections import Options

    out = {"data": args.data, "steps": args.steps, "sample_every": args.sample_every, "grids_shown": args.grids,
           "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for res in args.res:
            run = fake_run(root, args.data, res, args.steps, args.sample_every, args.log_every)
            grids = sorted((run / "samples").glob("*.png"))
            result = build_report(run, options=Options(max_grids=args.grids))
            out["runs"].append({"res": res, "grids": len(grids),
                                "grid_png_bytes_mean": round(sum(p.stat().st_size for p in grids) / len(grids)),
                                "report_bytes": result.bytes, "report_mb": round(result.bytes / 1e6, 2),
                                "images": result.images})
            print(f"res {res}: {result.bytes / 1e6:.2f} MB", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
