"""Pool3 features of one side, computed the way pytorch-fid 0.3.0 computes them, only faster.

Per image, as pytorch-fid: uint8 RGB -> float /255 (``ToTensor``) -> ``F.interpolate`` to 299x299,
bilinear, ``align_corners=False``, no antialiasing -> ``2x - 1`` -> FID Inception -> 2048-d pool3.
pytorch-fid resizes inside the network, batch by batch; interpolation treats every image and
channel on its own, so resizing each image alone gives the same numbers (grey images are resized
once and replicated, which is also the same numbers, 3x cheaper).

Where the speed comes from: images are decoded and resized in a thread pool while the network runs;
BatchNorm is folded into the convolutions; activations are channels_last (oneDNN's fast layout on
CPU); ``torch.inference_mode``. On CUDA, TF32 is switched off so GPU numbers stay float32 numbers.
"""

from __future__ import annotations

import collections
import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from medsyn_cli.metrics.inputs import ImageInput, channel_count, iter_images, load_item
from medsyn_cli.metrics.weights import WeightsInfo, build_verified_model

INPUT_SIZE = 299
RESIZE = "bilinear to 299x299, torch.nn.functional.interpolate(align_corners=False), no antialias"
NETWORK = "FID Inception-v3 (TensorFlow 2015-12-05 graph, pytorch-fid 0.3.0 blocks), pool3, 2048-d"
#: Part of every cache key: bump when the numbers a cached entry holds could change.
PIPELINE_VERSION = "pytorch-fid-0.3.0-preprocessing/bn-folded/v1"


def preprocess(img: np.ndarray):
    """uint8 (H, W, C) -> float32 (3, 299, 299) in [-1, 1], as pytorch-fid's input pipeline."""
    import torch
    import torch.nn.functional as F

    arr = img if img.flags.writeable and img.flags.c_contiguous else np.array(img)  # PIL's are read-only
    # contiguous CHW as ToTensor makes it: a channels-last view takes another interpolation kernel,
    # whose rounding differs from pytorch-fid's at some thread counts.
    x = torch.from_numpy(arr).permute(2, 0, 1).float().div(255)
    if x.shape[0] == 1:  # replicate before resizing: a 1-channel resize rounds differently at 1 thread
        x = x.expand(3, -1, -1)
    x = F.interpolate(x.contiguous()[None], size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                      align_corners=False)[0]
    return 2 * x - 1


def default_batch_size(device: str) -> int:
    return 128 if device.startswith("cuda") else 16


class FeatureExtractor:
    """Loads (and verifies) the network on first use; extracts features of an :class:`ImageInput`."""

    def __init__(self, weights: WeightsInfo, *, device: str = "cpu", batch_size: int | None = None,
                 workers: int | None = None):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size or default_batch_size(device)
        self.workers = workers or max(1, min(8, os.cpu_count() or 1))
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import torch

            model = build_verified_model(self.weights.path).to(self.device)
            self._model = model.to(memory_format=torch.channels_last)
        return self._model

    def settings(self) -> dict[str, Any]:
        return {"feature_extractor": NETWORK, "resize": RESIZE, "device": self.device,
                "batch_size": self.batch_size, "weights": self.weights.as_dict()}

    def extract(self, inp: ImageInput, on_batch: Callable[[int], None] | None = None
                ) -> tuple[np.ndarray, set[int]]:
        """Features (N, 2048) float32 in input order, and the channel counts seen (1 grey, 3 colour)."""
        import torch

        model = self.model
        n = len(inp)
        feats = np.empty((n, 2048), dtype=np.float32)
        channels: set[int] = set()

        def work(item) -> tuple[Any, int]:
            img = load_item(item)
            return preprocess(img), channel_count(img)

        cuda = self.device.startswith("cuda")
        tf32 = contextlib.nullcontext()
        if cuda:
            tf32 = _no_tf32()
        items = iter(iter_images(inp))
        window: collections.deque[Future] = collections.deque()
        ahead = 2 * self.batch_size  # decode at most two batches ahead: bounded memory
        start = 0
        # float32 features even inside a caller's bf16 autocast (a training run scoring FID): the
        # parity with pytorch-fid must not depend on who calls
        fp32 = torch.autocast(torch.device(self.device).type, enabled=False)
        with ThreadPoolExecutor(self.workers) as pool, torch.inference_mode(), tf32, fp32:
            def refill() -> None:
                while len(window) < ahead:
                    nxt = next(items, None)
                    if nxt is None:
                        return
                    window.append(pool.submit(work, nxt[1]))

            refill()
            while window:
                batch = []
                while window and len(batch) < self.batch_size:
                    x, c = window.popleft().result()
                    batch.append(x)
                    channels.add(c)
                refill()
                x = torch.stack(batch).to(self.device, non_blocking=cuda)
                out = model(x.contiguous(memory_format=torch.channels_last))
                feats[start:start + len(batch)] = out.float().cpu().numpy()
                start += len(batch)
                if on_batch is not None:
                    on_batch(len(batch))
        return feats, channels


@contextlib.contextmanager
def _no_tf32():
    import torch

    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
