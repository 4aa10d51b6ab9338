"""Learning-rate policies that are functions of the trainer's counters, so they keep no state and
resume from the step alone.

CycleGAN's policy: constant for ``n_epochs``, then linearly down towards zero.

As the reference's ``lr_policy="linear"``: during the epoch that follows ``k`` finished epochs the
rate is ``lr * (1 - max(0, k + 1 - n_epochs) / (n_epochs_decay + 1))``, so epoch ``n_epochs`` still
runs at the full rate and the last of the ``n_epochs + n_epochs_decay`` epochs at ``lr / (decay+1)``.
The epoch comes from the trainer (``train_step``'s ``epoch``, ``on_epoch_end``).

A step-based decay (:func:`step_decay_factor`) for models trained to a step or time budget: constant
until ``start``, then linearly down to ``floor`` times the rate over ``length`` steps, then held.
"""

from __future__ import annotations

import torch


def linear_decay_factor(epochs_done: int, n_epochs: int, n_epochs_decay: int) -> float:
    return max(0.0, 1.0 - max(0, epochs_done + 1 - n_epochs) / float(n_epochs_decay + 1))


class LinearDecaySchedule:
    """Sets the rate of every parameter group of ``optimizers`` for a given number of finished epochs."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], lr: float, n_epochs: int,
                 n_epochs_decay: int):
        self.optimizers = optimizers
        self.base_lr = float(lr)
        self.n_epochs = int(n_epochs)
        self.n_epochs_decay = int(n_epochs_decay)

    def lr(self, epochs_done: int) -> float:
        return self.base_lr * linear_decay_factor(epochs_done, self.n_epochs, self.n_epochs_decay)

    def set_epoch(self, epochs_done: int | None) -> None:
        """The rate for the epoch after ``epochs_done`` finished ones (``None``: leave it as it is)."""
        if epochs_done is None:
            return
        set_rate(self.optimizers, self.lr(epochs_done))


def step_decay_factor(step: int, start: int, length: int, floor: float) -> float:
    """The factor on the base rate for step ``step`` (0-based): 1 before ``start`` (or when ``start`` < 0),
    then linear from 1 to ``floor`` over ``length`` steps, ``floor`` after that."""
    if start < 0 or step < start:
        return 1.0
    if length <= 0:
        return float(floor)
    return 1.0 - (1.0 - float(floor)) * min(1.0, (step - start) / float(length))


def configured_step_rate(config, step: int) -> float:
    """The rate at ``step`` of a model config with ``lr`` and the ``lr_decay_start``/``_steps``/``_floor``
    settings (hagan; ct-kernel-wgan and wgan-linconv apply the same factor to each network's own rate)."""
    return config.lr * step_decay_factor(step, config.lr_decay_start, config.lr_decay_steps, config.lr_decay_floor)


def set_rate(optimizers: dict[str, torch.optim.Optimizer], lr: float) -> None:
    """Set every parameter group of every optimizer to ``lr``."""
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr
