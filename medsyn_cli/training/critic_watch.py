"""``--holdout``'s critic diagnostics: is the critic (or discriminator) memorising its training images?

At every log step the trainer adds to its ``stats.jsonl`` record ``critic``: the mean raw score
(``GANModel.discriminator_scores``) on a fixed set of training images (as many as are held out, at most
256), on the held-out images (at most 256), and on as many images of the live generator from fixed
noise (the generator the critic faces, not the EMA); ``gap`` = train - holdout and Karras et al.
2020's overfitting heuristic ``r_v`` = (train - holdout) / (train - fake), None where train and fake
score alike. A critic that generalises scores held-out images like training images (gap and r_v near
0); one that memorises scores its training images above unseen ones of the same kind, and r_v moves
towards 1 (held-out images scored like fakes).

It runs like side work, so it cannot change training: rank 0 only, off every training RNG
(``checkpoint.preserve_rng``), no gradients, the networks in eval mode (no BatchNorm statistics
updated, no spectral-norm power iteration) with every module's mode restored afterwards, and compiled
networks run eagerly.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from medsyn_cli.nn.compiled import eager
from medsyn_cli.training import checkpoint as ckpt_io
from medsyn_cli.training.sampler import epoch_seed

if TYPE_CHECKING:
    from medsyn_cli.model import GANModel

#: At most this many images of each kind are scored per record.
MAX_IMAGES = 256
#: The fixed subsets and the fixed noise are seeded like sampler streams of their own.
WATCH_STREAM = 8


def overfit_ratio(train: float, holdout: float, fake: float) -> float | None:
    """Karras et al. 2020's r_v = (train - holdout) / (train - fake); None when train ~ fake."""
    denominator = train - fake
    if not math.isfinite(denominator) or abs(denominator) <= 1e-6 * max(1.0, abs(train), abs(fake)):
        return None
    return (train - holdout) / denominator


class CriticWatch:
    def __init__(self, model: GANModel, train_images: torch.Tensor, held_images: torch.Tensor, seed: int,
                 device: torch.device):
        self.model, self.device = model, device
        n = min(len(held_images), MAX_IMAGES, len(train_images))
        g = torch.Generator().manual_seed(epoch_seed(seed, WATCH_STREAM, 0))
        self.train = train_images[torch.randperm(len(train_images), generator=g)[:n].sort().values]
        self.held = held_images[torch.randperm(len(held_images), generator=g)[:n].sort().values]
        self.noise_seed = epoch_seed(seed, WATCH_STREAM, 1)

    def _scores(self, images: torch.Tensor) -> torch.Tensor | None:
        return self.model.discriminator_scores(images)

    def _guarded(self, fn):
        """``fn()`` off the training RNGs, without gradients, compiled networks eager, every module's
        train/eval mode as it was afterwards."""
        modes = {m: m.training for net in self.model.networks.values() for m in net.modules()}
        try:
            with ckpt_io.preserve_rng(self.device), torch.no_grad(), eager():
                return fn()
        finally:
            for module, mode in modes.items():
                module.training = mode

    def available(self) -> bool:
        """Whether the model gives discriminator scores at all (one held-out image is scored)."""
        return self._guarded(lambda: self._scores(self.held[:1])) is not None

    def record(self) -> dict[str, Any]:
        """The ``critic`` entry of a stats record."""
        t0 = time.perf_counter()

        def measure() -> tuple[float, float, float]:
            self.model.eval()  # as for a sample grid: the generator's BatchNorm uses its running statistics
            fakes = self.model.sample(len(self.train), generator=torch.Generator().manual_seed(self.noise_seed))
            means = [self._scores(x).mean() for x in (self.train, self.held, fakes)]
            return tuple(float(m) for m in torch.stack(means).cpu())  # one host read

        train, holdout, fake = self._guarded(measure)
        return {"train": train, "holdout": holdout, "fake": fake, "gap": train - holdout,
                "r_v": overfit_ratio(train, holdout, fake), "images": len(self.train),
                "seconds": round(time.perf_counter() - t0, 3)}


def start(trainer: Any) -> CriticWatch | None:
    """The watch of ``trainer`` (a :class:`medsyn_cli.training.trainer.Trainer`; its ``holdout``, ``ctx``,
    ``model``, ``data``, ``s``, ``device``, ``log`` and ``plan`` are read) on rank 0 with ``--holdout`` set;
    None otherwise, and with one log line where the model has no discriminator score to watch."""
    if trainer.holdout is None or not trainer.ctx.is_main:
        return None
    watch = CriticWatch(trainer.model, trainer.data.images, trainer.holdout.images, trainer.s.seed, trainer.device)
    if not watch.available():
        trainer.log.line(f"note: {trainer.plan.spec.name} gives no discriminator score (discriminator_scores is None): "
                         f"--holdout keeps {len(trainer.holdout)} images out of training, the critic diagnostics "
                         "are skipped")
        return None
    return watch
