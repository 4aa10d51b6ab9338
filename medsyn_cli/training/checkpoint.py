"""Resume checkpoints and loading trained models for inference.

A checkpoint is a ``torch.save`` of a dict of tensors, containers and primitives only, so it loads
with ``torch.load(weights_only=True)``: no pickled code. It is written to a temporary file, flushed
and renamed (``step-NNNNNN.pt``), then hard-linked (or copied) and renamed onto ``latest.pt``; a kill
at any moment leaves the previous ``latest.pt`` intact.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.fileio import atomic_path

CHECKPOINT_FORMAT = "medsyn-checkpoint-1"
LATEST = "latest.pt"


# -- RNG states as tensors and plain lists (weights_only-loadable) ---------------------------------
def capture_rng(device: torch.device | None = None) -> dict[str, Any]:
    """torch CPU (and CUDA when used), numpy's and Python's global RNG states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": list(internal), "gauss_next": gauss_next},
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def preserve_rng(device: torch.device | None = None) -> Iterator[None]:
    """Run side work (grids, plots, lazy imports that draw from ``random``) without moving any RNG."""
    saved = capture_rng(device)
    try:
        yield
    finally:
        restore_rng(saved, device)


# -- writing and reading ---------------------------------------------------------------------------
def step_name(step: int) -> str:
    return f"step-{step:06d}.pt"


def save_checkpoint(state: dict[str, Any], ckpt_dir: Path, step: int, *, keep: int = 3) -> Path:
    """Write ``state`` as ``step-NNNNNN.pt`` and ``latest.pt``; keep the last ``keep`` step files."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    step_path = ckpt_dir / step_name(step)
    with atomic_path(step_path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as "unexpected pos ..."
            raise write_failure(exc, step_path) from None
        with open(tmp, "rb") as fh:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(fh.fileno())
    latest = ckpt_dir / LATEST
    with atomic_path(latest) as tmp:
        tmp.unlink()
        try:
            os.link(step_path, tmp)  # same bytes, no second write
        except OSError:
            shutil.copyfile(step_path, tmp)
    for old in sorted(ckpt_dir.glob("step-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return latest


def write_failure(exc: RuntimeError, path: Path) -> Exception:
    """torch.save's RuntimeError as the OSError it stands for: ENOSPC when the disk is (nearly) full."""
    import errno

    text = str(exc)
    if not any(s in text for s in ("unexpected pos", "PytorchStreamWriter", "file write failed")):
        return exc
    try:
        full = shutil.disk_usage(path.parent).free < 64 * 1024 * 1024
    except OSError:
        full = False
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, os.strerror(code), str(path))


def clean_stale(ckpt_dir: Path) -> None:
    """Remove temporary files a killed run left behind (never a finished checkpoint)."""
    for tmp in [*ckpt_dir.glob(".*.tmp"), *ckpt_dir.glob(".*.tmp-*")]:
        tmp.unlink(missing_ok=True)


def state_mismatch(exc: Exception) -> str:
    """What differs, from torch's ``load_state_dict`` error, in one line (its first line only names the
    network): ``... for Generator: size mismatch for main.0.weight: ... shape [16, 8, 4, 4] ...``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    text = ": ".join([lines[0].rstrip(":")] + lines[1:2])
    text = re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", text)
    return text if len(text) <= 300 else text[:299] + "…"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint dict (on the CPU); InputError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint file", path=path)
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: a refusal below says enough
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text advises weights_only=False, which would run the file's code
        raise InputError("not a loadable checkpoint: it holds Python objects other than tensors, and medsyn never "
                         "runs code from a checkpoint", path=path, hint="load only checkpoints medsyn wrote") from None
    except Exception as exc:  # torch raises many types for truncated/foreign files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"not a loadable checkpoint ({reason[:200]})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"not a medsyn checkpoint (format tag {CHECKPOINT_FORMAT!r} missing)", path=path)
    return ckpt


# -- inference -------------------------------------------------------------------------------------
WEIGHTS_CHOICES = ("last", "best", "live")


def _resolve_source(path: Path, weights: str = "last") -> Path:
    if weights not in WEIGHTS_CHOICES:
        raise InputError(f"unknown --weights {weights!r}", hint="use last, best or live")
    if weights == "live" and path.is_dir():
        # The export holds the average where the run kept one; the checkpoint holds both.
        latest = path / "checkpoints" / LATEST
        if not latest.is_file():
            raise InputError("--weights live needs the run's checkpoints/latest.pt, which is missing", path=path)
        return latest
    if weights == "best":
        best = path / "best.safetensors" if path.is_dir() else None
        if best is None or not best.is_file():
            raise InputError("no best.safetensors: the run never scored FID" if best is not None
                             else "--weights best takes a run directory", path=path,
                             hint="train with --eval-every N to keep the best weights")
        return best
    if path.is_dir():
        for candidate in (path / "weights.safetensors", path / "checkpoints" / LATEST):
            if candidate.is_file():
                return candidate
        raise InputError("not a medsyn run directory (no weights.safetensors or checkpoints/latest.pt)",
                         path=path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    return path


def build_model(name: str, config: dict[str, Any], res: int, channels: int, *, inference: bool = False):
    """The registered model ``name`` built with a recorded config (without touching the global RNG);
    with ``inference``, without the built-in optimizers (see :func:`medsyn_cli.gan.optim.without_optimizers`)."""
    from medsyn_cli.gan.optim import without_optimizers
    from medsyn_cli.registry import get_model

    spec = get_model(name)
    cfg = build_config(spec.config_cls, config)
    # Initialisation draws must not move the caller's RNG.
    with torch.random.fork_rng(devices=[]), (without_optimizers() if inference else contextlib.nullcontext()):
        model = spec.factory(cfg, res, channels)
    return spec, model


def load_for_inference(path: str | Path, device: str | torch.device = "cpu", weights: str = "last",
                       amp: bool | None = False):
    """Load a trained model from a run directory, a ``.pt`` checkpoint or a ``.safetensors`` export.

    A run directory means its ``weights.safetensors`` if present, else ``checkpoints/latest.pt``;
    with ``weights="best"`` its ``best.safetensors`` (the lowest FID of ``--eval-every``).
    The EMA weights are used when the run kept an EMA, except with ``weights="live"``: the last step's
    weights as trained (a run directory's ``checkpoints/latest.pt``, a checkpoint, or an export
    without an EMA), to compare the average with what it averages. Returns ``(model, meta)`` with the networks
    in eval mode on ``device``; ``meta`` has model, task, res, channels, config, intensity, step,
    ema, source, amp and amp_reason.

    ``amp`` is the precision of ``sample``/``translate`` (outputs are float32 either way): None is auto,
    the training rule (bf16 autocast on CUDA and on CPUs with native bf16, see
    :func:`~medsyn_cli.training.device.amp_choice`), True/False force it. The default, False, keeps
    float32 for callers that measure (metrics, the translation yardstick); ``medsyn sample`` and
    ``medsyn translate`` pass their ``--amp`` setting (auto unless forced).
    """
    from medsyn_cli.training.device import amp_choice, autocast_factory, resolve_device
    from medsyn_cli.training.export import read_weights

    source = _resolve_source(Path(path), weights)
    if source.suffix == ".safetensors":
        states, meta = read_weights(source)
        if weights == "live" and meta["ema"]:
            raise InputError("this export holds the generator's average, not the live weights", path=source,
                             hint="--weights live takes a run directory or a .pt checkpoint")
    else:
        ckpt = load_checkpoint(source)
        states = dict(ckpt["model_state"]["networks"])
        if ckpt.get("ema") and weights != "live":
            states.update(ckpt["ema"]["networks"])
        meta = {k: ckpt.get(k) for k in ("model", "task", "res", "channels", "config", "intensity", "step")}
        meta["ema"] = bool(ckpt.get("ema")) and weights != "live"
    spec, model = build_model(meta["model"], meta["config"], int(meta["res"]), int(meta["channels"]),
                              inference=True)
    meta["task"] = spec.task
    missing = [n for n in model.inference_networks if n not in states]
    if missing:
        raise InputError(f"weights for network {missing[0]!r} are missing", path=source)
    try:
        for name, state in states.items():
            if name in model.networks:
                model.networks[name].load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"weights do not fit model {meta['model']!r}: {state_mismatch(exc)}",
                         path=source) from None
    target = resolve_device(str(device))
    model.to(target)
    model.eval()
    meta["amp"], meta["amp_reason"] = amp_choice(target, amp)
    model.autocast = autocast_factory(target, meta["amp"])
    meta["source"] = str(source)
    return model, meta

