"""User directories (platformdirs), overridable as one tree with ``MEDSYN_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "medsyn"


def _home() -> Path | None:
    home = os.environ.get("MEDSYN_HOME")
    return Path(home).expanduser() if home else None


def cache_dir() -> Path:
    """Preprocessed datasets, reference statistics, downloaded weights."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP))


def config_dir() -> Path:
    """``config.toml`` lives here."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    """Durable user data: default weights per task, the record of trained runs."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP))


def config_file() -> Path:
    return config_dir() / "config.toml"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
