"""Translation runs: real tumor slices translated to normal, the model's attention on them, and the
Dice overlap of that attention (thresholded at 0.5) with the true tumor mask where one exists; and real
normal slices translated to tumor with the attention and the difference (where the tumor was grown).

The model is loaded like ``medsyn translate`` loads it (``weights.safetensors``, else the newest
checkpoint, so a run in progress works) and the data from the path the run recorded. Whatever is not
reachable (no checkpoint yet, data moved away) is returned as a reason to print on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsyn_cli.metrics.attention import dice, soft_dice  # noqa: F401 - one Dice for the page and `eval attention`

#: Attention above this counts as "the model changes this pixel" for the Dice.
ATTENTION_THRESHOLD = 0.5


@dataclass
class TripletRow:
    source: str
    input: np.ndarray  # uint8 (H, W, C)
    output: np.ndarray
    third: np.ndarray  # attention map (or |output - input| when the model has none)
    mask: np.ndarray | None  # uint8 (H, W, 1), 0/255
    dice: float | None  # attention > 0.5 against the mask
    soft_dice: float | None  # the attention's values themselves against the mask (no threshold)
    difference: np.ndarray | None = None  # |output - input| as uint8 (0: unchanged)


@dataclass
class Triplets:
    rows: list[TripletRow] = field(default_factory=list)
    has_attention: bool = False
    weights: str = ""
    step: int | None = None
    unavailable: str | None = None  # why there is nothing to show

    def mean(self, key: str = "dice") -> float | None:
        values = [getattr(r, key) for r in self.rows if getattr(r, key) is not None]
        return float(np.mean(values)) if values else None


def _spread(pool: list[int], n: int) -> list[int]:
    """Up to ``n`` entries of ``pool`` evenly spaced, the first and the last included."""
    if len(pool) <= n:
        return pool
    return [pool[round(i * (len(pool) - 1) / max(n - 1, 1))] for i in range(n)]


def pick_slices(tumor, n: int) -> list[int]:
    """Up to ``n`` tumor slices spread through the set, those with a real mask first."""
    count = len(tumor)
    if tumor.masks is None:
        labelled = []
    elif tumor.has_mask is None:
        labelled = list(range(count))
    else:
        labelled = [i for i in range(count) if bool(tumor.has_mask[i])]
    return _spread(labelled if labelled else list(range(count)), n)


def pick_normal_slices(normal, n: int) -> list[int]:
    """Up to ``n`` normal slices spread through the larger half by brain area: the top and bottom of a head,
    which dominate a normal set, show little brain for a tumor to grow in."""
    from medsyn_cli.nn.masks import head_mask

    area = head_mask(normal.images).flatten(1).float().mean(1)
    order = sorted(range(len(normal)), key=lambda i: (-float(area[i]), i))
    return _spread(sorted(order[: max(n, (len(order) + 1) // 2)]), n)


def translation_triplets(run, *, n: int = 6, device: str = "cpu", to: str = "normal",
                         data_path: str | None = None) -> Triplets:
    """Load the run's model and data (or ``data_path``, e.g. held-out cases) and translate ``n`` real slices:
    tumor slices to normal (``to="normal"``) or normal slices to tumor (``to="tumor"``)."""
    from medsyn_cli.errors import MedsynError

    if run.weights is None and run.checkpoint is None:
        return Triplets(unavailable="no checkpoint yet: the model can be shown once the first "
                                    "checkpoint is written (--checkpoint-every)")
    try:
        from medsyn_cli.training.checkpoint import load_for_inference

        model, meta = load_for_inference(run.dir, device)
    except MedsynError as exc:
        return Triplets(unavailable=f"the model could not be loaded: {exc.one_line()}")
    data_path = data_path or run.config.get("data", {}).get("path")
    try:
        from medsyn_cli.data import load_dataset

        data = load_dataset(data_path, res=int(run.config["res"]), channels=int(run.config.get("channels", 1)),
                            task="translation")
    except (MedsynError, OSError) as exc:
        reason = exc.one_line() if isinstance(exc, MedsynError) else str(exc)
        return Triplets(unavailable=f"the run's data is not reachable from here ({data_path}): {reason}")
    if to == "tumor":
        return _translate(model, meta, data.normal, pick_normal_slices(data.normal, n), "tumor")
    return _translate(model, meta, data.tumor, pick_slices(data.tumor, n), "normal")


def _translate(model, meta: dict[str, Any], tumor, idx: list[int], to: str) -> Triplets:
    """Translate slices ``idx`` of ``tumor`` (the source domain's set, whatever its name) to ``to``."""
    import torch
    import torch.nn.functional as F

    from medsyn_cli.data.pixels import to_uint8

    x = tumor.images[idx]
    with torch.inference_mode():
        y, attention = model.translate(x.to(model.device), to=to)
    y = y.float().cpu()
    out = Triplets(has_attention=attention is not None, weights=str(meta.get("source", "")),
                   step=meta.get("step"))
    difference = ((y - x).abs() - 1).mean(1, keepdim=True)  # |diff| in [0, 2] -> [-1, 1]
    third = difference  # shown where the model has no attention map
    if attention is not None:
        att = attention.float().cpu()
        if att.shape[-2:] != x.shape[-2:]:
            att = F.interpolate(att, size=x.shape[-2:], mode="bilinear", align_corners=False)
        att = att.clamp(0, 1).mean(1, keepdim=True)
        third = att * 2 - 1
    images, outputs, thirds, differences = to_uint8(x), to_uint8(y), to_uint8(third), to_uint8(difference)
    masks = getattr(tumor, "masks", None)  # a normal set has none
    for row, i in enumerate(idx):
        mask = None
        score = soft = None
        labelled = masks is not None and (tumor.has_mask is None or bool(tumor.has_mask[i]))
        if labelled:
            truth = tumor.masks[i, 0].numpy() > 0.5
            mask = (truth[..., None] * 255).astype(np.uint8)
            if attention is not None:
                score = dice(att[row, 0].numpy() > ATTENTION_THRESHOLD, truth)
                soft = soft_dice(att[row, 0].numpy(), truth)
        source = tumor.sources[i] if i < len(tumor.sources) else f"#{i}"
        out.rows.append(TripletRow(source=source, input=images[row], output=outputs[row], third=thirds[row],
                                   mask=mask, dice=score, soft_dice=soft, difference=differences[row]))
    return out
