"""Settings: flag > ``MEDSYN_*`` environment variable > ``config.toml`` > default.

Model settings are dataclass fields; ``--set key=value`` and TOML files override them with
values coerced to the field's type. A bad value is refused naming where it came from: the flag, the
file and its key, or the environment variable.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Callable

from medsyn_cli import paths
from medsyn_cli.config_rules import validate_config
from medsyn_cli.errors import InputError, from_os_error
from medsyn_cli.notices import warn

#: The tables the user's config.toml may hold; other top-level keys are ignored with a warning.
USER_TABLES = ("train", "sample", "data")
#: The keys each table may hold (tests/test_config_sources.py keeps [train] in step with TrainSettings).
#: A key outside them is a typo that would otherwise be ignored: refused in ``--config FILE``, warned about
#: in config.toml. ([model] holds model settings, which the model's config class checks.)
TABLE_KEYS: dict[str, frozenset[str]] = {
    "train": frozenset({
        "res", "channels", "data", "fit", "recipe", "out", "steps", "epochs", "lr", "batch_size", "seed",
        "device", "amp", "checkpoint_every", "sample_every", "log_every", "ema_decay", "keep_checkpoints",
        "eval_every", "fid_weights", "tensorboard", "compile", "channels_last", "max_minutes", "holdout"}),
    "sample": frozenset({"device", "amp"}),
    "data": frozenset({"max_input_gib"}),
}


def unknown_keys_message(table: str, keys) -> str | None:
    """What to say about the keys of ``[table]`` that medsyn does not read (None: all known)."""
    import difflib

    known = TABLE_KEYS.get(table)
    unknown = sorted(k for k in keys if known is not None and k not in known)
    if not unknown:
        return None
    close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {unknown[0]!r} in [{table}]{guess}" + (
        f" and {len(unknown) - 1} more" if len(unknown) > 1 else "")


def read_toml(path: str | Path, *, tables: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A TOML file as a dict; InputError naming it when it cannot be read or parsed, and (with
    ``tables``) when its top level holds anything but those tables."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid TOML: not UTF-8 text (byte {exc.start})", path=path,
                         hint="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", path=path) from None
    except OSError as exc:
        raise from_os_error(exc) from None
    if tables is not None:
        for key, value in doc.items():
            if key not in tables:
                raise InputError(f"unknown key {key!r} at the top (expected the tables "
                                 f"{', '.join(f'[{t}]' for t in tables)})", path=path)
            _check_table(key, value, path)
            message = unknown_keys_message(key, value)
            if message:
                raise InputError(message, path=path,
                                 hint=f"[{key}] takes: {', '.join(sorted(TABLE_KEYS[key]))}")
    return doc


def _check_table(key: str, value: Any, path: Path) -> None:
    if not isinstance(value, dict):
        raise InputError(f"{key} = {json.dumps(value, default=str)}: expected a table, [{key}] with its settings "
                         "below it", path=path)


def user_config() -> dict[str, Any]:
    """The user's ``config.toml`` (empty if absent); read and checked once per version of the file."""
    path = paths.config_file()
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise from_os_error(exc) from None
    return copy.deepcopy(_read_user_config(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=4)
def _read_user_config(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """Parsed once per version of the file, so its warnings are said once."""
    doc = read_toml(path)
    for key, value in doc.items():
        if key in USER_TABLES:
            _check_table(key, value, Path(path))
            message = unknown_keys_message(key, value)
            if message:
                warn(f"{path}: {message}, ignored")
        else:
            warn(f"{path}: unknown top-level key {key!r} ignored (medsyn reads the tables "
                 f"{', '.join(f'[{t}]' for t in USER_TABLES)}; training settings such as steps go under [train])")
    return doc


_EXPECTED = {int: "an integer", float: "a number", str: "text"}


def _cast(value: Any, cast: Callable) -> Any:
    """``cast(value)``, strict for TOML values: no bool as a number, no 64.5 as an integer, no number as text."""
    if cast in _EXPECTED and not isinstance(value, str):
        if cast is str or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(value)
        if cast is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
    return cast(value)


def setting(name: str, flag_value: Any, default: Any, *, cast=str, section: str | None = None,
            check: Callable[[Any], Any] | None = None, file: tuple[Any, dict] | None = None) -> Any:
    """Resolve one host setting: flag, then ``file`` (``(path, table)``: the ``--config FILE`` table), then
    ``MEDSYN_<NAME>``, then the [section] of config.toml, then default. A value from a file or the
    environment is cast; every value goes through ``check`` (which may convert it). A value that does
    not cast or check is refused naming where it came from."""
    if flag_value is not None:
        return check(flag_value) if check else flag_value
    var = f"MEDSYN_{name.upper()}"
    key = f"[{section}] {name}" if section else name
    if file is not None and name in file[1]:
        return _from_source(file[1][name], cast, check, f"{key} = {json.dumps(file[1][name], default=str)}",
                            Path(file[0]))
    env = os.environ.get(var)
    if env is not None and env != "":
        return _from_source(env, cast, check, f"{var}={env!r}", None)
    cfg = user_config()
    if section:
        cfg = cfg.get(section, {})
    if name in cfg:
        return _from_source(cfg[name], cast, check, f"{key} = {json.dumps(cfg[name], default=str)}",
                            paths.config_file())
    return check(default) if check and default is not None else default


def _from_source(value: Any, cast: Callable, check: Callable | None, shown: str, path: Path | None) -> Any:
    try:
        value = _cast(value, cast)
    except (TypeError, ValueError):
        expected = _EXPECTED.get(cast, getattr(cast, "expected", None) or
                                 ("true or false" if cast.__name__ == "boolean" else f"a {cast.__name__}"))
        raise InputError(f"{shown}: expected {expected}", path=path) from None
    if check is None:
        return value
    try:
        return check(value)
    except InputError as exc:
        raise InputError(f"{shown}: {exc.message}", path=path, hint=exc.hint) from None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if value is None and len(non_none) < len(args):  # a recorded None (run config, JSON) stays None
            return None
        if isinstance(value, str) and value.lower() in ("none", "null"):
            return None
        return _coerce(value, non_none[0], key) if non_none else value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("()[]").split(",") if v.strip()]
        inner = args[0] if args else str
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"setting {key}={value!r}: expected true or false")
    if tp in (int, float) and isinstance(value, bool):  # TOML `lr = true` is not a number
        raise InputError(f"setting {key}={str(value).lower()}: expected {tp.__name__}")
    if tp in (int, float, str):
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise InputError(f"setting {key}={value!r}: expected {tp.__name__}") from None
    return value


def build_config(config_cls: type, overrides: dict[str, Any] | None = None, *, model: str | None = None,
                 sources: dict[str, str] | None = None):
    """Instantiate ``config_cls`` with ``overrides`` coerced to each field's declared type, then check
    every field against its rules (:mod:`medsyn_cli.config_rules`): types, ranges, finiteness. An error
    names where the value was set when ``sources`` (setting -> flag, file or variable) says."""
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(
            f"unknown model setting {unknown[0]!r}",
            hint=f"settings of {config_cls.__name__}: {', '.join(sorted(names))}",
        )
    values = {}
    for k, v in overrides.items():
        try:
            values[k] = _coerce(v, hints[k], k)
        except InputError as exc:
            if sources and k in sources:
                exc = InputError(f"{exc.message} (from {sources[k]})", hint=exc.hint)
            raise exc from None
    config = config_cls(**values)
    validate_config(config, model, sources)
    return config


def parse_set(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out
