"""How well a translation model's attention finds the tumor: Dice of its attention maps with true masks.

Neither paper scores its attention maps (they show them); this scores them. For every tumor slice that
has a true whole-tumor mask, the model translates it to normal; the attention map (where the model
changes the image) is thresholded (default 0.5) and compared with the mask by Dice, 2|P∩T|/(|P|+|T|).
A soft Dice uses the attention values themselves, without a threshold. Models without attention maps
are refused.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from medsyn_cli.errors import InputError

THRESHOLD = 0.5


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P∩T| / (|P|+|T|) of two boolean masks; two empty masks agree perfectly (1.0)."""
    p, t = pred.astype(bool), truth.astype(bool)
    denom = int(p.sum()) + int(t.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom


def soft_dice(attention: np.ndarray, truth: np.ndarray) -> float:
    """2 sum(a m) / (sum a + sum m) with the attention in [0, 1]: overlap without a threshold."""
    a, t = attention.astype(np.float64), truth.astype(np.float64)
    denom = a.sum() + t.sum()
    return 1.0 if denom == 0 else float(2.0 * (a * t).sum() / denom)


def case_of(source: str) -> str:
    """``Brats18_X_1_z077.png`` -> ``Brats18_X_1`` (the slice naming of ``medsyn data prepare brats``)."""
    name = source.split("#", 1)[0].rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    return stem.rsplit("_z", 1)[0] if "_z" in stem else stem


def attention_dice(model, tumor, *, threshold: float = THRESHOLD, batch_size: int = 16) -> dict[str, Any]:
    """Dice of ``model``'s attention on every labelled slice of ``tumor`` (an ImageSet with masks)."""
    import torch
    import torch.nn.functional as F

    if tumor.masks is None:
        raise InputError("the tumor images have no masks to compare the attention with",
                         hint="use a folder with tumor/ and masks/ (e.g. the test/ part of `medsyn data prepare brats`)")
    rows = [i for i in range(len(tumor)) if tumor.has_mask is None or bool(tumor.has_mask[i])]
    if not rows:
        raise InputError("none of the tumor images has a mask")
    scores, softs, per_case = [], [], defaultdict(list)
    for start in range(0, len(rows), batch_size):
        idx = rows[start:start + batch_size]
        x = tumor.images[idx].to(model.device)
        with torch.inference_mode():
            _, attention = model.translate(x, to="normal")
        if attention is None:
            raise InputError("this model has no attention maps to score")
        att = attention.float().cpu()
        if att.shape[-2:] != x.shape[-2:]:
            att = F.interpolate(att, size=x.shape[-2:], mode="bilinear", align_corners=False)
        att = att.clamp(0, 1).mean(1).numpy()
        for row, i in enumerate(idx):
            truth = tumor.masks[i, 0].numpy() > 0.5
            d = dice(att[row] > threshold, truth)
            scores.append(d)
            softs.append(soft_dice(att[row], truth))
            per_case[case_of(tumor.sources[i])].append(d)
    return {
        "dice_mean": float(np.mean(scores)), "dice_median": float(np.median(scores)),
        "soft_dice_mean": float(np.mean(softs)), "slices": len(scores), "threshold": threshold,
        "per_case": {case: {"dice_mean": float(np.mean(v)), "slices": len(v)} for case, v in sorted(per_case.items())},
    }
