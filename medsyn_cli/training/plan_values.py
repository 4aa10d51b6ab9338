"""One training setting's value, parsed and checked: what ``training/plan.py`` applies to every level
(flag, ``--config`` file, environment, ``config.toml``, the run's record) before it resolves a plan."""

from __future__ import annotations

from typing import Any

from medsyn_cli.errors import InputError


def boolean(text: str) -> bool:
    """Parse an environment variable such as ``MEDSYN_AMP=0``."""
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def amp_mode(text: Any) -> bool | None:
    """``--amp`` from a file or variable: on/off as for :func:`boolean`, or ``auto`` (None: bf16 where the
    device has it natively, see :func:`medsyn_cli.training.device.amp_choice`)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    return text if isinstance(text, bool) else boolean(text)


amp_mode.expected = "true, false or auto"  # what a config error says was expected


def check_max_minutes(value: Any) -> float | None:
    """A training-time budget in minutes: > 0, or 0 for none (None)."""
    minutes = float(value)
    if minutes != minutes or minutes < 0 or minutes == float("inf"):
        raise InputError(f"--max-minutes must be a positive number of minutes (0: no budget), not {value!r}")
    return minutes or None


def check_holdout(value: Any) -> float:
    """The fraction of the training images kept out of training for the critic diagnostics: 0 (off) or
    a number in (0, 0.5]."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise InputError(f"--holdout must be a fraction in (0, 0.5] (0: off), not {value!r}") from None
    if isinstance(value, bool) or not (fraction == 0 or 0 < fraction <= 0.5):
        raise InputError(f"--holdout must be a fraction in (0, 0.5] (0: off), not {value!r}")
    return fraction


def positive(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """An integer >= 1 (>= 0 with ``allow_zero``); TOML floats like 500.0 are accepted."""
    ok = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
    if not ok or int(value) < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise InputError(f"{name.replace('_', '-')} must be {kind} integer, not {value!r}")
    return int(value)


def as_int(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise InputError(f"{name}={value!r} is not an integer") from None
    return value


def on_off(name: str, value: Any) -> bool:
    """An on/off setting; a TOML string such as "off" is parsed, not taken as truthy."""
    if isinstance(value, str):
        try:
            return boolean(value)
        except ValueError:
            raise InputError(f"{name} must be true or false, not {value!r}") from None
    return bool(value)


def identity_setting(name: str, given: Any, stored: Any, default: Any, cast) -> Any:
    """A setting that defines the run: on resume the recorded value, and a different one is refused."""
    if given is not None:
        try:
            given = cast(given)
        except (TypeError, ValueError):
            raise InputError(f"{name.replace('_', '-')}={given!r} is not a valid {cast.__name__}") from None
    if stored is None:
        return default if given is None else given
    if given is not None and given != stored:
        flag = "--" + name.replace("_", "-")
        raise InputError(f"this run was trained with {flag} {stored}, not {given}",
                         hint=f"drop {flag} to resume, or train a new run in another --out")
    return stored


def check_ema_decay(value: Any) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise InputError(f"--ema-decay must be in [0, 1), not {value}")
    return float(value)


def check_device_name(device: str) -> str:
    d = device.strip().lower()
    if d in ("auto", "cpu", "cuda", "mps"):
        return device
    if d.startswith("cuda:") and d[5:].isdigit():
        return device
    raise InputError(f"unknown --device {device!r}", hint="use auto, cpu, cuda or cuda:N")
