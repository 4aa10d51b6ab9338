"""An exponential moving average of a model's inference networks (for models with ``wants_ema``).

Parameters are averaged; buffers (BatchNorm running statistics) are copied from the live network,
as StyleGAN2-ADA does. The decay warms up as ``min(decay, (1 + t) / (10 + t))`` (the rule of
TensorFlow's ExponentialMovingAverage with ``num_updates``) so early samples are not dominated by
the random initialisation.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from medsyn_cli.model import GANModel


class EMA:
    def __init__(self, model: GANModel, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.names = tuple(model.inference_networks)
        self.shadow: dict[str, dict[str, torch.Tensor]] = {
            name: {k: v.detach().clone() for k, v in model.networks[name].state_dict().items()}
            for name in self.names
        }

    @torch.no_grad()
    def update(self, model: GANModel) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name in self.names:
            net = model.networks[name]
            shadow = self.shadow[name]
            params = dict(net.named_parameters())
            for k, v in net.state_dict().items():
                if k in params and v.is_floating_point():
                    shadow[k].lerp_(v.detach(), 1.0 - decay)
                else:
                    shadow[k].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "networks": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name in self.names:
            for k, v in state["networks"][name].items():
                self.shadow[name][k].copy_(v)

    @contextlib.contextmanager
    def applied(self, model: GANModel) -> Iterator[GANModel]:
        """Temporarily load the averaged weights into ``model`` (for sample grids), then restore."""
        saved = {n: {k: v.detach().clone() for k, v in model.networks[n].state_dict().items()}
                 for n in self.names}
        try:
            for n in self.names:
                model.networks[n].load_state_dict(self.shadow[n])
            yield model
        finally:
            for n in self.names:
                model.networks[n].load_state_dict(saved[n])
