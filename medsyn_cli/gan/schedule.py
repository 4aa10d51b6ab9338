"""CycleGAN's learning-rate policy: constant for ``n_epochs``, then linearly down towards zero.

As the reference's ``lr_policy="linear"``: during the epoch that follows ``k`` finished epochs the
rate is ``lr * (1 - max(0, k + 1 - n_epochs) / (n_epochs_decay + 1))``, so epoch ``n_epochs`` still
runs at the full rate and the last of the ``n_epochs + n_epochs_decay`` epochs at ``lr / (decay+1)``.
"""

from __future__ import annotations

from typing import Any

import torch


def linear_decay_factor(epochs_done: int, n_epochs: int, n_epochs_decay: int) -> float:
    return max(0.0, 1.0 - max(0, epochs_done + 1 - n_epochs) / float(n_epochs_decay + 1))


class LinearDecaySchedule:
    """Sets the rate of every parameter group of ``optimizers``; the epoch count is its state."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], lr: float, n_epochs: int,
                 n_epochs_decay: int):
        self.optimizers = optimizers
        self.base_lr = float(lr)
        self.n_epochs = int(n_epochs)
        self.n_epochs_decay = int(n_epochs_decay)
        self.epochs_done = 0

    @property
    def lr(self) -> float:
        return self.base_lr * linear_decay_factor(self.epochs_done, self.n_epochs, self.n_epochs_decay)

    def step(self) -> None:
        """Called once per finished epoch."""
        self.epochs_done += 1
        self.apply()

    def apply(self) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.lr

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_done = int(state.get("epochs_done", 0))
        self.apply()
