"""``--compile`` and ``--channels-last``: how the trainer prepares a model's networks for speed.

Both change how the arithmetic is laid out and scheduled, not what it is: the same weights, the same
``state_dict`` keys (compiling is done in place, see :mod:`medsyn_cli.nn.compiled`), so checkpoints and
exported weights do not depend on either setting, and a run may be resumed with or without them.
"""

from __future__ import annotations

import torch

from medsyn_cli.errors import TrainingError
from medsyn_cli.model import GANModel
from medsyn_cli.nn.compiled import MIN_TORCH, compile_available


def prepare_networks(model: GANModel, device: torch.device, *, compile: bool = False,
                     channels_last: bool = False) -> None:
    """Put ``model``'s networks (already on ``device``) in channels-last layout and/or compile them."""
    if channels_last:
        for net in model.networks.values():
            net.to(memory_format=torch.channels_last)  # 4-D weights only; parameters keep their identity
    if compile:
        check_compile(device)
        for net in model.networks.values():
            net.compile()


def check_compile(device: torch.device) -> None:
    """Refuse ``--compile`` up front, in one line, where it cannot work: an old torch, or a backend that
    fails on a two-op function (on the CPU, inductor needs a C++ compiler)."""
    if not compile_available():
        raise TrainingError(f"--compile needs torch >= {'.'.join(map(str, MIN_TORCH))} "
                            f"(installed: {torch.__version__}); train without --compile")
    try:
        torch.compile(_probe, fullgraph=True)(torch.ones(8, device=device))
    except Exception as exc:  # whatever the backend raises: a missing compiler, a broken toolchain
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise TrainingError(f"--compile: torch.compile does not work on {device}: {first.strip()}; "
                            "train without --compile") from None


def _probe(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x * 2 - 1)

