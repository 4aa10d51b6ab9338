"""``medsyn train``: train a registered model into a run directory."""

from __future__ import annotations

from typing import List, Optional

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}


def train(
    model: str = typer.Argument(..., help="Model name or alias (see `medsyn models`)."),
    data: Optional[str] = typer.Option(
        None, "--data", "-d",
        help="Image folder, NIfTI/DICOM, or phantom:ct / phantom:brain. Default: phantom:ct for "
             "unconditional models, phantom:brain for translation models."),
    res: Optional[int] = typer.Option(None, "--res", "-r", help="Resolution (must be one the model supports). [default: 64]"),
    fit: Optional[str] = typer.Option(
        None, "--fit", help="How images become RES x RES: pad (aspect kept), resize, or crop (centre square). "
                            "[default: the model's paper's choice, see `medsyn models show MODEL`]"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run directory. [default: runs/MODEL-RES]"),
    steps: Optional[int] = typer.Option(None, "--steps", help="The run's total steps (also on --resume). [default: 10000; cyclegan and sag-gan: n_epochs + n_epochs_decay epochs, their rate schedule]"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="The run's total length in epochs instead of steps."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b",
                                             help="Global batch per step (split over torchrun processes). "
                                                  "[default: the model's]"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (the model's `lr` setting)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed. [default: 0]"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N. [default: auto]"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/latest.pt."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration as JSON and exit."),
    recipe: Optional[str] = typer.Option(
        None, "--recipe", help="A named bundle of model settings: paper (the defaults, as the paper trains) or one "
                               "the model offers, e.g. fast (see `medsyn models show MODEL`); --set wins over it. "
                               "[default: paper]"),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Model setting KEY=VALUE (repeatable)."),
    config_file: Optional[str] = typer.Option(None, "--config",
                                              help="TOML file with [train] (these options) and [model] tables."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints. [default: 500]"),
    sample_every: Optional[int] = typer.Option(None, "--sample-every", help="Steps between sample grids. [default: 500]"),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Steps between log lines / stats records. [default: 50]"),
    channels: Optional[int] = typer.Option(None, "--channels", help="Image channels. [default: 1]"),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp",
                                       help="bf16 autocast on or off. [default: auto: on for CUDA and for CPUs with "
                                            "native bf16 (avx512_bf16, AMX), off elsewhere]"),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", help="Training-time budget: after the step that spends it, write the checkpoint and "
                                    "weights and exit 0 as a finished run (step time, summed over resumes; "
                                    "--resume with a larger budget goes on; 0: none). [default: none]"),
    holdout: Optional[float] = typer.Option(
        None, "--holdout", help="Keep this fraction (0 to 0.5) of the images out of training, chosen by --seed, and "
                                "log the critic's mean score on training, held-out and generated images at every "
                                "log step (is the critic memorising?); part of the run's identity. Unconditional "
                                "models. 0: off. [default: 0]"),
    ema_decay: Optional[float] = typer.Option(None, "--ema-decay",
                                              help="EMA decay for models that keep one. [default: 0.999]"),
    force: bool = typer.Option(False, "--force", help="Delete an existing run in --out and start over."),
    eval_every: Optional[int] = typer.Option(
        None, "--eval-every", help="Score FID every N steps against the training set (as many samples as "
                                   "training images); keeps best.safetensors. 0: never. [default: 0]"),
    fid_weights: Optional[str] = typer.Option(None, "--fid-weights",
                                              help="FID Inception weights for --eval-every [default: the cache]."),
    tensorboard: Optional[bool] = typer.Option(
        None, "--tensorboard/--no-tensorboard",
        help="Also write TensorBoard event files (losses, FID, sample grids) to RUN/tensorboard; "
             "needs `pip install 'medsyn[tensorboard]'`. [default: off]"),
    compile_nets: Optional[bool] = typer.Option(
        None, "--compile/--no-compile",
        help="torch.compile each network (the first steps wait for the compiler; on the CPU it needs a C++ "
             "compiler, else the run stops with exit 1). [default: off]"),
    channels_last: Optional[bool] = typer.Option(
        None, "--channels-last/--no-channels-last",
        help="Networks and image batches in channels-last memory layout. [default: the model's; "
             "`medsyn models show MODEL`]"),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print one JSON object (run directory, steps, final losses, seconds, "
                                      "weights) instead of the run directory."),
) -> None:
    """Train MODEL on a folder of scans (or the built-in phantoms) into a run directory.

    The run directory gets config.json, stats.jsonl, log.txt, checkpoints/, samples/, loss.png and,
    at the end, weights.safetensors; its path is printed on stdout. Settings come from the flag,
    then the [train] table of --config FILE, then `MEDSYN_*` variables, then the [train] table of the
    user's config.toml, then (on --resume) the run's recorded value, then the default.
    Ctrl-C (or SIGTERM) finishes the step, saves a checkpoint and tells how to resume.

    Examples:

        medsyn train dcgan --res 64 --steps 50 --out runs/try
        medsyn train dcgan --data ./covid-ct --res 64 --out runs/dcgan64 --steps 20000
        medsyn train dcgan --out runs/dcgan64 --resume --steps 40000
        medsyn train wgan --data ./covid-ct --res 64 --set n_critic=5 --dry-run
        medsyn train hagan --data ./covid-ct --res 64 --eval-every 2000 --out runs/hagan64
        medsyn train wgan --data ./covid-ct --res 64 --holdout 0.1 --eval-every 1000 --out runs/wgan-watch
        medsyn train dcgan --data ./covid-ct --res 64 --recipe fast --out runs/dcgan-fast
        medsyn train sag-gan --data brats-train --res 64 --max-minutes 20 --out runs/sag20
        medsyn train sag-gan --out runs/sag20 --resume --max-minutes 60
        medsyn train dcgan --steps 50 --out runs/try --json | jq .losses
        torchrun --nproc_per_node=2 -m medsyn_cli train dcgan --res 64 --out runs/ddp
    """
    from medsyn_cli.cli.common import echo_json, log
    from medsyn_cli.training.plan import TrainFlags, resolve_plan

    flags = TrainFlags(
        model=model, data=data, res=res, fit=fit, out=out, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, device=device, resume=resume, sets=list(sets or []), config_file=config_file,
        checkpoint_every=checkpoint_every, sample_every=sample_every, log_every=log_every,
        channels=channels, amp=amp, ema_decay=ema_decay, force=force, eval_every=eval_every,
        fid_weights=fid_weights, tensorboard=tensorboard, recipe=recipe, compile=compile_nets,
        channels_last=channels_last, max_minutes=max_minutes, holdout=holdout,
    )
    plan = resolve_plan(flags)
    if dry_run:
        echo_json(plan.as_dict())
        return

    import os
    import time

    from medsyn_cli.training.run_guard import guarded_run

    started = time.monotonic()
    result = guarded_run(plan)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        raise typer.Exit(result.exit_code)
    if as_json:  # one object, also when stopped by a signal (then "finished" is false)
        echo_json(train_report(result, time.monotonic() - started))
        if result.exit_code:
            log(f"medsyn: {result.message}")
            raise typer.Exit(result.exit_code)
        return
    if result.exit_code:
        log(f"medsyn: {result.message}")
        raise typer.Exit(result.exit_code)
    if result.budget_spent:
        log(f"finished at the --max-minutes budget: step {result.step} of {result.total}")
    for label, path in (("sample grid", result.grid), ("loss plot", result.plot),
                        ("weights", result.weights), ("best weights", result.best), ("checkpoint", result.checkpoint)):
        if path is not None:
            log(f"{label}: {path}")
    typer.echo(str(result.run_dir))


def train_report(result, seconds: float) -> dict:
    """What ``train --json`` prints: where the run is, how far it got, its last logged losses."""
    from medsyn_cli.training.stats import read_stats

    records = read_stats(result.run_dir / "stats.jsonl")
    last = records[-1] if records else {}
    return {
        "run_dir": str(result.run_dir),
        "finished": result.exit_code == 0 and (result.step >= result.total or result.budget_spent),
        "ended_by": "max_minutes" if result.budget_spent else "steps" if result.step >= result.total else "signal",
        "exit_code": result.exit_code, "steps": result.step, "total_steps": result.total,
        "losses": last.get("losses", {}), "losses_step": last.get("step"), "seconds": round(seconds, 3),
        "train_seconds": last.get("seconds"),
        **{k: None if v is None else str(v) for k, v in (("weights", result.weights),
           ("checkpoint", result.checkpoint), ("grid", result.grid), ("loss_plot", result.plot))},
    }


def register(app: typer.Typer) -> None:
    app.command("train", context_settings=CONTEXT, no_args_is_help=True)(train)
