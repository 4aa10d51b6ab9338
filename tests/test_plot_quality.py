"""bench/plot_quality.py: several quality-bench runs in one FID-vs-minutes figure."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from conftest import ROOT

SCRIPT = ROOT / "bench" / "plot_quality.py"


def plot_quality():
    """The script as a module, for its functions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_quality", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_json(path, recipe, seed, fids):
    points = [{"minutes": 6.0 * (i + 1), "steps": 250 * (i + 1), "fid": f, "kid_mean": f / 1000}
              for i, f in enumerate(fids)]
    path.write_text(json.dumps({"model": "dcgan", "recipe": recipe, "sets": [], "seed": seed, "res": 64,
                                "data": "/data/covid-ct-noncovid", "real_split_half_fid": 51.85,
                                "points": points}))
    return path


def test_runs_of_two_recipes_and_seeds_are_drawn_in_one_figure(tmp_path):
    runs = [bench_json(tmp_path / f"{r}-s{s}.json", r, s, [440 - 30 * i - 20 * (r == "fast") for i in range(5)])
            for r in ("paper", "fast") for s in (0, 1)]
    out = tmp_path / "cmp.png"
    proc = subprocess.run([sys.executable, SCRIPT, *runs, "--out", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (640, 380)


def test_a_file_that_is_not_a_finished_run_is_named(tmp_path):
    unfinished = tmp_path / "running.json"
    unfinished.write_text(json.dumps({"model": "dcgan", "points": []}))
    for bad, why in ((unfinished, "no scoring points"), (tmp_path / "missing.json", "not a bench_quality JSON")):
        proc = subprocess.run([sys.executable, SCRIPT, bad, "--out", tmp_path / "x.png"], capture_output=True,
                              text=True)
        assert proc.returncode != 0
        assert proc.stderr.strip() == proc.stderr.strip().splitlines()[-1]  # one line
        assert str(bad) in proc.stderr and why in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_runs_that_differ_in_batch_size_are_labelled_with_it():
    mod = plot_quality()
    run = {"model": "hagan", "recipe": "fast", "sets": [], "batch_size": 16}
    assert mod.label(run) == "hagan fast"
    assert mod.label(run, batch=True) == "hagan fast batch 16"
    assert mod.label({**run, "label": "hagan fast, seed 0, 2026-12-01"}, batch=True) == "hagan fast, seed 0, 2026-12-01"


def test_steps_on_the_x_axis_and_a_run_without_them_is_named(tmp_path):
    run = bench_json(tmp_path / "s0.json", "fast", 0, [300, 250, 200])
    out = tmp_path / "steps.png"
    proc = subprocess.run([sys.executable, SCRIPT, run, "--x", "steps", "--out", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    # a run re-entered from a table with minutes only cannot be drawn against steps: named, nothing written
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"model": "hagan", "points": [{"minutes": 19.7, "fid": 244.9}]}))
    out2 = tmp_path / "none.png"
    proc = subprocess.run([sys.executable, SCRIPT, run, bare, "--x", "steps", "--out", out2], capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert str(bare) in proc.stderr and "'steps'" in proc.stderr
    assert not out2.exists()


def test_the_axis_positions_follow_the_choice():
    mod = plot_quality()
    run = {"points": [{"minutes": 19.5, "steps": 1348, "images_seen": 21568, "fid": 196.9}]}
    assert mod.x_values(run, "minutes") == [19.5]
    assert mod.x_values(run, "steps") == [1348]
    assert mod.x_values(run, "images") == [21568]


def test_the_fid_axis_names_the_sample_count_when_it_is_not_the_papers():
    mod = plot_quality()
    assert mod.fid_axis([{"samples": "auto"}, {}]) == "FID (equal counts, prepared reals)"  # older JSONs have none
    assert mod.fid_axis([{"samples": "1000"}, {"samples": "1000"}]) == "FID (1000 samples, all prepared reals)"
    assert "differ" in mod.fid_axis([{"samples": "1000"}, {}])
