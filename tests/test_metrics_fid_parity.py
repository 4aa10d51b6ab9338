"""FID parity with pytorch-fid 0.3.0 on real COVID-CT images, with the same local weights.

pytorch-fid runs its own code end to end (its InceptionV3, ImagePathDataset, get_activations,
calculate_frechet_distance); only its weight download is redirected to the local file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

N_PER_SIDE = 20


def covid_folders(shared_data: Path, tmp_path: Path, n: int) -> tuple[Path, Path]:
    files = sorted((shared_data / "covid-ct-noncovid").iterdir())
    # Spread the picks so both sides mix PNG/JPG, grey/RGB and sizes, as the whole set does.
    step = max(1, len(files) // (2 * n))
    picks = files[::step][: 2 * n]
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, chosen in ((real, picks[0::2]), (fake, picks[1::2])):
        folder.mkdir()
        for f in chosen:
            shutil.copy(f, folder / f.name)
    return real, fake


def pytorch_fid_value(real: Path, fake: Path, weights: Path) -> tuple[float, np.ndarray]:
    pytest.importorskip("pytorch_fid")
    import torch
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pfi

    state = torch.load(weights, map_location="cpu", weights_only=True)
    # pytorch-fid loads strictly and the local file has no classifier; fc is unused for pool3.
    state.setdefault("fc.weight", torch.zeros(1008, 2048))
    state.setdefault("fc.bias", torch.zeros(1008))
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    finally:
        pfi.load_state_dict_from_url = original
    stats = []
    acts = None
    for folder in (real, fake):
        # As pytorch-fid's own CLI lists a folder: image files only (not medsyn's .medsyn-output.json).
        files = sorted(p for p in folder.iterdir() if p.suffix.lower().lstrip(".") in fid_score.IMAGE_EXTENSIONS)
        # batch_size=1: the images have different sizes, which pytorch-fid's default collation refuses.
        act = fid_score.get_activations(files, model, batch_size=1, dims=2048, device="cpu", num_workers=0)
        acts = act if acts is None else acts
        stats.append((np.mean(act, axis=0), np.cov(act, rowvar=False)))
    return float(fid_score.calculate_frechet_distance(*stats[0], *stats[1])), acts


def check_parity(real: Path, fake: Path, fid_weights: Path, n: int) -> None:
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate

    theirs, their_real_acts = pytorch_fid_value(real, fake, fid_weights)
    result = evaluate(str(real), str(fake), EvalOptions(metrics=("fid",), weights=str(fid_weights)))
    ours = result["metrics"]["fid"]
    print(f"FID ours={ours!r} pytorch-fid={theirs!r} |diff|={abs(ours - theirs):.3g}")
    assert abs(ours - theirs) < 1e-3
    assert result["real"]["count"] == result["fake"]["count"] == n
    # The features themselves agree to float rounding (BatchNorm folding, batching).
    from medsyn_cli.metrics import stats_cache

    cached = stats_cache.load(result["real"]["cache_key"])
    assert cached is not None
    np.testing.assert_allclose(cached.features, their_real_acts, rtol=0, atol=1e-4)


@pytest.mark.realdata
def test_fid_matches_pytorch_fid(shared_data, fid_weights, tmp_path):
    check_parity(*covid_folders(shared_data, tmp_path, N_PER_SIDE), fid_weights, N_PER_SIDE)


@pytest.mark.slow
@pytest.mark.realdata
def test_fid_matches_pytorch_fid_100_per_side(shared_data, fid_weights, tmp_path):
    check_parity(*covid_folders(shared_data, tmp_path, 100), fid_weights, 100)
