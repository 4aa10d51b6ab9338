"""The training data, from loading to the batch of each step.

``load_data`` loads per the plan (rank 0 first, so it fills the cache); ``check_data`` refuses data of
the wrong task, resolution or channels; ``fingerprint`` identifies the pixels (resume on other data is
noticed); :class:`Batches` gives the batch for global step ``k``, a pure function of (seed, k), which is
what exact resume rests on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from medsyn_cli.data.types import ImageSet, TwoDomainSet
from medsyn_cli.errors import InputError
from medsyn_cli.training.distributed import DistContext
from medsyn_cli.training.plan import TrainPlan
from medsyn_cli.training.sampler import EpochSampler


def plain_data(obj: Any) -> Any:
    """JSON-able plain data (numpy scalars/arrays become Python numbers/lists)."""
    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if torch.is_tensor(o):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default))


def fingerprint(data: ImageSet | TwoDomainSet) -> str:
    """sha256 over the preprocessed pixels (and masks): resuming on other data is detected."""
    h = hashlib.sha256()
    for t in data.pixel_tensors():
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().data)
    return h.hexdigest()[:16]


def load_data(plan: TrainPlan, ctx: DistContext) -> ImageSet | TwoDomainSet:
    """Rank 0 loads (and fills the cache) first; the other ranks then read the cache."""
    from medsyn_cli.data import load_dataset

    if not ctx.is_main:
        ctx.barrier()
    data = load_dataset(plan.data, res=plan.res, channels=plan.channels, task=plan.spec.task, fit=plan.fit)
    if ctx.is_main:
        ctx.barrier()
    return data


#: What each task needs, said when the data is of the other kind.
NEEDS = {"unconditional": "an unconditional model needs one folder of images, not normal/ and tumor/",
         "translation": "a translation model needs two domains (normal/ and tumor/ folders, or BraTS-style cases)"}


def check_data(data: ImageSet | TwoDomainSet, plan: TrainPlan) -> None:
    """The data fits the run: its task, resolution and channels (given data skips load_dataset's checks)."""
    if data.task != plan.spec.task:
        raise InputError(NEEDS[plan.spec.task], path=plan.data)
    if data.res != plan.res or data.channels != plan.channels:
        raise InputError(f"data is {data.channels}x{data.res}x{data.res}, the run wants "
                         f"{plan.channels}x{plan.res}x{plan.res}", path=plan.data)


class Batches:
    """The batch dict for global step ``k`` (this rank's share), on the training device."""

    def __init__(self, data: ImageSet | TwoDomainSet, batch_size: int, seed: int, ctx: DistContext,
                 device: torch.device, *, channels_last: bool = False):
        self.task = data.task
        self.channels_last = channels_last  # --channels-last: image batches in NHWC layout
        kw = {"rank": ctx.rank, "world": ctx.world_size}
        if self.task == "unconditional":
            self.images = self._place(data.images, device)
            self.samplers = {"image": EpochSampler(len(data), batch_size, seed, stream=0, **kw)}
        else:
            tumor = data.tumor
            masks = tumor.masks if tumor.masks is not None else torch.zeros_like(tumor.images[:, :1])
            if tumor.has_mask is not None:
                has_mask = tumor.has_mask.bool()
            else:
                has_mask = torch.full((len(tumor),), tumor.masks is not None, dtype=torch.bool)
            self.normal = self._place(data.normal.images, device)
            self.tumor = self._place(tumor.images, device)
            self.masks = self._place(masks.float(), device)
            self.has_mask = self._place(has_mask, device)
            self.samplers = {
                "normal": EpochSampler(len(data.normal), batch_size, seed, stream=0, **kw),
                "tumor": EpochSampler(len(tumor), batch_size, seed, stream=1, **kw),
            }
        self.device = device
        small = min((s.n, name) for name, s in self.samplers.items())
        if small[0] < batch_size:
            raise InputError(f"the {small[1]} data has {small[0]} images, fewer than the batch size {batch_size}",
                             hint="lower --batch-size or add images")

    @staticmethod
    def _place(t: torch.Tensor, device: torch.device) -> torch.Tensor:
        # Small datasets live on the GPU so a batch is one gather; large ones are copied per batch.
        if device.type == "cuda" and t.numel() * t.element_size() < 2 * 1024 ** 3:
            return t.to(device)
        return t

    @property
    def batches_per_epoch(self) -> int:
        """Unconditional: len // B. Translation: max over the domains (the smaller one cycles)."""
        return max(s.batches_per_epoch for s in self.samplers.values())

    def _take(self, t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # A copy from pageable host memory to a GPU waits for the GPU to finish its queue; from pinned
        # memory it does not, so the host can prepare the next step while the device runs this one.
        if t.device.type == "cuda":
            out = t[idx.pin_memory().to(t.device, non_blocking=True)]
        else:
            out = t[idx]
            if self.device.type == "cuda":
                out = out.pin_memory()
            out = out.to(self.device, non_blocking=True)
        if self.channels_last and out.dim() == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def get(self, k: int) -> dict[str, torch.Tensor]:
        if self.task == "unconditional":
            return {"image": self._take(self.images, self.samplers["image"].indices(k))}
        n_idx, t_idx = self.samplers["normal"].indices(k), self.samplers["tumor"].indices(k)
        return {"normal": self._take(self.normal, n_idx), "tumor": self._take(self.tumor, t_idx),
                "tumor_mask": self._take(self.masks, t_idx), "tumor_has_mask": self._take(self.has_mask, t_idx)}
