"""Resolve what ``medsyn train`` will do, before torch is imported (so ``--dry-run`` is instant).

Training settings: flag > ``--config FILE`` ``[train]`` table > ``MEDSYN_*`` environment variable >
the user's ``config.toml`` ``[train]`` table > (on ``--resume``) the run's recorded value > default.
Model settings: the model's defaults < ``MEDSYN_LR`` / ``config.toml`` ``lr`` < ``--config FILE``
``[model]`` table < ``--set key=value`` < ``--lr``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from medsyn_cli import __version__, paths
from medsyn_cli.config import build_config, parse_set, read_toml, setting, user_config
from medsyn_cli.errors import InputError
from medsyn_cli.registry import ModelSpec, get_model
from medsyn_cli.run_config import RUN_FORMAT, read_run_config
from medsyn_cli.training.plan_values import (amp_mode, as_int, boolean, check_device_name, check_ema_decay,
                                             check_holdout, check_max_minutes, identity_setting, on_off, positive)

FITS = ("pad", "resize", "crop")  # medsyn_cli.data.geometry.FITS, without importing numpy here
DEFAULT_STEPS = 10_000
#: Where each task's data comes from when --data is not given: the built-in phantoms.
DEFAULT_DATA = {"unconditional": "phantom:ct", "translation": "phantom:brain"}
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",
    "checkpoint_every": 500,
    "sample_every": 500,
    "log_every": 50,
    "ema_decay": 0.999,
    "keep_checkpoints": 3,
    "eval_every": 0,
    "tensorboard": False,
    "compile": False,
    "channels_last": False,  # what a run recorded without it trained in; a new run takes its model's (ModelSpec)
}


@dataclass
class TrainFlags:
    """The command line as given; ``None`` means "not given" so lower levels can fill it in."""

    model: str
    data: str | None = None
    res: int | None = None
    fit: str | None = None
    out: str | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    resume: bool = False
    sets: list[str] = field(default_factory=list)
    config_file: str | None = None
    checkpoint_every: int | None = None
    sample_every: int | None = None
    log_every: int | None = None
    channels: int | None = None
    amp: bool | None = None
    ema_decay: float | None = None
    force: bool = False
    eval_every: int | None = None
    fid_weights: str | None = None
    tensorboard: bool | None = None
    recipe: str | None = None
    compile: bool | None = None
    channels_last: bool | None = None
    max_minutes: float | None = None
    holdout: float | None = None


@dataclass
class TrainSettings:
    """How long and how to train; everything except the model's own settings."""

    steps: int | None  # the run's total steps (None when the length is given in epochs)
    epochs: int | None  # the run's total epochs (converted to steps once the data is loaded)
    batch_size: int  # the global batch per step; each torchrun rank takes batch_size // world_size
    seed: int
    device: str
    amp: bool | None  # None (auto): bf16 autocast on CUDA and on CPUs with native bf16, fp32 elsewhere
    checkpoint_every: int
    sample_every: int
    log_every: int
    ema_decay: float
    keep_checkpoints: int
    eval_every: int = 0  # steps between FID scores against the training set (0: never)
    fid_weights: str | None = None  # FID Inception weights file (default: the cache, see medsyn weights)
    tensorboard: bool = False  # TensorBoard event files in RUN/tensorboard
    compile: bool = False  # torch.compile each network (in place: state_dict keys unchanged)
    channels_last: bool = False  # networks and image batches in channels-last memory layout
    max_minutes: float | None = None  # training-time budget (step time summed over resumes); None: none
    holdout: float = 0.0  # fraction of the images kept out of training for the critic diagnostics (0: off)


@dataclass
class TrainPlan:
    spec: ModelSpec
    config: Any  # the model's config dataclass instance
    res: int
    channels: int
    data: str
    out: Path
    settings: TrainSettings
    fit: str = "pad"  # how images were brought to res x res (data setting, part of the run's identity)
    recipe: str = "paper"  # the bundle of model settings the run started from (--recipe)
    resume: bool = False
    force: bool = False
    world_size: int = 1
    #: On --resume: model settings that differ from the checkpoint's (name -> [old, new]).
    config_changes: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def per_rank_batch(self) -> int:
        return self.settings.batch_size // self.world_size

    def as_dict(self) -> dict[str, Any]:
        """The resolved configuration: what ``--dry-run`` prints and ``config.json`` starts from."""
        s = dataclasses.asdict(self.settings)
        s["per_rank_batch_size"] = self.per_rank_batch
        s["world_size"] = self.world_size
        return {
            "format": RUN_FORMAT,
            "model": self.spec.name,
            "task": self.spec.task,
            "plugin": self.spec.plugin,
            "model_config": dataclasses.asdict(self.config),
            "recipe": self.recipe,
            "res": self.res,
            "channels": self.channels,
            "data": {"path": self.data, "fit": self.fit},
            "training": s,
            "out": str(self.out),
            "resume": self.resume,
            "versions": versions(),
        }


def versions() -> dict[str, str]:
    out = {"medsyn": __version__, "python": platform.python_version()}
    for dist in ("torch", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - both are dependencies
            pass
    return out


def world_size_from_env() -> int:
    """torchrun sets WORLD_SIZE; a plain process is a world of one."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise InputError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def _as_recorded(value: Any) -> Any:
    """A setting as config.json holds it (tuples become lists), so that an unchanged tuple setting such as
    ``betas`` is not reported as changed on --resume."""
    if isinstance(value, (list, tuple)):
        return [_as_recorded(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_recorded(v) for k, v in value.items()}
    return value


def _length(flags: TrainFlags, file_train: dict, *, explicit_only: bool) -> tuple[int | None, int | None] | None:
    """The run's total length, from the first level that gives one (steps or epochs, not both); a bad
    value is refused naming its level."""
    levels = [("flags", flags.steps, flags.epochs),
              (f"{flags.config_file} [train]", file_train.get("steps"), file_train.get("epochs"))]
    if not explicit_only:
        levels.append(("MEDSYN_STEPS/MEDSYN_EPOCHS", os.environ.get("MEDSYN_STEPS") or None,
                       os.environ.get("MEDSYN_EPOCHS") or None))
        train_cfg = user_config().get("train", {})
        levels.append((f"{paths.config_file()} [train]", train_cfg.get("steps"), train_cfg.get("epochs")))
    for where, steps, epochs in levels:
        if steps is not None and epochs is not None:
            raise InputError(f"give --steps or --epochs, not both (both set by {where})")
        try:
            if steps is not None:
                return positive("steps", as_int(steps, "steps")), None
            if epochs is not None:
                return None, positive("epochs", as_int(epochs, "epochs"))
        except InputError as exc:
            name = "steps" if steps is not None else "epochs"
            source = {"flags": f"--{name}", "MEDSYN_STEPS/MEDSYN_EPOCHS": f"MEDSYN_{name.upper()}"}.get(
                where, f"{where} {name}")
            raise InputError(f"{exc.message} (from {source})") from None
    return None


def schedule_epochs(config: Any) -> int | None:
    """The length, in epochs, of a model whose rate follows CycleGAN's epoch schedule (``n_epochs`` at the
    base rate, then ``n_epochs_decay`` of linear decay: cyclegan, sag-gan), which is how long those papers
    train; None for a model without one."""
    n_epochs, n_decay = getattr(config, "n_epochs", None), getattr(config, "n_epochs_decay", None)
    if n_epochs is None or n_decay is None or n_epochs + n_decay < 1:
        return None
    return int(n_epochs) + int(n_decay)


def _model_overrides(flags: TrainFlags, file_model: dict, spec: ModelSpec, *, with_env: bool,
                     recipe: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Model settings over the defaults, later winning: the recipe, MEDSYN_LR, [model], --set, --lr;
    and where each was set (for error messages)."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    overrides: dict[str, Any] = dict(recipe or {})
    sources = dict.fromkeys(overrides, "the --recipe settings")
    if with_env and "lr" in fields:
        env_lr = setting("lr", None, None, cast=float, section="train")
        if env_lr is not None:
            overrides["lr"] = env_lr
            sources["lr"] = "MEDSYN_LR" if os.environ.get("MEDSYN_LR") else f"{paths.config_file()} [train] lr"
    overrides.update(file_model)
    sources.update({k: f"[model] {k} of {flags.config_file}" for k in file_model})
    sets = parse_set(flags.sets)
    overrides.update(sets)
    sources.update(dict.fromkeys(sets, "--set"))
    if flags.lr is not None:
        if "lr" not in fields:
            raise InputError(f"model {spec.name!r} has no 'lr' setting", hint="use --set NAME=VALUE")
        overrides["lr"] = flags.lr
        sources["lr"] = "--lr"
    return overrides, sources


def _check_out(out: Path, *, resume: bool, force: bool) -> None:
    from medsyn_cli.locks import check_unlocked
    from medsyn_cli.outputs import check_run_replaceable, check_writable

    if resume and force:
        raise InputError("--resume and --force contradict each other", hint="--force starts the run over")
    main_process = os.environ.get("RANK", "0") == "0"  # torchrun: rank 0 holds the run's lock
    if resume:
        read_run_config(out)
        if main_process:
            check_unlocked(out)
        if not (out / "checkpoints" / "latest.pt").exists():
            raise InputError("nothing to resume: no checkpoint was written yet", path=out,
                             hint="start it again with --force")
        return
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a directory", path=out)
    check_writable(out)
    if main_process:
        check_unlocked(out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError("output directory exists and is not empty", path=out,
                             hint="pass --resume to continue that run or --force to start it over")
        check_run_replaceable(out)  # --force only ever deletes a medsyn run directory (and nothing else)


def resolve_plan(flags: TrainFlags) -> TrainPlan:
    """Everything ``medsyn train`` needs, validated; raises InputError on a bad combination."""
    spec = get_model(flags.model)
    file_cfg = read_toml(flags.config_file, tables=("train", "model")) if flags.config_file else {}
    file_train, file_model = file_cfg.get("train", {}), file_cfg.get("model", {})
    world = world_size_from_env()

    def pick(name: str, flag: Any, default: Any, cast=str, check=None) -> Any:
        return setting(name, flag, default, cast=cast, section="train", check=check,
                       file=(flags.config_file, file_train))

    def checked(test):  # a check for pick(): ``test`` raises InputError, the value passes through
        return lambda value: (test(value), value)[1]

    res_flag = pick("res", flags.res, None, int, checked(lambda r: spec.check(r, spec.channels[0])))
    out_flag = flags.out if flags.out is not None else file_train.get("out")
    if out_flag is None:
        res_for_name = res_flag or _default_res(spec)
        out_flag = f"runs/{spec.name}-{res_for_name}"
    out = Path(out_flag)
    _check_out(out, resume=flags.resume, force=flags.force)

    stored = read_run_config(out) if flags.resume else {}
    stored_train = stored.get("training", {})
    if flags.resume:
        if stored.get("model") != spec.name:
            raise InputError(f"this run trains {stored.get('model')!r}, not {spec.name!r}", path=out)

    # Identity of the run: on --resume these come from the run and may not change.
    res = identity_setting("res", res_flag, stored.get("res"), _default_res(spec), int)
    channels = identity_setting("channels", pick("channels", flags.channels, None, int,
                                                 checked(lambda c: spec.check(spec.resolutions[0], c))),
                                stored.get("channels"), 1, int)
    data = identity_setting("data", pick("data", flags.data, None),
                            stored.get("data", {}).get("path"), DEFAULT_DATA[spec.task], str)
    # Runs made before --fit existed were padded.
    stored_fit = stored.get("data", {}).get("fit", "pad") if flags.resume else None
    fit = identity_setting("fit", pick("fit", flags.fit, None, str, checked(check_fit)), stored_fit, spec.default_fit,
                           str)
    check_fit(fit)
    if spec.task == "translation" and fit != "pad":
        raise InputError(f"--fit {fit}: translation models train on padded images (pad), so outputs map back "
                         "onto their inputs")
    # Runs made before --recipe existed used the paper recipe (the defaults).
    recipe = identity_setting("recipe", pick("recipe", flags.recipe, None, str, checked(spec.recipe)),
                              stored.get("recipe", "paper") if flags.resume else None, "paper", str)
    recipe_settings = spec.recipe(recipe)
    batch_size = identity_setting("batch_size", pick("batch_size", flags.batch_size, None, int,
                                                     partial(positive, "batch_size")),
                                  stored_train.get("batch_size"), spec.recipe_batch_size(recipe), int)
    seed = identity_setting("seed", pick("seed", flags.seed, None, int, partial(positive, "seed", allow_zero=True)),
                            stored_train.get("seed"), 0, int)

    # Runs made before --holdout existed held nothing out.
    holdout = identity_setting("holdout", pick("holdout", flags.holdout, None, float, check_holdout),
                               stored_train.get("holdout", 0.0) if flags.resume else None, 0.0, float)
    if holdout and spec.task == "translation":
        raise InputError(f"--holdout: {spec.name} is a translation model; the critic diagnostics hold out images "
                         "of unconditional models only", hint="drop --holdout")

    spec.check(res, channels)
    batch_size = positive("batch_size", batch_size)
    if batch_size % world:
        raise InputError(f"--batch-size {batch_size} is not divisible by the {world} torchrun processes",
                         hint="the batch is the global batch, split evenly over the processes")

    # Model settings.
    if flags.resume:
        base = dict(stored.get("model_config", {}))
        overrides, sources = _model_overrides(flags, file_model, spec, with_env=False)
        config = build_config(spec.config_cls, {**base, **overrides}, model=spec.name, sources=sources)
        new = {k: _as_recorded(v) for k, v in dataclasses.asdict(config).items()}
        changes = {k: [base.get(k), v] for k, v in new.items() if base.get(k) != v}
    else:
        overrides, sources = _model_overrides(flags, file_model, spec, with_env=True, recipe=recipe_settings)
        config = build_config(spec.config_cls, overrides, model=spec.name, sources=sources)
        changes = {}

    # Length: explicit flags win; on --resume the run's recorded total is the default; else the model's
    # epoch schedule where it has one (its rate is spent after it), else DEFAULT_STEPS.
    length = _length(flags, file_train, explicit_only=flags.resume)
    if length is None:
        if flags.resume:
            length = (stored_train.get("steps"), stored_train.get("epochs"))
        else:
            epochs = schedule_epochs(config)
            length = (DEFAULT_STEPS, None) if epochs is None else (None, epochs)
    steps, epochs = length

    def knob(name: str, flag: Any, cast=int, check=None, fresh: Any = None) -> Any:
        """Flag, config file, environment, then the run's recorded value on --resume, else ``fresh`` (a
        model's own default) or DEFAULTS."""
        base = DEFAULTS.get(name) if fresh is None else fresh
        default = stored_train.get(name, DEFAULTS.get(name)) if flags.resume else base
        return pick(name, flag, default, cast, check)

    # On --resume the run's recorded setting (auto stays auto), not the precision it resolved to.
    amp = pick("amp", flags.amp, amp_mode(stored_train.get("amp_setting", stored_train.get("amp"))), amp_mode)
    settings = TrainSettings(
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        seed=positive("seed", seed, allow_zero=True),
        device=str(knob("device", flags.device, str, check_device_name)),
        amp=None if amp is None else bool(amp),
        checkpoint_every=knob("checkpoint_every", flags.checkpoint_every, check=partial(positive, "checkpoint_every")),
        sample_every=knob("sample_every", flags.sample_every, check=partial(positive, "sample_every")),
        log_every=knob("log_every", flags.log_every, check=partial(positive, "log_every")),
        ema_decay=knob("ema_decay", flags.ema_decay, float, check_ema_decay),
        keep_checkpoints=knob("keep_checkpoints", None, check=partial(positive, "keep_checkpoints")),
        eval_every=knob("eval_every", flags.eval_every, check=partial(positive, "eval_every", allow_zero=True)),
        fid_weights=knob("fid_weights", flags.fid_weights, str),
        tensorboard=on_off("tensorboard", knob("tensorboard", flags.tensorboard, boolean)),
        compile=on_off("compile", knob("compile", flags.compile, boolean)),
        channels_last=on_off("channels_last", knob("channels_last", flags.channels_last, boolean,
                                                   fresh=spec.channels_last)),  # measured per model
        max_minutes=knob("max_minutes", flags.max_minutes, float, check_max_minutes),
        holdout=holdout,
    )
    if settings.tensorboard:
        from medsyn_cli.training.tensorboard import require_tensorboard

        require_tensorboard()
    return TrainPlan(spec=spec, config=config, res=res, channels=channels, data=data, out=out, fit=fit,
                     recipe=recipe, settings=settings, resume=flags.resume, force=flags.force, world_size=world,
                     config_changes=changes)


def check_fit(fit: str) -> None:
    if fit not in FITS:
        raise InputError(f"unknown --fit {fit!r}", hint=f"use one of {', '.join(FITS)}")


def _default_res(spec: ModelSpec) -> int:
    return 64 if 64 in spec.resolutions else min(spec.resolutions)
