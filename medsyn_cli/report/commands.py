"""The shell commands that reproduce a run from its ``config.json``, and what to do with it next."""

from __future__ import annotations

import shlex
from typing import Any

#: Recorded training settings and the ``medsyn train`` flag that sets each.
TRAIN_FLAGS = (("batch_size", "--batch-size"), ("seed", "--seed"), ("checkpoint_every", "--checkpoint-every"),
               ("sample_every", "--sample-every"), ("log_every", "--log-every"), ("ema_decay", "--ema-decay"),
               ("eval_every", "--eval-every"), ("holdout", "--holdout"))
#: Settings left out of the command when 0 (off).
OFF_WHEN_ZERO = ("eval_every", "holdout")


def _model_defaults(model: str) -> dict[str, Any] | None:
    from medsyn_cli.errors import MedsynError
    from medsyn_cli.registry import get_model

    try:
        return get_model(model).default_config()
    except MedsynError:
        return None  # the plugin is not installed here: give every setting


def _set_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def train_command(config: dict[str, Any], run_dir: str) -> str:
    """``medsyn train`` with every recorded setting that decides the result (the length as steps)."""
    t = config.get("training", {})
    world = int(t.get("world_size") or 1)
    launcher = ["torchrun", f"--nproc_per_node={world}", "-m", "medsyn_cli"] if world > 1 else ["medsyn"]
    args = [*launcher, "train", str(config.get("model", "?")), "--data", str(config.get("data", {}).get("path")),
            "--res", str(config.get("res")), "--channels", str(config.get("channels", 1)),
            "--steps", str(t.get("steps"))]
    if config.get("data", {}).get("fit"):
        args += ["--fit", str(config["data"]["fit"])]
    for key, flag in TRAIN_FLAGS:
        if t.get(key) is not None and not (key in OFF_WHEN_ZERO and not t[key]):
            args += [flag, str(t[key])]
    if t.get("amp") is not None:
        args.append("--amp" if t["amp"] else "--no-amp")
    device = t.get("device_used") or t.get("device")
    if device:
        args += ["--device", str(device).split(":")[0] if str(device).startswith("cuda") else str(device)]
    if t.get("tensorboard"):
        args.append("--tensorboard")
    defaults = _model_defaults(str(config.get("model")))
    for key, value in config.get("model_config", {}).items():
        if defaults is None or defaults.get(key) != value:
            args += ["--set", f"{key}={_set_value(value)}"]
    args += ["--out", run_dir]
    return _wrap(args)


def _wrap(args: list[str]) -> str:
    """One command, a flag kept with its value, broken into lines of about 88 characters."""
    tokens: list[str] = []
    for arg in map(shlex.quote, args):
        if tokens and tokens[-1].startswith("--") and " " not in tokens[-1] and not arg.startswith("--"):
            tokens[-1] += " " + arg
        else:
            tokens.append(arg)
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + len(token) + 1 > 88:
            lines.append(line + " \\")
            line = "    " + token
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "\n".join(lines)


def next_commands(config: dict[str, Any], run_dir: str) -> list[str]:
    """Sampling or translating with the run, and regenerating this report."""
    q = shlex.quote(run_dir)
    if config.get("task") == "translation":
        out = [f"medsyn translate --to tumor scan.nii.gz --model {q} --attention-out attention.nii.gz"]
    else:
        data = shlex.quote(str(config.get("data", {}).get("path")))
        out = [f"medsyn sample {q} --n 2000 --out fake/",
               f"medsyn eval fid {data} fake/ --json"]
    out.append(f"medsyn report {q}")
    return out
