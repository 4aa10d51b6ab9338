"""Settings: flag > ``MEDSYN_*`` environment variable > ``config.toml`` > default.

Model settings are dataclass fields; ``--set key=value`` and TOML files override them with
values coerced to the field's type.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any

from medsyn_cli import paths
from medsyn_cli.config_rules import validate_config
from medsyn_cli.errors import InputError


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", path=path) from None


def user_config() -> dict[str, Any]:
    """The user's ``config.toml`` (empty if absent)."""
    path = paths.config_file()
    return read_toml(path) if path.exists() else {}


def setting(name: str, flag_value: Any, default: Any, *, cast=str, section: str | None = None) -> Any:
    """Resolve one host setting: flag, then ``MEDSYN_<NAME>``, then config.toml, then default."""
    if flag_value is not None:
        return flag_value
    env = os.environ.get(f"MEDSYN_{name.upper()}")
    if env is not None and env != "":
        try:
            return cast(env)
        except ValueError:
            raise InputError(f"MEDSYN_{name.upper()}={env!r} is not a valid {cast.__name__}") from None
    cfg = user_config()
    if section:
        cfg = cfg.get(section, {})
    if name in cfg:
        return cfg[name]
    return default


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


def build_config(config_cls: type, overrides: dict[str, Any] | None = None, *, model: str | None = None):
    """Instantiate ``config_cls`` with ``overrides`` coerced to each field's declared type, then check
    every field against its rules (:mod:`medsyn_cli.config_rules`): types, ranges, finiteness."""
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(
            f"unknown model setting {unknown[0]!r}",
            hint=f"settings of {config_cls.__name__}: {', '.join(sorted(names))}",
        )
    values = {k: _coerce(v, hints[k], k) for k, v in overrides.items()}
    config = config_cls(**values)
    validate_config(config, model)
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
