"""The quality bench: FID at fixed points of a CPU (or GPU) training budget, with the papers' protocol.

    python bench/bench_quality.py --model dcgan --data ../shared/data/covid-ct-noncovid --res 64 --minutes 30

Trains through `medsyn train` itself, in chunks joined by `--resume` (bit-exact, so the chunks are one
run), each ending at the step that spends the point's `--max-minutes` budget, and after each chunk scores
the run the way the HAGAN paper did: as many samples as training images (`medsyn sample --n auto`;
`--samples N` scores N instead, for sets too large to score at every point)
against the training images prepared as training prepared them (`medsyn eval fid --run`), FID and KID.
A translation model is scored on held-out cases instead (`--test-data`) with `medsyn eval translation`,
its judge trained on `--data`: conversion both ways, the judge's accuracy, the FID pair, where the
change is. The clock is the run's own training seconds (`stats.jsonl`), so the time spent scoring is
not charged to the model. Prints one JSON object: per point the minutes,
steps, images seen, FID and KID; the real-vs-real split-half FID (the floor at this size); the load
average before and after; the commit. Writes OUT/fid_vs_minutes.png and OUT/final_grid.png.

Recipes: `paper` is the model's defaults (its paper's hyper-parameters), `--recipe fast` (or another
the model offers, `medsyn models MODEL`) its bundle of later practice; `--set KEY=VALUE` adds settings
for a variant (e.g. `--set augment=flip,translate`), recorded in the JSON. To compare two recipes at
equal minutes on a 2-core machine, run them side by side with `OMP_NUM_THREADS=1` each (recorded).
`--score-live` (for a run that keeps a generator average, `ema=true`) also scores the last step's own
weights at every point (`medsyn sample --weights live`): the average against what it averages, at the
same training, since keeping the average does not change the steps taken.

A bench killed part-way (a closed session, a reboot) is picked up by the same command with `--continue`:
the points already scored (OUT/points.jsonl) are kept, training resumes from the checkpoint written at the
end of the last finished chunk (`medsyn train --resume`, which drops the steps after it), and the JSON
records when it was continued and the load average then. The settings must be the ones the bench was
started with (OUT/bench.json); the summary is also written to OUT/result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def medsyn(*args, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDSYN_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "medsyn_cli", *map(str, args)], capture_output=True, text=True,
                          env=env)
    if check and proc.returncode != 0:
        raise SystemExit(f"medsyn {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def trained(run: Path) -> tuple[int, float]:
    """(steps, training seconds) of a run so far, from its stats.jsonl."""
    steps, seconds = 0, 0.0
    for line in (run / "stats.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "losses" in rec:
            steps, seconds = rec["step"], rec["seconds"]
    return steps, seconds


def task_of(model: str) -> str:
    """``unconditional`` or ``translation``, from ``medsyn models --json``."""
    for entry in json.loads(medsyn("models", "--json").stdout)["models"]:
        if model in (entry["name"], *entry.get("aliases", [])):
            return entry["task"]
    raise SystemExit(f"bench_quality: unknown model {model!r}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


#: the command recorded in the folder's medsyn manifest (``outputs.MANIFEST``), which marks it as this bench's
COMMAND = "bench quality"


def fresh_bench_folder(out: Path) -> None:
    """Empty ``out`` for a new run if an earlier bench made it (its medsyn manifest says so); never
    delete a folder the bench did not make (``--out`` pointing at a user's data): that is a one-line
    error, exit code 2."""
    from medsyn_cli.outputs import MANIFEST, read_manifest, write_manifest

    if out.exists():
        manifest = read_manifest(out) if out.is_dir() else None
        ours = manifest is not None and manifest.get("command") == COMMAND
        if not out.is_dir() or (any(out.iterdir()) and not ours):
            print(f"bench_quality: {out} exists and is not a quality-bench folder (no {MANIFEST} of an earlier "
                  "bench run); choose another --out", file=sys.stderr)
            raise SystemExit(2)
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_manifest(out, COMMAND, {})


#: The arguments that define a bench; `--continue` refuses settings that differ from the recorded ones.
SETTINGS = ("model", "data", "res", "minutes", "points", "recipe", "sets", "batch_size", "seed", "device",
            "fid_weights", "test_data", "samples", "score_live")


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def start_bench(out: Path, settings: dict) -> dict:
    """A fresh bench folder with its settings recorded (OUT/bench.json); returns that record."""
    fresh_bench_folder(out)
    state = {"settings": settings, "date": now(), "load_average_start": load_average(), "continued": []}
    (out / "bench.json").write_text(json.dumps(state, indent=1) + "\n")
    return state


def continue_bench(out: Path, settings: dict) -> tuple[dict, list[dict]]:
    """The recorded state and the points already scored of an interrupted bench in ``out``. A folder
    without a bench record, or settings other than the recorded ones, are a one-line error, exit code 2."""
    try:
        state = json.loads((out / "bench.json").read_text())
        recorded = state["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        print(f"bench_quality: {out} holds no bench to continue (no readable bench.json); run it without --continue",
              file=sys.stderr)
        raise SystemExit(2)
    for key in SETTINGS:
        if recorded.get(key) != settings[key]:
            flag = "--" + ("set" if key == "sets" else key.replace("_", "-"))
            print(f"bench_quality: {out} was started with {flag} {recorded.get(key)!r}, not {settings[key]!r}; "
                  "--continue needs the settings it was started with", file=sys.stderr)
            raise SystemExit(2)
    points = []
    if (out / "points.jsonl").is_file():
        for line in (out / "points.jsonl").read_text().splitlines():
            try:
                points.append(json.loads(line))
            except ValueError:
                break  # a line cut short by the kill: that point is scored again
    (out / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
    state["continued"].append({"date": now(), "load_average": load_average(), "points_done": len(points)})
    (out / "bench.json").write_text(json.dumps(state, indent=1) + "\n")
    return state, points


def score(run: Path, out: Path, data: str, weights: str | None, tag: str, baseline: bool,
          which: str = "last", samples: str = "auto") -> dict:
    fake = out / f"samples-{tag}"
    shutil.rmtree(fake, ignore_errors=True)
    medsyn("sample", run, "--n", samples, "--out", fake, "--seed", 1, "--weights", which)
    args = ["eval", "fid", data, fake, "--run", run, "--metrics", "fid,kid", "--json"]
    if weights:
        args += ["--weights", weights]
    if baseline:
        args.append("--baseline")
    result = json.loads(medsyn(*args).stdout)
    shutil.rmtree(fake, ignore_errors=True)
    return result


def score_translation(run: Path, test: str, judge_data: str, weights: str | None, seed: int) -> dict:
    """``medsyn eval translation`` of the run on the held-out cases, the judge trained on the training data."""
    args = ["eval", "translation", run, "--data", test, "--judge-data", judge_data, "--seed", seed, "--json"]
    if weights:
        args += ["--fid-weights", weights]
    return json.loads(medsyn(*args).stdout)


def translation_point(r: dict) -> dict:
    """The figures of one scoring of a translation run (docs/metrics.md, eval translation)."""
    d, tt, tn = r.get("distances", {}), r["to_tumor"], r["to_normal"]
    rnd = lambda v, k=4: None if v is None else round(v, k)  # noqa: E731
    return {"conversion_to_tumor": rnd(tt["conversion"]), "conversion_to_normal": rnd(tn["conversion"]),
            "judge_accuracy": rnd(r["judge"]["accuracy"]),
            "fid_translated": rnd(d.get("fid_translated_normal_vs_tumor"), 2),
            "fid_untouched": rnd(d.get("fid_normal_vs_tumor"), 2), "fid_ratio": rnd(d.get("fid_ratio_to_tumor")),
            "fid_ratio_reference": rnd(d.get("fid_ratio_reference")),  # real tumors of the judge's cases
            "fid_ratio_paste": rnd(d.get("fid_ratio_paste")),  # those real tumors pasted into the normals
            "inside_brain": rnd(tt["inside_brain_share"]), "brain_attended": rnd(tt["brain_attended_share"]),
            "dice": rnd(tn.get("dice")), "maps": r["maps"]["kind"], "slices": r["slices"],
            **region_point(r.get("to_tumor_in_region"), rnd)}


def region_point(rr: dict | None, rnd) -> dict:
    """The figures of a tumor grown in the paste reference's regions (none for a model that takes no region)."""
    if not rr:
        return {}
    return {"region_conversion_to_tumor": rnd(rr["conversion"]),
            "region_paste_conversion": rnd(rr["paste_conversion"]), "region_filled": rnd(rr["region_filled_share"]),
            "region_fid_ratio": rnd(rr.get("fid_ratio_to_tumor"))}


def keep_point(out: Path, points: list[dict], point: dict) -> None:
    """Record a scored point (OUT/points.jsonl, for --continue) and report it on stderr."""
    points.append(point)
    with open(out / "points.jsonl", "a") as f:
        f.write(json.dumps(point) + "\n")
    print(json.dumps({"point": point}), file=sys.stderr, flush=True)


def keeps_average(train: list) -> bool:
    """Whether ``medsyn train`` with these arguments keeps a generator average (``ema``), from its
    ``--dry-run`` (which writes nothing; its ``--out`` is a fresh temporary path)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args = [*train[:train.index("--out")], *train[train.index("--out") + 2:], "--out", Path(tmp) / "run"]
        return bool(json.loads(medsyn(*args, "--dry-run").stdout)["model_config"].get("ema"))


def plot_translation(points: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    minutes = [p["minutes"] for p in points]
    for key, label, style in (("conversion_to_tumor", "conversion normal -> tumor", "o-"),
                              ("conversion_to_normal", "conversion tumor -> normal", "s-"),
                              ("fid_ratio", "FID translated / untouched", "^--"),
                              ("dice", "attention Dice (tumor -> normal)", "x:")):
        ax.plot(minutes, [p[key] if p[key] is not None else float("nan") for p in points], style, label=label)
    ax.set_xlabel("training minutes")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot(points: list[dict], floor: float | None, path: Path, title: str, samples: str = "auto") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from plot_quality import fid_axis  # the sibling script (bench/ is on the path): one name for the FID axis

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot([p["minutes"] for p in points], [p["fid"] for p in points], marker="o", color="tab:red", label="FID")
    if points and "fid_live" in points[0]:
        ax.plot([p["minutes"] for p in points], [p["fid_live"] for p in points], marker="s", color="tab:blue",
                label="FID, last step's weights (no average)")
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label=f"real vs real split half {floor:.1f}")
    ax.set_xlabel("training minutes")
    ax.set_ylabel(fid_axis([{"samples": samples}]))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--minutes", type=float, required=True, help="training minutes (the run's own clock)")
    ap.add_argument("--points", type=int, default=5, help="scoring points, evenly spaced, the last at the end")
    ap.add_argument("--recipe", default="paper",
                    help="paper (the model's defaults) or a recipe the model offers (medsyn train --recipe)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra model setting KEY=VALUE")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fid-weights", default=None)
    ap.add_argument("--out", default=None, help="bench folder (default: bench-out/MODEL-RES-RECIPE-seedS)")
    ap.add_argument("--test-data", default=None,
                    help="translation models: the held-out cases `medsyn eval translation` scores (required)")
    ap.add_argument("--samples", default="auto",
                    help="samples scored at each point: auto (as many as training images, the papers') or a count, "
                         "for large sets where scoring every point would outlast the training (always against all "
                         "the training images' features)")
    ap.add_argument("--score-live", action="store_true",
                    help="also score the last step's weights without the generator average (needs ema=true)")
    ap.add_argument("--continue", dest="resume_bench", action="store_true",
                    help="pick up an interrupted bench in --out: keep its scored points, resume its run from the "
                         "last finished chunk (give the settings it was started with)")
    args = ap.parse_args()
    if args.points < 1 or args.minutes <= 0:
        raise SystemExit("--points must be >= 1 and --minutes > 0")
    if args.samples != "auto" and not (args.samples.isdigit() and int(args.samples) >= 2):
        print(f"bench_quality: --samples must be auto or a count of at least 2, not {args.samples!r}", file=sys.stderr)
        raise SystemExit(2)

    out = Path(args.out or f"bench-out/{args.model}-{args.res}-{args.recipe}-seed{args.seed}")
    settings = {key: getattr(args, key) for key in SETTINGS}
    if args.resume_bench:  # settings it was started with passed the checks below then
        state, points = continue_bench(out, settings)
    translation = task_of(args.model) == "translation"
    if translation and not args.test_data:
        print("bench_quality: a translation model is scored on held-out cases: give --test-data", file=sys.stderr)
        raise SystemExit(2)
    run = out / "run"
    started = time.time()
    train = ["train", args.model, "--data", args.data, "--res", args.res, "--seed", args.seed, "--device", args.device,
             "--out", run, "--checkpoint-every", 100000, "--sample-every", 100000, "--log-every", 10,
             "--recipe", args.recipe]
    if args.batch_size:
        train += ["--batch-size", args.batch_size]
    for s in args.sets:
        train += ["--set", s]
    if args.score_live and not keeps_average(train):
        print("bench_quality: --score-live needs a run that keeps a generator average; "
              "add --set ema=true or a recipe with it", file=sys.stderr)
        raise SystemExit(2)
    if not args.resume_bench:
        state, points = start_bench(out, settings), []

    floor = prepared = None
    targets = [args.minutes * (i + 1) / args.points for i in range(args.points)]
    done = len(points)
    if not done and run.exists() and not list((run / "checkpoints").glob("*.pt")):
        shutil.rmtree(run)  # killed inside its first chunk before any checkpoint: start the run again
    for i, target in enumerate(targets):
        if i < done:
            continue
        # Each chunk ends at the step that spends the point's budget (`--max-minutes`, the run's own clock).
        resume = run.exists()
        medsyn(*train, "--steps", 10 ** 9, "--max-minutes", target, *(["--resume"] if resume else []))
        steps, seconds = trained(run)
        last = i == len(targets) - 1
        cfg = json.loads((run / "config.json").read_text())
        batch = cfg["training"]["batch_size"]
        point = {"minutes": round(seconds / 60, 2), "steps": steps, "images_seen": steps * batch,
                 "epochs": round(steps / cfg["training"]["batches_per_epoch"], 2)}
        if translation:
            point.update(translation_point(score_translation(run, args.test_data, args.data, args.fid_weights,
                                                             args.seed)))
            keep_point(out, points, point)
            continue
        result = score(run, out, args.data, args.fid_weights, f"{i}", baseline=last, samples=args.samples)
        point.update({"fid": round(result["metrics"]["fid"], 3), "kid_mean": round(result["metrics"]["kid_mean"], 5),
                      "kid_std": round(result["metrics"]["kid_std"], 5), "images": result["fake"]["count"]})
        if args.score_live:
            live = score(run, out, args.data, args.fid_weights, f"{i}-live", baseline=False, which="live",
                         samples=args.samples)
            point.update(fid_live=round(live["metrics"]["fid"], 3), kid_live=round(live["metrics"]["kid_mean"], 5))
        if last:
            floor = result["metrics"].get("fid_baseline_real_split_half")
            prepared = result["real"].get("prepared")
            point.update(real_split_half_fid=None if floor is None else round(floor, 3), real_prepared=prepared)
        keep_point(out, points, point)

    if not translation and points:  # the floor is scored with the last point (kept if that was an earlier session)
        floor, prepared = points[-1].pop("real_split_half_fid", None), points[-1].pop("real_prepared", None)
    cfg = json.loads((run / "config.json").read_text())
    grid = sorted((run / "samples").glob("step-*.png"))
    if grid:
        shutil.copy(grid[-1], out / "final_grid.png")
    title = f"{args.model} {args.res}x{args.res}, seed {args.seed}"
    if translation:
        plot_translation(points, out / "fid_vs_minutes.png", title)
    else:
        plot(points, floor, out / "fid_vs_minutes.png", title, args.samples)
    summary = json.dumps({
        "model": args.model, "data": args.data, "res": args.res, "recipe": args.recipe, "sets": args.sets,
        "seed": args.seed, "device": args.device, "budget_minutes": args.minutes,
        "batch_size": cfg["training"]["batch_size"],
        "score_live": args.score_live, "samples": args.samples, "test_data": args.test_data,
        "amp": cfg["training"].get("amp"), "channels_last": cfg["training"].get("channels_last"),
        "fit": cfg["data"]["fit"], "training_images": cfg["data"]["count"], "points": points,
        "real_split_half_fid": None if floor is None else round(floor, 3), "real_prepared": prepared,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_start": state["load_average_start"], "load_average_end": load_average(),
        "continued": state["continued"],  # each --continue: when, the load average then, the points kept
        "wall_minutes": round((time.time() - started) / 60, 1), "commit": commit(), "started": state["date"],
        "date": now(), "plot": str(out / "fid_vs_minutes.png"), "grid": str(out / "final_grid.png"), "run": str(run),
    }, indent=1)
    (out / "result.json").write_text(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
