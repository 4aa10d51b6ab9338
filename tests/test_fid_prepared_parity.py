"""FID against native-size reals equals pytorch-fid's FID against ``medsyn data export``'s PNGs.

``medsyn eval fid NATIVE FAKE`` brings the native COVID-CT images to FAKE's size through the training
pipeline; pytorch-fid, run on the folder ``medsyn data export`` writes, must give the same number
(within 1e-3), at two resolutions. This is what lets anyone check a medsyn FID with another tool.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from test_metrics_fid_parity import pytorch_fid_value

N = 10


def _copy(files: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    return folder


@pytest.mark.realdata
@pytest.mark.parametrize("res", [pytest.param(32, marks=pytest.mark.slow), 64])  # 32 in CI's slow run
def test_prepared_reals_match_pytorch_fid_on_the_export(res, shared_data, fid_weights, tmp_path):
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate

    files = sorted((shared_data / "covid-ct-noncovid").iterdir())
    picks = files[:: len(files) // (2 * N)][: 2 * N]
    native = _copy(picks[0::2], tmp_path / "native")  # mixed sizes, PNG and JPEG, grey and RGB
    # FAKE: other images at res x res (a different fit, so the two sides differ).
    fake = tmp_path / "fake"
    proc = run_cli("data", "export", _copy(picks[1::2], tmp_path / "other"), "--res", res, "--fit", "crop",
                   "--out", fake)
    assert proc.returncode == 0, proc.stderr
    (fake / "export.json").unlink()
    exported = tmp_path / "exported"
    proc = run_cli("data", "export", native, "--res", res, "--fit", "resize", "--out", exported)
    assert proc.returncode == 0, proc.stderr
    (exported / "export.json").unlink()

    ours = evaluate(str(native), str(fake), EvalOptions(weights=str(fid_weights), cache=False))
    assert ours["real"]["prepared"] == {"res": res, "channels": 1, "fit": "resize", "from": "FAKE side"}
    theirs, _ = pytorch_fid_value(exported, fake, fid_weights)
    print(f"res {res}: medsyn {ours['metrics']['fid']!r} pytorch-fid {theirs!r}")
    assert abs(ours["metrics"]["fid"] - theirs) < 1e-3

    # --real-as-is compares the native images: a different (larger) number.
    as_is = evaluate(str(native), str(fake), EvalOptions(weights=str(fid_weights), cache=False, real_as_is=True))
    assert as_is["real"]["prepared"] is None
    assert abs(as_is["metrics"]["fid"] - theirs) > 1.0


@pytest.mark.realdata
def test_a_real_folder_of_class_folders_is_read_as_training_reads_it(shared_data, fid_weights, tmp_path):
    """CT KIDNEY's layout (Normal/, Cyst/, ...): training reads it recursively, so the prepared REAL side does
    too and counts every image; without preparation (--real-as-is) the folder's top has none: exit 2."""
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate

    kidney = shared_data / "ct-kidney"
    if not kidney.is_dir():
        pytest.skip("ct-kidney data not present")
    real = tmp_path / "real"
    real.mkdir()
    for cls in ("Normal", "Cyst"):
        _copy(sorted((kidney / cls).iterdir())[:4], real / cls)
    fake = tmp_path / "fake"
    proc = run_cli("data", "export", real, "--res", 64, "--fit", "resize", "--out", fake)
    assert proc.returncode == 0, proc.stderr
    (fake / "export.json").unlink()

    ours = evaluate(str(real), str(fake), EvalOptions(weights=str(fid_weights), cache=False))
    assert ours["real"]["count"] == 8 and ours["real"]["prepared"]["res"] == 64
    assert abs(ours["metrics"]["fid"]) < 1e-3  # the same images, prepared the same way

    proc = run_cli("eval", "fid", real, fake, "--real-as-is", "--weights", fid_weights)
    assert proc.returncode == 2 and "REAL side is empty" in proc.stderr
