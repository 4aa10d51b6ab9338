"""A short CPU training run of sag-gan on real BraTS 2018 slices, then `medsyn translate` of a real
240x240x155 t1ce volume: same shape, affine and header, every voxel outside the brain unchanged."""

import json
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import run_cli
from medsyn_cli.data.geometry import to_square
from medsyn_cli.data.intensity import apply_mapping
from medsyn_cli.data.readers import read_volume
from medsyn_cli.data.volumes import slice_volume, volume_mapping

RES = 64
MIN_TUMOR_PIXELS = 100  # a tumor slice shows at least this much whole tumor (seg > 0)
MIN_BRAIN_FRACTION = 0.05  # a normal slice is at least this much brain and has no tumor at all


def prepare_slices(case_dir, per_domain: int = 6):
    """(normal, tumor, masks, intensity mapping) at RES from one case's t1ce and seg, as `medsyn data prepare brats` splits them."""
    stem = case_dir / case_dir.name
    vol, img = read_volume(f"{stem}_t1ce.nii.gz")
    seg, _ = read_volume(f"{stem}_seg.nii.gz")
    mapping = volume_mapping(vol)
    normal, tumor, masks = [], [], []
    for (_, plane), (_, labels) in zip(slice_volume(vol, "axial", img.affine), slice_volume(seg, "axial", img.affine)):
        whole_tumor = (labels > 0).astype(np.float32)
        square = to_square(apply_mapping(plane, mapping)[None], RES)[0]
        if whole_tumor.sum() >= MIN_TUMOR_PIXELS:
            tumor.append(square)
            masks.append((to_square(whole_tumor[None], RES, pad_value=0.0)[0] > 0.5).astype(np.float32))
        elif whole_tumor.sum() == 0 and (plane > 0).mean() >= MIN_BRAIN_FRACTION:
            normal.append(square)
    pick = lambda items: items[:: max(1, len(items) // per_domain)][:per_domain]  # noqa: E731
    return (torch.from_numpy(np.stack(pick(normal))), torch.from_numpy(np.stack(pick(tumor))),
            torch.from_numpy(np.stack(pick(masks))), mapping)


@pytest.mark.realdata
def test_train_sag_gan_on_brats_slices_then_translate_a_real_volume(shared_data, tmp_path):
    from medsyn_cli.data.types import ImageSet, TwoDomainSet
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.trainer import run_training

    cases = sorted(p for p in (shared_data / "brats2018-sample").iterdir() if p.is_dir())
    train_case, test_case = cases[0], cases[-1]
    normal, tumor, masks, mapping = prepare_slices(train_case)
    assert normal.shape[1:] == (1, RES, RES) and tumor.shape == (6, 1, RES, RES) and masks.sum() > 0
    has_mask = torch.arange(len(tumor)) % 3 == 0  # semi-supervised: a third of the tumor slices labelled
    data = TwoDomainSet(
        ImageSet(normal, [f"normal#{i}" for i in range(len(normal))], dict(mapping)),
        ImageSet(tumor, [f"tumor#{i}" for i in range(len(tumor))], dict(mapping), masks=masks, has_mask=has_mask),
    )

    # Three epochs of the real trainer (batch 2, 3 steps/epoch), small widths so the test stays short.
    run = tmp_path / "sag-gan-run"
    flags = TrainFlags(model="sag-gan", data=str(tmp_path), res=RES, out=str(run), epochs=3, batch_size=2,
                       device="cpu", sets=["ngf=8", "ndf=8", "attention_ngf=8", "se_reduction=4",
                                           "n_epochs=2", "n_epochs_decay=2"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_training(resolve_plan(flags), data=data)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0 and result.step == 9 and result.weights.is_file()
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for row in stats for v in row["losses"].values())
    # 3 epochs done of 2 constant + 2 decaying: the trainer's on_epoch_end moved the rate to 1/3
    assert stats[-1]["lr"]["generators"] == pytest.approx(2e-4 / 3)

    source = test_case / f"{test_case.name}_t1ce.nii.gz"
    out, att = tmp_path / "to_tumor.nii.gz", tmp_path / "attention.nii.gz"
    start = time.perf_counter()
    # No --model: the run just trained is this machine's latest sag-gan run, so it is the default.
    proc = run_cli("translate", "--to", "tumor", source, "-o", out, "--attention-out", att,
                   "--device", "cpu", "--batch-size", "32",
                   env={"OMP_NUM_THREADS": "1"})  # one thread: this test machine's cores are shared
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out)]
    print(f"translated {source.name} (240x240x155) at res {RES} in {seconds:.1f} s (CLI, incl. start-up)")

    original, result = nib.load(str(source)), nib.load(str(out))
    raw, data = np.asarray(original.dataobj), np.asarray(result.dataobj)
    assert data.shape == raw.shape == (240, 240, 155)
    assert data.dtype == raw.dtype == np.int16
    assert np.array_equal(result.affine, original.affine)
    for key in ("dim", "pixdim", "qform_code", "sform_code", "srow_x", "srow_y", "srow_z", "quatern_b",
                "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z", "xyzt_units", "descrip"):
        assert np.array_equal(result.header[key], original.header[key]), key
    outside = raw == 0
    assert np.array_equal(data[outside], raw[outside])  # background outside the brain: exactly as it was
    assert not np.array_equal(data[~outside], raw[~outside])  # the brain was translated

    attention = np.asarray(nib.load(str(att)).dataobj)
    assert attention.shape == raw.shape and attention.dtype == np.float32
    assert attention[outside].max() == 0.0 and 0.0 < attention.max() <= 1.0
