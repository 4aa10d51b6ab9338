"""Forward FLOPs as PyTorch counts them (``torch.utils.flop_counter``: 2 FLOPs per multiply-add)."""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn


def count_flops(net: nn.Module, inputs: Sequence[Any]) -> int:
    """FLOPs of ``net(*inputs)``, without gradients."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(*inputs)
    return int(counter.get_total_flops())


def meta_flops(net: nn.Module, inputs: Sequence[Any]) -> int:
    """:func:`count_flops` on a copy of ``net`` and ``inputs`` on the meta device: nothing is computed,
    so a 256x256 network costs no time or memory."""
    meta_inputs = [t.to("meta") if torch.is_tensor(t) else t for t in inputs]
    return count_flops(copy.deepcopy(net).to("meta"), meta_inputs)
