"""``medsyn report``: the page is self-contained, shows what the run recorded (losses, FID, grids,
translations with Dice, the commands) and works on a run in progress. In process with throwaway
models; the browser checks are in test_report_browser.py."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.plugins import pm
from medsyn_cli.report.build import build_report
from medsyn_cli.report.run import open_run, pick_evenly
from medsyn_cli.report.sections import Options
from medsyn_cli.report.translation import dice, soft_dice
from test_train_tiny import random_images, tiny_models, train, two_domains  # noqa: F401


def train_recording(out, data, data_path, **flags):
    """Like ``train`` but the run records ``data_path`` as where its data came from."""
    from medsyn_cli.training.distributed import DistContext
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.trainer import Trainer

    plan = resolve_plan(TrainFlags(out=str(out), data=data_path, res=data.res, device="cpu", **flags))
    Trainer(plan, DistContext(), torch.device("cpu"), data).run()


def external_refs(page: str) -> list[str]:
    """Every src/href that would make the browser fetch something (anything but data: and #anchors)."""
    refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]


def test_finished_run_page_has_every_section_and_embeds_everything(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(12), steps=6, batch_size=4, sample_every=2, log_every=1, sets=["latent_dim=6"])
    result = build_report(out)
    page = result.path.read_text()
    assert result.path == out / "report.html" and result.bytes == len(page.encode())
    assert result.sections == ["settings", "losses", "samples", "reproduce", "log"]
    assert external_refs(page) == [] and "http" not in page.replace("http-equiv", "")
    assert "default-src 'none'" in page  # the CSP forbids any fetch
    # Loss plot + the three grids (steps 2, 4, 6), each a decodable PNG.
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == result.images == 4
    import base64
    import io

    sizes = [Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris]
    assert all(w > 0 and h > 0 for w, h in sizes)
    assert page.count('data-label="step ') == 3 and 'data-label="step 6"' in page
    assert "finished at step 6 of 6" in page
    # The command reproduces the non-default setting and the recorded length.
    assert "--set latent_dim=6" in page and "--steps 6" in page and "--batch-size 4" in page


def test_run_in_progress_without_weights_or_stats(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(12), steps=4, batch_size=4, sample_every=2, log_every=1)
    (out / "weights.safetensors").unlink()
    with open(out / "stats.jsonl", "a") as fh:
        fh.write('{"step": 5, "losses": {"loss_d"')  # a record being written right now
    with open(out / "log.txt", "a") as fh:
        fh.write("2026-01-01 00:00:00 training tiny-gan resumed: step 4 -> 10\n")
    page = build_report(out).path.read_text()
    assert "in progress (or stopped): step 4 of 4" in page and "not yet" in page

    (out / "stats.jsonl").unlink()
    for grid in (out / "samples").iterdir():
        grid.unlink()
    page = build_report(out).path.read_text()
    assert "no losses recorded yet" in page and "no sample grids yet" in page


def test_fid_records_are_plotted_and_the_best_marked(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(12), steps=4, batch_size=4, log_every=1)
    with open(out / "stats.jsonl", "a") as fh:
        for step, fid in ((2, 80.5), (4, 41.25), (6, 55.0)):
            fh.write(json.dumps({"step": step, "fid": fid}) + "\n")
    (out / "best.safetensors").write_bytes(b"not a safetensors file")
    result = build_report(out)
    page = result.path.read_text()
    assert "fid" in result.sections
    assert "3 scores; best 41.250 at step 4; its weights are in best.safetensors" in page
    # A run that records its own best entry is believed over the minimum.
    cfg = json.loads((out / "config.json").read_text())
    cfg["best"] = {"step": 6, "fid": 55.0}
    (out / "config.json").write_text(json.dumps(cfg))
    assert "best 55.000 at step 6" in build_report(out).path.read_text()
    # So is the metadata of best.safetensors.
    del cfg["best"]
    (out / "config.json").write_text(json.dumps(cfg))
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, str(out / "best.safetensors"), metadata={"step": "2", "fid": "80.5"})
    assert "best 80.500 at step 2" in build_report(out).path.read_text()


def test_grids_are_thinned_evenly_keeping_the_first_and_last():
    assert pick_evenly(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert pick_evenly(list(range(3)), 5) == [0, 1, 2]
    assert pick_evenly(list(range(7)), 0) == list(range(7))
    assert pick_evenly(list(range(7)), 1) == [6]


def test_report_of_many_grids_shows_at_most_the_limit(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(8), steps=10, batch_size=4, sample_every=1, log_every=5)
    page = build_report(out, options=Options(max_grids=4)).path.read_text()
    assert re.findall(r'data-label="step (\d+)"', page) == ["1", "4", "7", "10"]
    assert "4 of 10 shown" in page


def test_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2] = True
    b[:2, :] = True
    assert dice(a, b) == pytest.approx(2 * 4 / (4 + 8))
    assert dice(a, a) == 1.0 and dice(b & False, b & False) == 1.0 and dice(a, ~a) == 0.0
    soft = np.where(b, 0.5, 0.0)
    assert soft_dice(soft, a) == pytest.approx(2 * 2.0 / (4.0 + 4))
    assert soft_dice(a.astype(float), b) == pytest.approx(dice(a, b))


def test_translation_run_shows_triplets_and_dice_against_the_true_masks(tiny_models, tmp_path, monkeypatch):
    from medsyn_cli.report import translation

    data = two_domains(8, 6)
    out = tmp_path / "run"
    train_recording(out, data, "somewhere/not-here", model="tiny-translator", steps=2, batch_size=4)
    page = build_report(out).path.read_text()
    assert "the run&#x27;s data is not reachable from here (somewhere/not-here)" in page

    monkeypatch.setattr("medsyn_cli.data.load_dataset", lambda *a, **k: data)
    result = translation.translation_triplets(open_run(out), n=4)
    assert result.unavailable is None and result.has_attention and len(result.rows) == 3
    # Slices with a real mask (even indices of tumor, see two_domains) come first; Dice recomputed here.
    model, _ = __import__("medsyn_cli.training.checkpoint", fromlist=["x"]).load_for_inference(out)
    with torch.inference_mode():
        _, att = model.translate(data.tumor.images[[0, 2, 4]], to="normal")
    masks = [data.tumor.masks[j, 0].numpy() > 0.5 for j in (0, 2, 4)]
    expected = [dice(att[i, 0].numpy() > 0.5, m) for i, m in enumerate(masks)]
    expected_soft = [soft_dice(att[i, 0].numpy(), m) for i, m in enumerate(masks)]
    assert [r.dice for r in result.rows] == pytest.approx(expected)
    assert [r.soft_dice for r in result.rows] == pytest.approx(expected_soft)
    page = build_report(out, force=True).path.read_text()
    assert page.count('alt="true tumor mask"') == 3
    assert f"mean {np.mean(expected):.3f}; soft Dice" in page and f"mean {np.mean(expected_soft):.3f}." in page


def test_translation_run_shows_normal_slices_grown_to_tumor_with_attention_and_difference(tiny_models, tmp_path,
                                                                                          monkeypatch):
    from medsyn_cli.data.pixels import to_uint8
    from medsyn_cli.nn.masks import head_mask
    from medsyn_cli.report import translation

    data = two_domains(8, 6)
    data.normal.images[:4] = -1.0  # four empty frames: no brain for a tumor to grow in
    out = tmp_path / "run"
    train(out, data, model="tiny-translator", steps=2, batch_size=4)
    monkeypatch.setattr("medsyn_cli.data.load_dataset", lambda *a, **k: data)
    result = translation.translation_triplets(open_run(out), n=3, to="tumor")
    assert result.unavailable is None and len(result.rows) == 3
    chosen = translation.pick_normal_slices(data.normal, 3)
    assert all(i >= 4 for i in chosen)  # from the larger half by brain area, never an empty frame
    assert head_mask(data.normal.images[chosen]).flatten(1).any(1).all()
    model, _ = __import__("medsyn_cli.training.checkpoint", fromlist=["x"]).load_for_inference(out)
    with torch.inference_mode():
        y, _ = model.translate(data.normal.images[chosen], to="tumor")
    expected = to_uint8(((y - data.normal.images[chosen]).abs() - 1).mean(1, keepdim=True))
    assert all(np.array_equal(r.difference, expected[i]) for i, r in enumerate(result.rows))
    assert all(r.mask is None and r.dice is None for r in result.rows)
    page = build_report(out, force=True).path.read_text()
    assert "Real normal slices to tumor" in page and page.count('alt="difference"') == 6  # the page shows --translate-n (6) rows


def test_translation_run_without_a_checkpoint_says_so(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, two_domains(8, 6), model="tiny-translator", steps=2, batch_size=4)
    for p in (out / "checkpoints").iterdir():
        p.unlink()
    (out / "weights.safetensors").unlink()
    assert "no checkpoint yet" in build_report(out).path.read_text()


class ReportPlugin:
    @hookimpl
    def register_report_sections(self, register):
        register("Extra numbers", lambda run: f"<p>{run.model} at step {run.last_step}</p>")
        register("Skipped", lambda run: None)
        register("Broken", lambda run: 1 / 0)


def test_plugin_sections_are_added_and_a_failing_one_is_isolated(tiny_models, tmp_path, capsys):
    out = tmp_path / "run"
    train(out, random_images(8), steps=2, batch_size=4)
    pm.register(ReportPlugin(), name="report-test-plugin")
    try:
        result = build_report(out)
    finally:
        pm.unregister(name="report-test-plugin")
    page = result.path.read_text()
    assert "<p>tiny-gan at step 2</p>" in page and "Skipped" not in page
    assert "failed: ZeroDivisionError" in page
    assert "report section 'Broken' of plugin 'report-test-plugin' failed" in capsys.readouterr().err
    assert result.sections[-3:] == ["plugin-report-test-plugin-extra-numbers", "plugin-report-test-plugin-broken",
                                    "log"]


def test_cli_json_and_errors(tiny_models, tmp_path, monkeypatch, capsys):
    from medsyn_cli.cli import main

    out = tmp_path / "run"
    train(out, random_images(8), steps=2, batch_size=4)

    def cli(*args):
        monkeypatch.setattr(sys, "argv", ["medsyn", "report", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            main()
        return exc.value.code, capsys.readouterr()

    code, io = cli(out, "--out", tmp_path / "r.html", "--json")
    assert code in (0, None)
    info = json.loads(io.out)
    assert info["path"] == str(tmp_path / "r.html") and info["bytes"] == (tmp_path / "r.html").stat().st_size
    code, io = cli(out, "--out", tmp_path / "r.html")
    assert code == 2 and "r.html: output exists" in io.err and "--force" in io.err
    code, io = cli(tmp_path)
    assert code == 2 and io.err.strip() == f"medsyn: error: {tmp_path}: not a medsyn run directory (no config.json)"


def test_report_of_a_run_whose_model_is_not_installed_here(tmp_path):
    from test_train_tiny import TinyPlugin

    pm.register(TinyPlugin(), name="tiny-test-models")
    try:
        out = tmp_path / "run"
        train(out, two_domains(8, 6), model="tiny-translator", steps=2, batch_size=4)
    finally:
        pm.unregister(name="tiny-test-models")
    page = build_report(out).path.read_text()
    one_line = " ".join(page.replace("\\\n", " ").split())  # the command is wrapped with backslashes
    # Every model setting is spelled out (the defaults are unknown here), and the model cannot be loaded.
    assert "--set latent_dim=8 --set lr=0.001" in one_line and "unknown model &#x27;tiny-translator&#x27;" in page
    assert "finished at step 2 of 2" in page


def test_a_stopped_run_says_why(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(16), steps=50, batch_size=4, sets=["signal_at=2"])
    assert "stopped at step 3 of 50: SIGINT at step 3: checkpoint saved" in build_report(out).path.read_text()


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError) as err:
        open_run(tmp_path)
    assert err.value.exit_code == 2


def test_plot_translations_draws_four_rows_per_run_and_refuses_a_run_without_weights(tiny_models, tmp_path,
                                                                                      monkeypatch, capsys):
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("plot_translations", ROOT / "bench" / "plot_translations.py")
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    data = two_domains(8, 6)
    out = tmp_path / "run"
    train(out, data, model="tiny-translator", steps=2, batch_size=4)
    monkeypatch.setattr("medsyn_cli.data.load_dataset", lambda *a, **k: data)
    png = tmp_path / "rows.png"
    assert plot.main([f"{out}=tiny", str(out), "--n", "3", "--out", str(png)]) == 0
    with Image.open(png) as im:
        width, height = im.size
    assert height > width  # two blocks of four rows, three columns
    for p in (out / "checkpoints").iterdir():
        p.unlink()
    (out / "weights.safetensors").unlink()
    assert plot.main([str(out), "--out", str(tmp_path / "none.png")]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err and not (tmp_path / "none.png").exists()
