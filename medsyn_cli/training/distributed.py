"""torchrun support: detect the environment, average gradients explicitly, and a few collectives.

Why not ``DistributedDataParallel``? A GAN step runs several forwards per backward (D on real, D on
fake, D on the generator's output for G's loss), freezes networks in turn, and WGAN-GP's gradient
penalty needs a double backward (``create_graph=True``), which DDP's gradient reducer does not support.
So every rank keeps a full replica, parameters are broadcast from rank 0 once, and each optimizer step
averages the gradients of exactly the parameters it updates (``GANModel.optimize`` calls
``model.grad_sync(params)``), flattened into one buffer per call so it is one all-reduce.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    """This process's place in a torchrun job (a world of one without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started: bool = False
    device: torch.device | None = None  # where NCCL collectives put their tensors

    @classmethod
    def from_env(cls) -> "DistContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 or "RANK" not in os.environ:
            return cls()
        return cls(rank=int(os.environ["RANK"]), world_size=world,
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        """Join the process group: gloo on CPU, NCCL on CUDA."""
        if not self.active or self.started:
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"timeout": datetime.timedelta(minutes=30)}
        if device.type == "cuda":
            torch.cuda.set_device(device)
            kwargs["device_id"] = device
        dist.init_process_group(backend=backend, **kwargs)
        self.started = True
        self.device = device

    def close(self) -> None:
        if self.started and dist.is_initialized():
            dist.destroy_process_group()
        self.started = False

    # -- collectives (no-ops in a world of one) ----------------------------------------------
    def barrier(self) -> None:
        if self.started:
            dist.barrier()

    def broadcast_modules(self, modules: Iterable[nn.Module]) -> None:
        """Make every replica start from rank 0's parameters and buffers."""
        if not self.started:
            return
        with torch.no_grad():
            for module in modules:
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)

    def sync_buffers(self, modules: Iterable[nn.Module]) -> None:
        """Rank 0's floating buffers (BatchNorm running statistics) to all, as DDP does each forward."""
        if not self.started:
            return
        buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
        for group in _by_dtype(buffers):
            flat = torch.cat([b.reshape(-1) for b in group])
            dist.broadcast(flat, src=0)
            for b, chunk in zip(group, flat.split([b.numel() for b in group])):
                b.copy_(chunk.view_as(b))

    def grad_sync(self) -> Callable[[list[torch.Tensor]], None] | None:
        """The function the trainer sets as ``model.grad_sync``: averages gradients over ranks."""
        if not self.started:
            return None
        world = self.world_size

        def average_gradients(params: list[torch.Tensor]) -> None:
            grads = [p.grad for p in params if p.grad is not None]
            for group in _by_dtype(grads):
                flat = torch.cat([g.reshape(-1) for g in group])
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
                flat.div_(world)
                for g, chunk in zip(group, flat.split([g.numel() for g in group])):
                    g.copy_(chunk.view_as(g))

        return average_gradients

    def any_true(self, flags: list[bool]) -> list[bool]:
        """Per flag, whether any rank raised it (used for stop requests and the NaN guard)."""
        if not self.started:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def mean(self, values: list[float]) -> list[float]:
        """The mean of each value over ranks."""
        if not self.started or not values:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64 if self._collective_device().type == "cpu"
                         else torch.float32, device=self._collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [v / self.world_size for v in t.tolist()]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (on every rank): used to save each rank's RNG state."""
        if not self.started:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def _by_dtype(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    return list(groups.values())
