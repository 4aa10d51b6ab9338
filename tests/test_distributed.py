"""torchrun on the CPU: the explicit gradient averaging and collectives (two gloo processes), and a
2-process `torchrun -m medsyn_cli train` that writes exactly one run directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
import torch.multiprocessing as mp
from torch import nn

from medsyn_cli.training.checkpoint import load_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    from medsyn_cli.training.distributed import DistContext

    ctx = DistContext.from_env()
    ctx.start(torch.device("cpu"))
    try:
        torch.manual_seed(100 + rank)  # different initial weights on purpose
        net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        ctx.broadcast_modules([net])
        weights = [p.detach().clone() for p in net.parameters()]

        # Each rank's own gradients: rank r's are all (r + 1); a parameter without grad stays None.
        params = list(net.parameters())
        for p in params[:-1]:
            p.grad = torch.full_like(p, rank + 1.0)
        ctx.grad_sync()(params)
        grads = [None if p.grad is None else p.grad.clone() for p in params]

        net[1].running_mean.fill_(float(rank))
        ctx.sync_buffers([net])
        results[rank] = {
            "weights": weights, "grads": grads, "running_mean": net[1].running_mean.clone(),
            "any": ctx.any_true([rank == 1, False]), "mean": ctx.mean([float(rank), 10.0]),
            "gathered": ctx.gather({"rank": rank}),
        }
    finally:
        ctx.close()


def test_gradients_are_averaged_and_replicas_start_equal():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), results), nprocs=2, join=True)
    r0, r1 = results[0], results[1]
    for a, b in zip(r0["weights"], r1["weights"]):
        assert torch.equal(a, b)  # rank 0's initial weights everywhere
    for g0, g1 in zip(r0["grads"][:-1], r1["grads"][:-1]):
        assert torch.equal(g0, g1) and torch.all(g0 == 1.5)  # mean of 1 and 2
    assert r0["grads"][-1] is None and r1["grads"][-1] is None
    assert torch.all(r1["running_mean"] == 0.0)  # rank 0's BatchNorm statistics
    assert r0["any"] == r1["any"] == [True, False]
    assert r0["mean"] == r1["mean"] == [0.5, 10.0]
    assert r1["gathered"] == [{"rank": 0}, {"rank": 1}]


def test_torchrun_two_processes_write_one_run_directory(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, MEDSYN_PROGRESS="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "medsyn_cli", "train", "dcgan", "--res", "64", "--steps", "4", "--batch-size", "8",
           "--set", "ngf=8", "--set", "ndf=8", "--out", str(out), "--log-every", "2", "--device", "cpu"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines() == [str(out)]  # rank 0 alone reports
    assert [p.name for p in tmp_path.iterdir()] == ["ddp"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["world_size"] == 2 and cfg["training"]["per_rank_batch_size"] == 4
    ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
    assert len(ckpt["rng"]) == 2 and not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    assert [json.loads(x)["step"] for x in (out / "stats.jsonl").read_text().splitlines()] == [2, 4]
    assert (out / "weights.safetensors").exists() and (out / "samples" / "step-000004.png").exists()
    assert (out / "log.txt").read_text().count("training dcgan") == 1
