"""Is a ``translate`` input the kind of data the model was trained on? Warn (or, with --strict,
refuse) when its modality or its intensity scale differs from the run's record.

* Modality: from the input's file name (:func:`medsyn_cli.data.modality.modality_from_name`) against
  the modality recorded in the weights' intensity metadata; checked only when both are known.
* Intensity scale: a volume in Hounsfield units (:func:`medsyn_cli.data.volumes.looks_like_ct`) given
  to a model trained on MR-style percentile-normalised data, or the other way round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.data.modality import modality_from_name, trained_modality
from medsyn_cli.errors import InputError
from medsyn_cli.notices import warn


def _kinds(intensity: Any) -> set[str]:
    """Every mapping kind found in a run's intensity record (nested per domain / per source)."""
    if not isinstance(intensity, dict):
        return set()
    out = {str(intensity["kind"])} if "kind" in intensity and intensity["kind"] != "per_source" else set()
    for value in intensity.values():
        if isinstance(value, dict):
            out |= _kinds(value)
    return out


class DomainCheck:
    """Compares inputs with a run's intensity record; ``strict`` turns each warning into an InputError."""

    def __init__(self, intensity: Any, *, strict: bool = False):
        self.modality = trained_modality(intensity)
        kinds = _kinds(intensity)
        self.trained_ct = "ct_window" in kinds
        self.trained_mr = "percentile" in kinds and not self.trained_ct
        self.strict = strict

    def _report(self, path: Path, problem: str, hint: str) -> None:
        if self.strict:
            raise InputError(problem, path=path, hint=hint)
        warn(f"{path}: {problem} (pass --strict to refuse such inputs)")

    def name(self, path: Path) -> None:
        """The modality the file name gives against the trained one (both must be known)."""
        given = modality_from_name(path)
        if given and self.modality and given != self.modality:
            self._report(path, f"the file name says {given}, but the model was trained on {self.modality} "
                               "(modality guessed from the name)",
                         hint=f"use a model trained on {given}, or rename the file if its name is wrong")

    def volume(self, path: Path, volume: np.ndarray) -> None:
        """A CT volume (HU) for an MR model, or an MR volume for a CT-window model."""
        from medsyn_cli.data.volumes import looks_like_ct

        is_ct = looks_like_ct(volume)
        if is_ct and self.trained_mr:
            self._report(path, "the volume looks like CT in Hounsfield units, but the model was trained on "
                               "percentile-normalised (MR) data", hint="use a model trained on CT")
        elif not is_ct and self.trained_ct:
            self._report(path, "the volume does not look like CT in Hounsfield units, but the model was "
                               "trained on CT-windowed data", hint="use a model trained on this modality")
