"""The classification test's labelled images and their train/validation/test splits
(``medsyn_cli.metrics.classify``): by case wherever the file names tell the cases apart, per image
otherwise (see classify's module docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsyn_cli.errors import InputError

SPLIT = (0.7, 0.2, 0.1)  # train, validation, test (the paper's classification split)


@dataclass
class LabelledSet:
    """A two-class image folder as the classification test reads it."""

    images: np.ndarray  # (N, 1, R, R) float32 in [-1, 1]
    labels: np.ndarray  # (N,) int64, 1 = positive
    classes: tuple[str, str]  # (negative, positive)
    sources: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # the case (patient) of each image
    parts: np.ndarray | None = None  # a prepared folder's fixed split: 0 train, 1 val, 2 test
    split_file: dict[str, Any] | None = None  # that folder's split.json


def stratified_split(labels: np.ndarray, seed: int, fractions: tuple[float, float, float] = SPLIT
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test), each sorted; per class ``round(f * n)`` val and test images."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        n_val = int(round(fractions[1] * n))
        n_test = n - int(round(fractions[0] * n)) - n_val
        if n >= 3:  # every split sees every class
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        n_train = n - n_val - n_test
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def case_split(cases: list[str], seed: int, fractions: tuple[float, float, float] = SPLIT,
               test_cases: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image indices (train, val, test) of a seeded split of the *cases* (see the module docstring)."""
    from medsyn_cli.data.brats import split_cases

    names = sorted(set(cases))
    if test_cases is not None:
        test = set(test_cases)
        rest = [c for c in names if c not in test]
        n_val = max(1, int(round(fractions[1] * len(names)))) if len(rest) > 1 else 0
        order = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]
        val = set(order[:n_val])
    else:
        parts = split_cases(names, seed, test_fraction=fractions[2], val_fraction=fractions[1])
        test, val = set(parts["test"]), set(parts["val"])
    where = np.array([2 if c in test else 1 if c in val else 0 for c in cases])
    return tuple(np.flatnonzero(where == k) for k in range(3))  # type: ignore[return-value]


def split_parts(data: LabelledSet, seed: int, test_cases: list[str] | None = None
                ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], str]:
    """(train, val, test) image indices for ``seed`` and a one-line description of the split."""
    if data.parts is not None:
        return tuple(np.flatnonzero(data.parts == k) for k in range(3)), "by case: the prepared folder's split.json"
    if test_cases is not None:
        unknown = sorted(set(test_cases) - set(data.cases))
        if unknown:
            raise InputError(f"--test-cases names {len(unknown)} case(s) DATA does not hold: "
                             f"{', '.join(unknown[:3])}", hint="cases are the file names without _z<index>")
        return case_split(data.cases, seed, test_cases=test_cases), "by case: --test-cases, the rest 80/20 seeded"
    n_cases = len(set(data.cases))
    if 3 <= n_cases < len(data.cases):
        return case_split(data.cases, seed), "by case: 70/20/10 % of the cases, seeded"
    how = "per image: stratified 70/20/10 per class, seeded"
    return stratified_split(data.labels, seed), how + ("" if n_cases == len(data.cases) else
                                                       f" ({n_cases} case(s): too few to split by case)")


def held_out_cases(data: LabelledSet, test_cases: list[str] | None = None) -> set[str]:
    """Cases a synthetic image must not come from: every non-training case that is fixed for all seeds."""
    if data.parts is not None:
        return {c for c, k in zip(data.cases, data.parts) if k != 0}
    return set(test_cases or ())
