"""Networks under ``torch.compile``, and a way to run them eagerly where compiled code cannot go.

``nn.Module.compile()`` compiles a module's call in place: the module object, its parameters and
its ``state_dict`` keys stay as they are (no ``_orig_mod.`` wrapper as ``torch.compile(module)``
returns), so checkpoints, EMA and the weights export see the same network compiled or not.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

#: ``torch.compiler.set_stance`` (what :func:`eager` needs) arrived in torch 2.6.
MIN_TORCH = (2, 6)


def compile_available() -> bool:
    return hasattr(torch, "compiler") and hasattr(torch.compiler, "set_stance")


def eager() -> ContextManager:
    """Run compiled modules eagerly inside this block: for a double backward (the gradient penalty's
    ``create_graph=True``, which compiled autograd graphs do not support) and for side work (sample
    grids, FID) that would otherwise compile graphs for eval mode and other batch sizes."""
    if compile_available():
        return torch.compiler.set_stance("force_eager")
    return contextlib.nullcontext()
