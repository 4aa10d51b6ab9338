"""The trainer's side work: sample grids, the loss and FID plots, FID scoring and the weights export.

Each runs on rank 0 under ``checkpoint.preserve_rng`` (torch, CUDA, numpy and Python states restored
afterwards) and, where the model runs, in eval mode with the EMA weights applied, so side work changes
neither an RNG nor the weights: exact resume holds with or without it. Compiled networks (``--compile``)
run eagerly here: side work would otherwise compile extra graphs for eval mode and its batch sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import torch

from medsyn_cli.console import show_progress
from medsyn_cli.nn.compiled import eager
from medsyn_cli.training import checkpoint as ckpt_io
from medsyn_cli.training.export import export_weights
from medsyn_cli.training.grids import save_grid, translation_rows
from medsyn_cli.training.plots import plot_fid, plot_losses
from medsyn_cli.training.stats import read_stats

#: Examples in a translation grid (rows of input | output | attention).
TRANSLATION_GRID_ROWS = 8


class SideWork:
    """Mixed into :class:`medsyn_cli.training.trainer.Trainer`; reads its ``plan``, ``s`` (settings),
    ``ctx``, ``device``, ``model``, ``ema``, ``data``, ``out``, ``samples_dir``, ``step``, ``bpe``,
    ``intensity``, ``log``, ``tensorboard``, ``scorer``, and keeps ``best`` and ``scored_step``."""

    def _grid(self) -> Path | None:
        """A grid from fixed noise (or a fixed batch of normal images), off the training RNG."""
        if not self.ctx.is_main:
            return None
        path = self.samples_dir / f"step-{self.step:06d}.png"
        with ckpt_io.preserve_rng(self.device), torch.no_grad(), eager():
            ema_ctx = self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()
            with ema_ctx:
                self.model.eval()
                try:
                    if self.plan.spec.task == "unconditional":
                        n = 64 if self.plan.res <= 128 else 16
                        images = self.model.sample(n, generator=torch.Generator().manual_seed(self.s.seed))
                        save_grid(images, path)
                    else:
                        x = self._fixed_normals()
                        y, attention = self.model.translate(x, to="tumor")
                        save_grid(translation_rows(x.cpu(), y.cpu(), None if attention is None else attention.cpu()),
                                  path, nrow=3)
                finally:
                    self.model.train()
        if self.tensorboard is not None:
            self.tensorboard.on_grid(self.step, path)
        return path

    def _fixed_normals(self) -> torch.Tensor:
        normal = self.data.normal.images
        idx = torch.linspace(0, len(normal) - 1, min(TRANSLATION_GRID_ROWS, len(normal))).round().long()
        return normal[idx].to(self.device)

    def _plot(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        with ckpt_io.preserve_rng(self.device):
            return plot_losses(read_stats(self.out / "stats.jsonl"), self.out / "loss.png",
                               title=f"{self.plan.spec.name} {self.plan.res}x{self.plan.res}")

    def _score(self) -> None:
        """FID against the training set (off the training RNG, eval mode, EMA weights); best.safetensors."""
        self.scored_step = self.step
        if self.scorer is None:  # torchrun: rank 0 scores
            return
        with ckpt_io.preserve_rng(self.device), torch.no_grad(), eager():
            ema_ctx = self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()
            with ema_ctx:
                self.model.eval()
                try:
                    scored = self.scorer.score(self.model)
                finally:
                    self.model.train()
            improved = self.best is None or scored["fid"] < self.best["fid"]
            if improved:
                self.best = {"fid": scored["fid"], "step": self.step}
                self._export(self.out / "best.safetensors")
            self.log.stats({"step": self.step, "epoch": round(self.step / self.bpe, 4), **scored, "best": improved})
            self.log.line(f"step {self.step}: FID {scored['fid']:.2f} on {scored['fid_images']} images "
                          f"({scored['fid_seconds']:.0f} s); best {self.best['fid']:.2f} at step {self.best['step']}",
                          echo=not show_progress())
            plot_fid(read_stats(self.out / "stats.jsonl"), self.out / "fid.png",
                     title=f"{self.plan.spec.name} {self.plan.res}x{self.plan.res}")

    def _export(self, path: Path | None = None) -> Path:
        names = self.model.inference_networks
        if self.ema is not None:
            states = {n: self.ema.shadow[n] for n in names}
        else:
            states = {n: self.model.networks[n].state_dict() for n in names}
        return export_weights(path or self.out / "weights.safetensors", states, model=self.plan.spec.name,
                              task=self.plan.spec.task, res=self.plan.res, channels=self.plan.channels,
                              step=self.step, config=dataclasses.asdict(self.plan.config),
                              intensity=self.intensity, ema=self.ema is not None)
