"""The model contract: the trainer owns the loop, the model owns its step.

A model subclasses :class:`GANModel`, builds its ``networks`` and ``optimizers`` (named), and
implements ``train_step``; an unconditional model implements ``sample``, a translation model
``translate``. Everything needed to resume exactly is in ``state_dict()``: the networks, the
optimizers and whatever ``extra_state()`` returns (image pools, schedules, counters).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable

import torch
from torch import nn

from medsyn_cli.nn.adam_kernel import use_fast_kernels

#: What ``train_step`` returns: each loss (or other per-step figure) by name, as a detached 0-d tensor
#: (preferred: read on the host only at log steps) or a plain float (the older contract, still accepted).
Losses = dict[str, "torch.Tensor | float"]


class GANModel:
    #: "unconditional" or "translation"; must match the ModelSpec.
    task = "unconditional"
    #: Networks that are exported for sharing/sampling (safetensors) and averaged by EMA.
    inference_networks: tuple[str, ...] = ("generator",)
    #: An explicit answer for ``wants_ema`` (None: read the config's ``ema`` setting).
    _wants_ema: bool | None = None

    def __init__(self, config: Any, res: int, channels: int):
        self.config = config
        self.res = res
        self.channels = channels
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.device = torch.device("cpu")
        # Set by the trainer: averages gradients across ranks (torchrun) before each step.
        self.grad_sync: Callable[[nn.Module], None] | None = None
        # Set by the trainer: bf16 autocast on GPU, a no-op context otherwise.
        self.autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    @property
    def wants_ema(self) -> bool:
        """Whether the trainer keeps an exponential moving average of the inference networks (and samples,
        scores and exports it): the config's ``ema`` setting where it has one, else False. A model may
        answer outright instead: ``wants_ema = True`` in its class, or ``self.wants_ema = ...``."""
        if self._wants_ema is not None:
            return self._wants_ema
        return bool(getattr(self.config, "ema", False))

    @wants_ema.setter
    def wants_ema(self, value: bool) -> None:
        self._wants_ema = bool(value)

    # -- what a model implements -------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int = 0) -> Losses:
        """One optimisation step on ``batch``; returns its losses by name, each a detached 0-d tensor or
        a plain float.

        Return tensors and do not call ``.item()``: reading a value on the host waits for the device to
        finish the step, so a GPU would idle between steps. The trainer keeps running sums where the
        tensors are and reads them (one transfer) only at log steps, before side work (grids, plots,
        FID, checkpoints, the export), at a stop and at the end; a non-finite loss is then reported
        with the exact step that first had one, and nothing of that step is saved. Floats (the older
        contract) still work. Return the same names in the same order from step to step where you can
        (a new set of names is fine, e.g. for a new training phase).

        ``step`` counts the steps done before this one, ``epoch`` the epochs finished before it (the
        trainer's ``step // batches_per_epoch``), so a schedule needs no counter of its own. A model whose
        ``train_step`` takes only ``(batch, step)`` still works: see :func:`step_function`."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1], shape (n, C, res, res) (unconditional models)."""
        raise NotImplementedError(f"{type(self).__name__} is not an unconditional model")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: str, region: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Translate a batch in [-1, 1] to domain ``to``; returns (images, attention or None).

        ``region`` (N, 1, H, W) in [0, 1], where given, is where the change may happen: outside it the
        output is the input (``medsyn translate --where``). A model written before ``region`` existed
        (``translate(x, to)``) still works; the host refuses ``--where`` for it."""
        raise NotImplementedError(f"{type(self).__name__} is not a translation model")

    def extra_state(self) -> dict[str, Any]:
        """Anything beyond networks and optimizers that resuming needs (tensors or plain data)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> None:
        """Called after the last step of epoch ``epoch`` (0-based), before that step is logged."""

    # -- provided ----------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> "GANModel":
        """Networks and optimizer state onto ``device``; Adam takes that device's fastest kernel."""
        self.device = torch.device(device)
        for net in self.networks.values():
            net.to(self.device)
        for opt in self.optimizers.values():  # optimizer state follows the parameters
            for state in opt.state.values():
                for k, v in state.items():
                    if torch.is_tensor(v) and k != "step":
                        state[k] = v.to(self.device)
            use_fast_kernels(opt, self.device)
        return self

    def train(self, mode: bool = True) -> "GANModel":
        for net in self.networks.values():
            net.train(mode)
        return self

    def eval(self) -> "GANModel":
        return self.train(False)

    def optimize(self, name: str, loss: torch.Tensor, *, retain_graph: bool = False) -> None:
        """Zero, backpropagate, synchronise across ranks and step the optimizer ``name``."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward(retain_graph=retain_graph)
        if self.grad_sync is not None:
            for group in opt.param_groups:
                self.grad_sync(group["params"])
        opt.step()

    @torch.no_grad()
    def run_eval(self, net: nn.Module, inputs: torch.Tensor, *, chunk: int = 256) -> torch.Tensor:
        """``net`` on ``inputs`` in eval mode (BatchNorm running statistics), in chunks, under the
        trainer's autocast, returned as float32; the network's train/eval mode is restored."""
        was_training = net.training
        net.eval()
        try:
            out = []
            for part in inputs.split(chunk):
                with self.autocast():
                    out.append(net(part.to(self.device)).float())
        finally:
            net.train(was_training)
        if not out:
            return torch.empty(0, self.channels, self.res, self.res, device=self.device)
        return torch.cat(out)

    def discriminator_scores(self, images: torch.Tensor) -> torch.Tensor | None:
        """The raw score the model's discriminator (or critic) gives each image, shape (N,), float32: no
        gradient, eval mode (BatchNorm's running statistics; none updated), under the model's autocast,
        the network's mode restored; a spatial output (a PatchGAN map) is averaged per image. What
        ``--holdout``'s diagnostics compare on training, held-out and generated images.

        By default the network named ``critic`` or ``discriminator``; a model whose discriminator is
        built otherwise (several outputs, two discriminators) overrides this, and one without any
        returns None (the diagnostics are then skipped)."""
        name = next((n for n in ("critic", "discriminator") if n in self.networks), None)
        return None if name is None else self.score_images(self.networks[name], images)

    @torch.no_grad()
    def score_images(self, net: nn.Module, images: torch.Tensor, *, select: Callable[[Any], torch.Tensor] | None = None,
                     chunk: int = 256) -> torch.Tensor:
        """``net``'s score of each image as in :meth:`discriminator_scores`; ``select`` picks the score
        from the network's output when it returns more than one thing (e.g. ``lambda out: out[0]``)."""
        was_training = {m: m.training for m in net.modules()}
        net.eval()
        try:
            out = []
            for part in images.split(chunk):
                with self.autocast():
                    scores = net(part.to(self.device))
                    scores = select(scores) if select is not None else scores
                out.append(scores.float().reshape(part.shape[0], -1).mean(dim=1))
        finally:
            for module, mode in was_training.items():
                module.training = mode
        return torch.cat(out) if out else torch.empty(0, device=self.device)

    @staticmethod
    def requires_grad(module: nn.Module, flag: bool) -> None:
        """Freeze a network while another is updated (saves backward work, as the references do)."""
        for p in module.parameters():
            p.requires_grad_(flag)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: v.state_dict() for k, v in self.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, net in self.networks.items():
            net.load_state_dict(state["networks"][k])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        self.load_extra_state(state.get("extra", {}))

    def flops_per_image(self) -> dict[str, int]:
        """Forward FLOPs (2 per multiply-add) of each network for one image, counted on the meta device
        (nothing is computed) from the model's ``example_inputs(network_name, 1)``."""
        from medsyn_cli.nn.flops import meta_flops

        example_inputs = getattr(self, "example_inputs", None)
        if example_inputs is None:
            raise NotImplementedError(f"{type(self).__name__} defines no example_inputs(network_name, batch)")
        return {name: meta_flops(net, example_inputs(name, 1)) for name, net in self.networks.items()}

    def parameter_counts(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters()) for k, v in self.networks.items()}


def step_function(model: GANModel) -> Callable[[dict[str, torch.Tensor], int, int], Losses]:
    """``model.train_step`` as ``f(batch, step, epoch)``, also for a model written against the older
    ``train_step(batch, step)`` contract (the signature is inspected once)."""
    fn = model.train_step
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or C-level callable: assume the current contract
        return fn
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn
    if any(p.name == "epoch" and p.kind == p.KEYWORD_ONLY for p in params) or any(
            p.kind == p.VAR_KEYWORD for p in params):
        return lambda batch, step, epoch: fn(batch, step, epoch=epoch)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 3:
        return fn
    return lambda batch, step, epoch: fn(batch, step)


def supports_region(model) -> bool:
    """Whether ``model.translate`` takes ``region`` (a model written before it existed does not)."""
    try:
        return "region" in inspect.signature(model.translate).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
