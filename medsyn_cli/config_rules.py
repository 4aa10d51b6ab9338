"""Validation of model settings: every field of a model's config dataclass is checked before anything
is built or written, so a bad ``--lr``/``--set`` is one line and exit 2, never a traceback mid-run.

A field's rules come from its dataclass metadata, e.g.
``n_critic: int = field(default=5, metadata={"min": 1})``. Keys:

* ``min`` / ``max``: inclusive bounds; ``gt`` / ``lt``: exclusive bounds (for numbers, and for each
  item of a tuple/list of numbers);
* ``choices``: the allowed values (strings, typically);
* ``items``: the allowed items of a comma-separated string (e.g. a DiffAugment policy);
* ``length``: the number of items of a tuple (e.g. 2 for Adam's betas);
* ``odd``: an integer that must be odd.

Fields get generic rules from their type and name; a bound in the metadata replaces the generic one:

* every float is finite (no nan, no inf), and so is every float in a tuple;
* ``lr`` and ``*_lr``: > 0;  Adam betas (``beta1``, ``beta2``, ``adam_beta1``, ``betas``, ...): in [0, 1);
* sizes and widths (``latent_dim``, ``ngf``, ``ndf``, ``*_channels``, ``*_dim``, ``*widths``): > 0;
* weights (``lambda_*``, ``*_weight``): >= 0.

Any other number is only checked for its type and finiteness: a count such as ``n_blocks`` declares
its bound (``metadata={"min": 0}``), since some plugins use -1 as "off".
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

from medsyn_cli.errors import InputError

RULE_KEYS = ("min", "max", "gt", "lt", "choices", "items", "length", "odd")
_BETA = re.compile(r"^(adam_)?beta(s|\d)$")
_SIZE = re.compile(r"^(latent_dim|ngf|ndf|.*_dim|.*_channels|.*widths)$")
_WEIGHT = re.compile(r"^(lambda_.*|.*_weight|weight_.*)$")


def generic_rules(name: str, tp: Any) -> dict[str, Any]:
    """The rules a field gets from its name and type when its metadata says nothing."""
    base = _number_type(tp)
    if name == "lr" or name.endswith("_lr"):
        return {"gt": 0}
    if _BETA.match(name):
        return {"min": 0, "lt": 1}
    if _SIZE.match(name) and base is int:
        return {"gt": 0}
    if _WEIGHT.match(name):
        return {"min": 0}
    return {}  # other numbers: finite and of the right type; bounds come from the metadata


def field_rules(config_cls: type) -> dict[str, dict[str, Any]]:
    """name -> rules for every field of ``config_cls`` (generic rules updated by the metadata)."""
    hints = typing.get_type_hints(config_cls)
    out = {}
    for f in dataclasses.fields(config_cls):
        rules = generic_rules(f.name, hints.get(f.name))
        for pair in (("min", "gt"), ("max", "lt")):  # a bound in the metadata replaces the generic one
            if any(k in f.metadata for k in pair):
                for k in pair:
                    rules.pop(k, None)
        rules.update({k: v for k, v in f.metadata.items() if k in RULE_KEYS})
        out[f.name] = rules
    return out


def validate_config(config: Any, model: str | None = None, sources: dict[str, str] | None = None) -> None:
    """Raise :class:`InputError` naming the first field of ``config`` whose value breaks its rules (and,
    from ``sources``, where that value was set)."""
    cls = type(config)
    hints = typing.get_type_hints(cls)
    rules = field_rules(cls)
    who = f"{model} setting" if model else "setting"
    for f in dataclasses.fields(cls):
        value = getattr(config, f.name)
        problem = _type_problem(value, hints.get(f.name)) or _rule_problem(value, rules[f.name])
        if problem:
            where = f" (from {sources[f.name]})" if sources and f.name in sources else ""
            raise InputError(f"{who} {f.name}={_show(value)}: {problem}{where}",
                             hint=f"the default is {_show(f.default) if f.default is not dataclasses.MISSING else '-'}; "
                                  + (f"`medsyn models {model}` lists every setting" if model else "see docs/models/"))


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value) or "()"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _number_type(tp: Any) -> type | None:
    """int or float for ``int``, ``float``, ``X | None`` and ``tuple[X, ...]``; else None."""
    for t in (tp, *typing.get_args(tp)):
        if t in (int, float):
            return t
    return None


def _type_problem(value: Any, tp: Any) -> str | None:
    """Why ``value`` is not of the declared type ``tp`` (None when it is, or ``tp`` is exotic)."""
    if tp is None:
        return None
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return f"expected a list of {getattr(args[0], '__name__', 'values') if args else 'values'}"
        inner = args[0] if args else None
        for item in value:
            problem = _type_problem(item, inner)
            if problem:
                return problem
        return None
    if args:  # a union such as bool | None
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else (problems[0] if problems else None)
    if tp is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "expected a number"
    if tp is str:
        return None if isinstance(value, str) else "expected a string"
    return None


def _rule_problem(value: Any, rules: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if "length" in rules and len(value) != rules["length"]:
            return f"expected {rules['length']} values, not {len(value)}"
        for item in value:
            problem = _rule_problem(item, rules)
            if problem:
                return problem
        return None
    if "choices" in rules and value not in rules["choices"]:
        return f"must be one of {', '.join(map(str, rules['choices']))}"
    if "items" in rules and isinstance(value, str):
        unknown = [p.strip() for p in value.split(",") if p.strip() and p.strip() not in rules["items"]]
        if unknown:
            return f"unknown item {unknown[0]!r} (known: {', '.join(rules['items'])})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if "gt" in rules and not value > rules["gt"]:
        return f"must be > {rules['gt']}"
    if "min" in rules and not value >= rules["min"]:
        return f"must be >= {rules['min']}"
    if "lt" in rules and not value < rules["lt"]:
        return f"must be < {rules['lt']}"
    if "max" in rules and not value <= rules["max"]:
        return f"must be <= {rules['max']}"
    if rules.get("odd") and value % 2 == 0:
        return "must be odd"
    return None
