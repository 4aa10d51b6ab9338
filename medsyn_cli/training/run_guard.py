"""Around a training run: one process per run directory, one line for a disk fault (naming the last good
checkpoint and how to resume), and no half-made run directory when a fresh run fails before its first
checkpoint."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from medsyn_cli.errors import MedsynError, from_os_error
from medsyn_cli.locks import locked
from medsyn_cli.outputs import holds_only_run_entries
from medsyn_cli.training.plan import TrainPlan


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def last_checkpoint(out: Path) -> tuple[Path, int] | None:
    """``latest.pt`` and its step (from the newest ``step-N.pt``), when the run has one."""
    ckpt = out / "checkpoints"
    latest = ckpt / "latest.pt"
    if not latest.is_file():
        return None
    steps = sorted(ckpt.glob("step-*.pt"))
    try:
        step = int(steps[-1].stem.split("-")[1]) if steps else -1
    except ValueError:
        step = -1
    return latest, step


def guarded_run(plan: TrainPlan, data=None):
    """``run_training(plan, data)`` holding the run directory's lock (rank 0)."""
    from medsyn_cli.training.trainer import run_training

    out = plan.out
    existed = out.exists()
    fresh = not existed or not any(out.iterdir())
    lock = locked(out, "train") if _is_main_process() else contextlib.nullcontext()
    with lock:
        try:
            return run_training(plan, data)
        except BaseException as exc:
            saved = last_checkpoint(out)
            # Nothing to resume: leave no half-made run behind (only ever a folder this run made or
            # --force was allowed to delete).
            if saved is None and _is_main_process() and out.is_dir() and (
                    fresh or (plan.force and holds_only_run_entries(out))):
                _remove_contents(out) if existed and fresh else shutil.rmtree(out, ignore_errors=True)
            if isinstance(exc, OSError):
                raise _fault(exc, plan, saved) from None
            raise


def _remove_contents(folder: Path) -> None:
    """Empty a folder the user made (it was empty before this run), keeping the folder itself."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _fault(exc: OSError, plan: TrainPlan, saved: tuple[Path, int] | None) -> MedsynError:
    err = from_os_error(exc)
    path = getattr(exc, "filename2", None) or exc.filename
    in_run = path is None or Path(os.path.abspath(path)).is_relative_to(os.path.abspath(plan.out))
    fix = "free the space or fix the folder" if in_run else "fix it"  # an input or a cache: not the run's disk
    if saved is not None:
        latest, step = saved
        at = f" (step {step})" if step >= 0 else ""
        err.message += f"; the last good checkpoint is {latest}{at}"
        err.hint = f"{fix}, then resume with `medsyn train {plan.spec.name} --out {plan.out} --resume`"
    else:
        err.message += "; no checkpoint was written yet"
        err.hint = f"{fix}, then start the run again"
    return err
