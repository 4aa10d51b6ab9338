"""FID during training (``--eval-every N``), with the HAGAN paper's protocol: as many synthetic images
as real ones, against the training set as training prepared it (same fit, mapping and channels).

Unconditional models: samples from fixed noise (the EMA weights when the run keeps an EMA) against
the prepared training images. Translation models: the normal images translated to tumor against the
same number of real tumor images. The real side's statistics are computed once per process.
Scoring runs off the training RNG and in eval mode, so it changes neither the weights nor the
batches (exact resume holds with or without it).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from medsyn_cli.data.pixels import to_uint8
from medsyn_cli.metrics import fid as fid_mod
from medsyn_cli.metrics.features import FeatureExtractor
from medsyn_cli.metrics.inputs import ArrayPart, ImageInput

#: Images per generator forward while scoring.
CHUNK = 64


class FIDScorer:
    """Scores a model's FID against its training data; ``score(model)`` -> (fid, count, seconds)."""

    def __init__(self, data, task: str, weights_path: str | None, device: torch.device, seed: int):
        from medsyn_cli.metrics.weights import resolve_weights

        self.task, self.device, self.seed = task, device, seed
        self.weights = resolve_weights(weights_path)  # fails now, before training, when there are none
        if task == "unconditional":
            self.real = data.images
            self.inputs = None
        else:  # translated normals against real tumors, equal counts
            n = min(len(data.normal), len(data.tumor))
            self.real = data.tumor.images[_spread(len(data.tumor), n)]
            self.inputs = data.normal.images[_spread(len(data.normal), n)]
        self.count = int(self.real.shape[0])
        self._extractor: FeatureExtractor | None = None
        self._real_stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            dev = "cuda" if self.device.type == "cuda" else "cpu"
            self._extractor = FeatureExtractor(self.weights, device=dev)
        return self._extractor

    def _stats(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features, mean, covariance) of ``images``; the features make FID's trace root cheap."""
        inp = ImageInput(spec="training", parts=[ArrayPart(to_uint8(images), "training")], kinds={"array"})
        feats, _ = self.extractor.extract(inp)
        return (feats, *fid_mod.statistics(feats))

    @torch.no_grad()
    def _fakes(self, model) -> torch.Tensor:
        out = []
        if self.inputs is None:
            generator = torch.Generator().manual_seed(self.seed + 1)  # not the grids' noise
            for start in range(0, self.count, CHUNK):
                b = min(CHUNK, self.count - start)
                out.append(model.sample(b, generator=generator).float().cpu())
        else:
            for start in range(0, self.count, CHUNK):
                x = self.inputs[start:start + CHUNK].to(self.device)
                y, _ = model.translate(x, to="tumor")
                out.append(y.float().cpu())
        return torch.cat(out).clamp(-1, 1)

    def score(self, model) -> dict[str, Any]:
        """FID of ``model`` (already in eval mode, EMA applied) against the training images."""
        t0 = time.perf_counter()
        if self._real_stats is None:
            self._real_stats = self._stats(self.real)
        real, mu_r, sigma_r = self._real_stats
        fake, mu, sigma = self._stats(self._fakes(model))
        value = fid_mod.frechet_distance(mu_r, sigma_r, mu, sigma, features=(real, fake))
        return {"fid": float(value), "fid_images": self.count, "fid_seconds": round(time.perf_counter() - t0, 2)}


def _spread(n: int, k: int) -> torch.Tensor:
    """``k`` indices spread evenly over ``range(n)`` (deterministic, no RNG)."""
    return torch.linspace(0, n - 1, k).round().long()
