"""Small fixtures for CLI tests: a tiny sag-gan exported as a run (translate without training), an MR or
CT-like head volume, a BraTS-style case."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from medsyn_cli.config import build_config
from medsyn_cli.registry import get_model
from medsyn_cli.training.export import export_weights

TINY = {"ngf": "4", "ndf": "4", "attention_ngf": "4", "se_reduction": "4", "n_blocks": "1"}
MR = {"kind": "percentile", "low": 0.5, "high": 99.5, "lo_value": 0.0, "hi_value": 1.0}


def tiny_run(run_dir: Path, modality: str | None = None, mapping: dict | None = None, res: int = 32) -> Path:
    """``run_dir/weights.safetensors`` of an untrained 1-channel sag-gan; each domain's intensity record
    is ``mapping`` (MR percentiles by default) plus ``modality`` when given."""
    spec = get_model("sag-gan")
    torch.manual_seed(0)
    model = spec.factory(build_config(spec.config_cls, TINY), res, 1).eval()
    domain = dict(mapping or MR)
    if modality:
        domain["modality"] = modality
    run_dir.mkdir(parents=True, exist_ok=True)
    export_weights(run_dir / "weights.safetensors",
                   {k: model.networks[k].state_dict() for k in model.inference_networks},
                   model="sag-gan", task="translation", res=res, channels=1, step=1,
                   config=dataclasses.asdict(model.config), intensity={"normal": domain, "tumor": dict(domain)},
                   ema=False)
    return run_dir


def head(shape=(24, 28, 5), ct: bool = False) -> np.ndarray:
    """An ellipsoid 'head' on a 0 background (MR-like) or on -1000 HU air (CT-like), float32."""
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    inside = (x / 0.8) ** 2 + (y / 0.7) ** 2 < 1
    plane = np.where(inside, 300 + 200 * np.sin(5 * x) * np.cos(3 * y), -1000.0 if ct else 0.0)
    vol = np.repeat(plane[..., None], shape[2], axis=2)
    return vol.astype(np.float32)


def save_nifti(path: Path, data: np.ndarray) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), str(path))
    return path


def brats_case(folder: Path, case: str) -> None:
    """A tiny BraTS-style case: t1ce and flair volumes and a seg with a tumor in the middle slices."""
    (folder / case).mkdir(parents=True)
    vol = head((64, 64, 6)) + 10.0
    vol[vol < 11] = 0.0
    seg = np.zeros(vol.shape, np.float32)
    seg[24:40, 24:40, 2:4] = 1
    for m in ("t1ce", "flair"):
        save_nifti(folder / case / f"{case}_{m}.nii.gz", vol)
    save_nifti(folder / case / f"{case}_seg.nii.gz", seg)
