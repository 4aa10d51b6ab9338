"""Non-finite values in input data: refused or repaired in one place, for every reader.

Rule (docs/reliability.md): an image, volume or stack

* with any +-inf value is refused (exit code 2, naming the file): there is no sensible value to put
  in its place, and it usually means a broken conversion;
* with more than :data:`NAN_LIMIT` (1 %) NaN values, or only NaN, is refused the same way;
* with at most 1 % NaN has them replaced by its background (the smallest finite value, the same
  level the intensity mapping sends to black) and a warning naming the file and the count.

It is never silently turned into zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsyn_cli.errors import InputError
from medsyn_cli.notices import warn

#: The largest share of NaN values that is repaired rather than refused.
NAN_LIMIT = 0.01


def narrow_floats(arr: np.ndarray, path: str | Path) -> np.ndarray:
    """Floats wider than 32 bits as float32 (how medsyn holds data); values too large for float32 are
    refused by name rather than turned into infinities. Other dtypes are returned unchanged."""
    if arr.dtype.kind != "f" or arr.dtype.itemsize <= 4:
        return arr
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    overflow = np.isinf(out) & np.isfinite(arr)
    if overflow.any():
        peak = float(np.max(np.abs(arr[overflow])))
        raise InputError(f"{int(overflow.sum())} value(s) too large for 32-bit floats (up to {peak:.3g}; the largest "
                         f"is {float(np.finfo(np.float32).max):.3g})", path=path,
                         hint="rescale the data; medsyn computes in 32-bit floats")
    return out


def check_finite(arr: np.ndarray, path: str | Path) -> np.ndarray:
    """``arr`` unchanged when finite, with a few NaN replaced by its background, else InputError."""
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return arr
    finite = np.isfinite(arr)
    if finite.all():
        return arr
    n_inf = int(np.isinf(arr).sum())
    n_nan = int(arr.size - finite.sum()) - n_inf
    if n_inf:
        raise InputError(f"{n_inf} infinite value(s) in the data ({n_inf / arr.size:.2%} of {arr.size})", path=path,
                         hint="fix the file; medsyn does not guess what an infinite intensity means")
    if n_nan == arr.size:
        raise InputError("every value is NaN (not a number)", path=path)
    share = n_nan / arr.size
    if share > NAN_LIMIT:
        raise InputError(f"{share:.2%} of the values are NaN, more than the {NAN_LIMIT:.0%} medsyn repairs",
                         path=path, hint="fix the file, or mask the NaN regions to the background value")
    background = float(np.min(arr[finite]))
    warn(f"{path}: {n_nan} NaN value(s) ({share:.3%}) replaced by the background value {background:g}")
    return np.where(finite, arr, np.asarray(background, dtype=arr.dtype))
