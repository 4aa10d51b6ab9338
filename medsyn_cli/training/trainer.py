"""The training loop. The model owns its step (``train_step``); the trainer owns everything around it:
data order, device and autocast, torchrun, EMA, checkpoints and exact resume, the NaN guard, stop
signals, ``stats.jsonl``/``log.txt``; the data and its batches are in :mod:`.batches`, sample grids,
plots, FID scoring and the weights export in :mod:`.sidework`.

Exact resume rests on three things: the batch for step ``k`` is a pure function of (seed, k)
(:mod:`medsyn_cli.training.sampler`); the checkpoint holds every RNG state (torch, CUDA, numpy,
Python) next to the networks, optimizers and the model's ``extra_state``; and side work (sample
grids, plots, log lines, the export) runs under ``checkpoint.preserve_rng`` (torch, CUDA, numpy and
Python states restored afterwards; lazy imports such as rich's or matplotlib's draw from ``random``)
and grids in eval mode, so side work changes neither an RNG nor the weights.

No step waits for the device: ``train_step`` returns loss tensors, the :class:`LossMeter` sums them
and watches for non-finite ones where they are, and the host reads them once per check point (a log
step, a step with side work, a stop, the last step), before anything of the step is saved.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn_cli import runs_index
from medsyn_cli.console import progress, show_progress  # here, not in the loop: importing rich draws from ``random``
from medsyn_cli.data.types import ImageSet, TwoDomainSet
from medsyn_cli.errors import InputError, TrainingError
from medsyn_cli.model import GANModel, step_function
from medsyn_cli.outputs import remove_run
from medsyn_cli.training import checkpoint as ckpt_io, critic_watch
from medsyn_cli.training.batches import Batches, check_data, fingerprint, load_data, plain_data
from medsyn_cli.training.device import amp_choice, autocast_factory, configure_backends, resolve_device
from medsyn_cli.training.distributed import DistContext
from medsyn_cli.training.ema import EMA
from medsyn_cli.training.holdout import holdout_record, split_holdout
from medsyn_cli.training.plan import TrainPlan
from medsyn_cli.training.run_record import record_finish, write_run_config
from medsyn_cli.training.sidework import SideWork
from medsyn_cli.training.speedups import prepare_networks
from medsyn_cli.training.signals import StopRequest
from medsyn_cli.training.stats import LossMeter, RunLog, format_losses, truncate_stats
from medsyn_cli.training.tensorboard import TensorBoardWriter


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps completed
    total: int  # the run's planned total
    exit_code: int = 0  # 0 finished; 130/143 stopped by SIGINT/SIGTERM
    grid: Path | None = None
    plot: Path | None = None
    weights: Path | None = None
    best: Path | None = None  # best.safetensors (lowest FID) when the run scored FID
    checkpoint: Path | None = None
    message: str = ""
    budget_spent: bool = False  # ended by --max-minutes before its planned steps


def run_training(plan: TrainPlan, data: ImageSet | TwoDomainSet | None = None) -> TrainResult:
    """Train per ``plan`` (torchrun-aware). ``data`` may be given to skip loading ``plan.data``."""
    ctx = DistContext.from_env()
    device = resolve_device(plan.settings.device, ctx.local_rank if ctx.active else None)
    ctx.start(device)
    try:
        trainer = Trainer(plan, ctx, device, data)
        try:
            return trainer.run()
        finally:
            if trainer.tensorboard is not None:
                trainer.tensorboard.close()
    finally:
        ctx.close()


# -- the trainer -----------------------------------------------------------------------------------
class Trainer(SideWork):
    def __init__(self, plan: TrainPlan, ctx: DistContext, device: torch.device,
                 data: ImageSet | TwoDomainSet | None = None):
        self.plan, self.ctx, self.device = plan, ctx, device
        self.s = plan.settings
        self.out = plan.out
        self.ckpt_dir = self.out / "checkpoints"
        self.samples_dir = self.out / "samples"
        configure_backends(device)

        self.data = data if data is not None else load_data(plan, ctx)
        check_data(self.data, plan)
        self.fingerprint = fingerprint(self.data)  # the data as loaded; then --holdout's images leave it
        self.data, self.holdout = split_holdout(self.data, self.s.holdout, self.s.seed)
        self.batches = Batches(self.data, self.s.batch_size, self.s.seed, ctx, device,
                               channels_last=self.s.channels_last)
        self.bpe = self.batches.batches_per_epoch
        self.total = self.s.epochs * self.bpe if self.s.epochs is not None else int(self.s.steps)
        self.intensity = plain_data(self.data.intensity_record())
        self.scorer = None  # before the run directory is made: missing FID weights refuse the run
        if self.s.eval_every and ctx.is_main:
            from medsyn_cli.training.scoring import FIDScorer

            self.scorer = FIDScorer(self.data, plan.spec.task, self.s.fid_weights, device, self.s.seed)

        self._prepare_dir()
        self.log = RunLog(self.out, enabled=ctx.is_main)

        # Same initial weights everywhere (rank 0's are broadcast too); then each rank its own noise.
        seed_everything(self.s.seed)
        self.model: GANModel = plan.spec.factory(plan.config, plan.res, plan.channels)
        if self.model.task != plan.spec.task:
            raise TrainingError(f"model {plan.spec.name!r} says task {self.model.task!r}, its spec {plan.spec.task!r}")
        if ctx.active and ctx.rank > 0:
            torch.manual_seed(self.s.seed + 7919 * ctx.rank)
        self.model.to(device)
        prepare_networks(self.model, device, compile=self.s.compile, channels_last=self.s.channels_last)
        self.amp, self.amp_reason = amp_choice(device, self.s.amp)
        if ctx.active and self.s.amp is None:  # a measured choice could differ by rank: rank 0's holds for all
            self.amp, self.amp_reason = ctx.gather((self.amp, self.amp_reason))[0]
        self.model.autocast = autocast_factory(device, self.amp)
        self.model.grad_sync = ctx.grad_sync()
        self.ema = EMA(self.model, self.s.ema_decay) if self.model.wants_ema and ctx.is_main else None

        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumes
        self.saved_step = -1
        self.best: dict[str, Any] | None = None  # {"fid", "step"} of best.safetensors
        self.scored_step = -1
        if plan.resume:
            self._resume()
        self.tensorboard = None  # --tensorboard: hears every stats record and sample grid
        if self.s.tensorboard and ctx.is_main:
            purge = self.step + 1 if plan.resume else None  # drop what the stopped run logged past its checkpoint
            self.tensorboard = TensorBoardWriter(self.out / "tensorboard", purge_step=purge)
            self.log.listeners.append(self.tensorboard.on_stats)
        ctx.broadcast_modules(self.model.networks.values())
        self.model.train()
        self.critic_watch = critic_watch.start(self)  # --holdout: the critic's scores at every log step
        self._write_config()

    # -- set-up --------------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        if self.ctx.is_main:
            if self.plan.force and self.out.exists() and any(self.out.iterdir()) and not self.plan.resume:
                remove_run(self.out)  # only ever a medsyn run directory holding nothing else
            for d in (self.out, self.ckpt_dir, self.samples_dir):
                d.mkdir(parents=True, exist_ok=True)
            ckpt_io.clean_stale(self.ckpt_dir)
        self.ctx.barrier()

    def _resume(self) -> None:
        state = ckpt_io.load_checkpoint(self.ckpt_dir / ckpt_io.LATEST)
        if state.get("model") != self.plan.spec.name:
            raise InputError(f"checkpoint is of model {state.get('model')!r}", path=self.ckpt_dir / ckpt_io.LATEST)
        fresh_groups = {k: [{h: v for h, v in g.items() if h != "params"} for g in opt.param_groups]
                        for k, opt in self.model.optimizers.items()}
        try:
            self.model.load_state_dict(state["model_state"])
        except (RuntimeError, KeyError, ValueError) as exc:
            changed = ", ".join(self.plan.config_changes) or "none"
            raise InputError(f"checkpoint does not fit the model settings: {ckpt_io.state_mismatch(exc)}",
                             path=self.ckpt_dir / ckpt_io.LATEST,
                             hint=f"settings changed on this resume: {changed}; resume with the run's settings, "
                                  "or start a new run in another --out") from None
        if self.plan.config_changes:  # new --lr/--set: optimizer hyperparameters come from the new config
            for k, opt in self.model.optimizers.items():
                for group, fresh in zip(opt.param_groups, fresh_groups[k]):
                    group.update(fresh)
        self.model.to(self.device)  # optimizer state onto the device
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        rngs = state["rng"]
        if len(rngs) == self.ctx.world_size:
            ckpt_io.restore_rng(rngs[self.ctx.rank], self.device)
        else:
            self.log.line(f"note: checkpoint was written by {len(rngs)} process(es), now {self.ctx.world_size}; "
                          "the data order is kept but random draws differ from an uninterrupted run")
            ckpt_io.restore_rng(rngs[0], self.device)
            if self.ctx.rank > 0:
                torch.manual_seed(self.s.seed + 7919 * self.ctx.rank + int(state["step"]))
        self.step = self.saved_step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.best = state.get("best")
        if state.get("data_fingerprint") != self.fingerprint:
            self.log.line("warning: the data differs from the data this run was trained on (fingerprint "
                          f"{state.get('data_fingerprint')} -> {self.fingerprint})")
        if self.plan.config_changes:
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in self.plan.config_changes.items())
            self.log.line(f"note: model settings changed on resume ({changes})")
        if self.ctx.is_main:
            truncate_stats(self.out / "stats.jsonl", self.step)

    def _write_config(self) -> None:
        if not self.ctx.is_main:
            return
        cfg = self.plan.as_dict()
        cfg["training"]["steps"] = self.total
        cfg["training"]["batches_per_epoch"] = self.bpe
        cfg["training"]["amp_setting"] = "auto" if self.s.amp is None else self.s.amp  # what --resume takes again
        cfg["training"]["amp"] = self.amp
        cfg["training"]["amp_reason"] = self.amp_reason
        cfg["training"]["device_used"] = str(self.device)
        cfg["data"].update({"count": self.data.counts(), "intensity": self.intensity,
                            "fingerprint": self.fingerprint, **holdout_record(self.holdout)})
        write_run_config(self.out / "config.json", cfg, resume=self.plan.resume, step=self.step,
                         config_changes=self.plan.config_changes)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        plan, s = self.plan, self.s
        result = TrainResult(run_dir=self.out, step=self.step, total=self.total)
        self._meter = LossMeter()
        self._bar_on = show_progress() and self.ctx.is_main
        what = f"{plan.spec.name} {plan.channels}x{plan.res}x{plan.res} on {self.device}"
        if self.ctx.active:
            what += f" x{self.ctx.world_size} processes ({self.plan.per_rank_batch} images each per step)"
        precision = "bf16 autocast" if self.amp else "fp32"
        layout = ", channels-last layout" if s.channels_last else ""
        budget = f", at most {s.max_minutes:g} training minutes" if s.max_minutes else ""
        self.log.line(f"training {what} in {precision} ({self.amp_reason}){layout}: {self.data.counts()} images, "
                      f"batch {s.batch_size}, {self.bpe} steps/epoch, step {self.step} -> {self.total}{budget}")
        if self.step >= self.total:
            self.log.line(f"already at step {self.step} of {self.total}; pass a larger --steps to train on")
        elif self._out_of_time():
            self.log.line(f"already at the --max-minutes budget ({self.elapsed / 60:.1f} of {s.max_minutes:g} "
                          "training minutes); pass a larger --max-minutes to train on")
            return self._finish(result, budget_spent=True)
        meter = self._meter
        train_step = step_function(self.model)
        bar_on = self._bar_on
        with StopRequest() as stop, progress() as bar:
            task = bar.add_task(f"{plan.spec.name}", total=self.total, completed=self.step, info="")
            while self.step < self.total:
                k = self.step
                t0 = time.perf_counter()
                batch = self.batches.get(k)
                waited = time.perf_counter() - t0
                meter.add(train_step(batch, k, k // self.bpe), k)  # no host read: the device runs ahead
                # A stop request (or a spent --max-minutes budget) in torchrun waits for the next check
                # point, the same step on every rank.
                late = self._out_of_time(time.perf_counter() - t0)
                check = self._check_point(k + 1) or ((stop.requested or late) and not self.ctx.active)
                bad = meter.check() if check else None  # the one host read, before any side work
                dt = time.perf_counter() - t0  # at a check point this includes the device catching up
                if check:
                    stop_now, any_bad, late = self.ctx.any_true([stop.requested, bad is not None, late])
                    if any_bad:
                        self._nan_stop(bad)
                self.step = k + 1
                self.elapsed += dt
                meter.time(s.batch_size, dt, waited)
                if self.ema is not None:
                    self.ema.update(self.model)
                if self.ctx.active:
                    self.ctx.sync_buffers(self.model.networks.values())
                if self.step % self.bpe == 0:
                    self.model.on_epoch_end(self.step // self.bpe - 1)
                if self.step % s.log_every == 0 or self.step == self.total:
                    means = self._log_step(meter, echo=not bar_on)
                    bar.update(task, info=f"{format_losses(means)} | {meter.images_per_s():.1f} img/s")
                    meter.reset()
                bar.update(task, completed=self.step)
                if self.step % s.sample_every == 0:
                    self._grid()
                    self._plot()
                if s.eval_every and self.step % s.eval_every == 0:
                    self._score()
                if self.step % s.checkpoint_every == 0:
                    self._checkpoint()
                if check and stop_now:
                    return self._stopped(stop, result)
                if check and late and self.step < self.total:
                    return self._finish(result, budget_spent=True)
        return self._finish(result)

    def _out_of_time(self, running: float = 0.0) -> bool:
        """Whether the training-time budget (``--max-minutes``) is spent, counting ``running`` seconds of
        the step in progress."""
        return bool(self.s.max_minutes) and self.elapsed + running >= self.s.max_minutes * 60

    def _check_point(self, step: int) -> bool:
        """Whether the losses are read on the host after ``step`` steps: a log step or one with side
        work (grid, plot, score, checkpoint; the last step's export): nothing of a NaN step is saved."""
        s = self.s
        return (step == self.total or step % s.log_every == 0 or step % s.sample_every == 0
                or step % s.checkpoint_every == 0 or bool(s.eval_every and step % s.eval_every == 0))

    def _log_step(self, meter: LossMeter, *, echo: bool) -> dict[str, float]:
        names = list(meter.names)  # the model's order; the same on every rank
        local = meter.means()
        means = dict(zip(names, self.ctx.mean([local[n] for n in names])))
        ips = meter.images_per_s()
        record = {
            "step": self.step,
            "epoch": round(self.step / self.bpe, 4),
            "losses": means,
            "images_per_s": round(ips, 2),
            "data_wait_s": round(meter.wait, 4),
            "data_wait_fraction": round(meter.wait_fraction(), 4),
            "seconds": round(self.elapsed, 3),
            "lr": {k: opt.param_groups[0]["lr"] for k, opt in self.model.optimizers.items()},
        }
        if self.critic_watch is not None:
            record["critic"] = self.critic_watch.record()
        self.log.stats(record)
        self.log.line(f"step {self.step}/{self.total} epoch {record['epoch']:.2f} {format_losses(means)} "
                      f"| {ips:.1f} img/s", echo=echo)
        return means

    def _nan_stop(self, bad: tuple[int, str, float] | None) -> None:
        """Stop before anything of the bad step is saved; the last good checkpoint stays as it is. The
        step named is the first whose loss was not finite (the earliest over ranks)."""
        reported = [b for b in self.ctx.gather(bad) if b is not None]
        k, name, value = min(reported, key=lambda b: b[0]) if reported else (self.step, "?", float("nan"))
        latest = self.ckpt_dir / ckpt_io.LATEST
        where = (f"last good checkpoint at {latest} (step {self.saved_step})" if self.saved_step >= 0
                 else "no checkpoint was written yet")
        message = f"step {k + 1}: loss {name} is {value}; {where} (try a lower --lr)"
        self.log.line(f"stopped: {message}", echo=False)
        self._plot()
        raise TrainingError(message)

    def _stopped(self, stop: StopRequest, result: TrainResult) -> TrainResult:
        if self.saved_step != self.step:
            self._checkpoint()
        self._plot()
        latest = self.ckpt_dir / ckpt_io.LATEST
        result.step, result.exit_code = self.step, stop.exit_code if stop.requested else 130
        result.checkpoint = latest
        result.message = (f"{stop.name or 'signal'} at step {self.step}: checkpoint saved to {latest}; resume with "
                          f"`medsyn train {self.plan.spec.name} --out {self.out} --resume`")
        self.log.line(f"stopped: {result.message}", echo=False)
        return result

    def _finish(self, result: TrainResult, budget_spent: bool = False) -> TrainResult:
        """Score, checkpoint, grid, plot and export the last step: a finished run, also when the
        --max-minutes budget ended it before its --steps (recorded in config.json's ``finished``)."""
        if budget_spent and self._meter.count:
            self._log_step(self._meter, echo=not self._bar_on)  # the last steps' losses, as at the planned end
        if self.s.eval_every and self.scored_step != self.step:
            self._score()
        if self.saved_step != self.step:
            self._checkpoint()
        result.step = self.step
        result.budget_spent = budget_spent and self.step < self.total
        result.checkpoint = self.ckpt_dir / ckpt_io.LATEST
        if not self.ctx.is_main:
            return result
        grid = self.samples_dir / f"step-{self.step:06d}.png"
        result.grid = grid if grid.exists() else self._grid()
        result.plot = self._plot()
        result.weights = self._export()
        best = self.out / "best.safetensors"
        result.best = best if self.best is not None and best.exists() else None
        record_finish(self.out / "config.json", step=self.step, planned=self.total, seconds=self.elapsed,
                      budget_spent=budget_spent)
        runs_index.record_run(self.plan.spec.name, self.out, self.step)
        self.log.line(f"finished at step {self.step} ({self.elapsed:.1f} s of training)", echo=False)
        return result

    # -- checkpoints -----------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        rngs = self.ctx.gather(ckpt_io.capture_rng(self.device))  # every rank's, for exact resume
        if self.ctx.is_main:
            state = {
                "format": ckpt_io.CHECKPOINT_FORMAT,
                "model": self.plan.spec.name,
                "task": self.plan.spec.task,
                "config": dataclasses.asdict(self.plan.config),
                "res": self.plan.res,
                "channels": self.plan.channels,
                "step": self.step,
                "epoch": self.step // self.bpe,
                "position": self.step % self.bpe,
                "batches_per_epoch": self.bpe,
                "batch_size": self.s.batch_size,
                "seed": self.s.seed,
                "world_size": self.ctx.world_size,
                "model_state": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": rngs,
                "intensity": self.intensity,
                "data_fingerprint": self.fingerprint,
                "elapsed": self.elapsed,
                "best": self.best,
                "medsyn_version": self.plan.as_dict()["versions"]["medsyn"],
            }
            ckpt_io.save_checkpoint(state, self.ckpt_dir, self.step, keep=self.s.keep_checkpoints)
        self.saved_step = self.step
        self.ctx.barrier()

def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
