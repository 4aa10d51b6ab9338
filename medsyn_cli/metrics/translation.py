"""Does a translation model translate? ``medsyn eval translation``: held-out slices scored the way
image-translation work scores them (docs/metrics.md, "Translation").

* **Slices.** A tumor slice counts when its tumor covers at least ``min_tumor_share`` of the brain (a
  tumor is a region you can see, not a few pixels at its rim). Normal and tumor slices are then
  **area-matched**: their brain areas binned, and in each bin as many slices of each domain kept as the
  scarcer has (seeded), because normal slices come mostly from the top and bottom of a head and would
  differ from tumor slices by anatomy alone.
* **The judge** is a small CNN ensemble (:mod:`.judge`) trained on area-matched real slices of the
  *training* cases; its accuracy on the real test slices is reported, so a weak judge is visible.
* **Conversion**, per direction: the share of translated slices the judge puts in the target domain,
  over what the untouched inputs already had: ``(moved - before) / (1 - before)``. A translator that
  copies its input scores 0, one that makes every slice look like the target 1.
* **FID/KID** of translated normals against the real tumor slices, beside the untouched normals'
  (and the other direction likewise). With the judge's cases as a reference, two yardsticks for the
  FID ratio: real tumor slices of those cases, and those cases' real tumors pasted into the untouched
  normals (the anatomy kept, a real tumor put in).
* **A tumor where it is asked for** (a model whose ``translate`` takes a ``region``, with the judge's
  cases as a reference): the held-out normals translated inside the paste reference's regions (real
  tumor masks at their place, clipped to the brain): conversion, the share of each region filled, and
  the FID ratio beside the paste reference's with the same regions.
* **Where the change is**: the model's attention map (or, for a model without one, the change
  ``|y - x| / 2``): the share of its mass inside the brain, the share of the brain it covers (above
  the threshold), and for tumor -> normal its Dice with the true masks.
* **What grows**: the intensities of the translated normals where the map is above the threshold, beside the
  real test tumors' inside their masks (a bright lesion and grey speckle can score the same FID ratio).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from medsyn_cli.errors import InputError

#: Pixels above this (in [-1, 1]) are head; holes filled, that is the brain (BraTS is skull-stripped).
BRAIN_LEVEL = -0.98
MIN_TUMOR_SHARE = 0.05
AREA_BINS = 10
THRESHOLD = 0.5
#: A model without attention: a pixel changed by more than this share of the range counts as changed.
CHANGE_LEVEL = 0.1
#: Draws of real reference tumor slices whose FIDs are averaged (one draw of ~50 slices varies by ~5).
REFERENCE_DRAWS = 3
#: Quantiles reported for the grown tissue's and the real tumors' intensities.
INTENSITY_QUANTILES = (0.1, 0.5, 0.9)


def brain_masks(images) -> np.ndarray:
    """(N, H, W) bool: the head of each image in [-1, 1] (grey mean over channels), holes filled."""
    from scipy import ndimage

    grey = np.asarray(images, dtype=np.float32)
    grey = grey.mean(1) if grey.ndim == 4 else grey
    return np.stack([ndimage.binary_fill_holes(g > BRAIN_LEVEL) for g in grey]) if len(grey) else \
        np.zeros(grey.shape, dtype=bool)


def area_match(area_a: np.ndarray, area_b: np.ndarray, seed: int, bins: int = AREA_BINS
               ) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``a`` and ``b`` with the same brain-area histogram: per bin of equal width over
    both ranges, ``min(count_a, count_b)`` of each, drawn with ``seed``; sorted."""
    area_a, area_b = np.asarray(area_a, float), np.asarray(area_b, float)
    if not len(area_a) or not len(area_b):
        return np.zeros(0, int), np.zeros(0, int)
    lo = min(area_a.min(), area_b.min())
    hi = max(area_a.max(), area_b.max())
    edges = np.linspace(lo, hi, bins + 1)[1:-1]
    bin_a, bin_b = np.digitize(area_a, edges), np.digitize(area_b, edges)
    rng = np.random.default_rng(seed)
    keep_a, keep_b = [], []
    for b in range(bins):
        in_a, in_b = np.flatnonzero(bin_a == b), np.flatnonzero(bin_b == b)
        k = min(len(in_a), len(in_b))
        if k:
            keep_a.append(rng.choice(in_a, k, replace=False))
            keep_b.append(rng.choice(in_b, k, replace=False))
    if not keep_a:
        return np.zeros(0, int), np.zeros(0, int)
    return np.sort(np.concatenate(keep_a)), np.sort(np.concatenate(keep_b))


def tumor_shares(masks, brains: np.ndarray) -> np.ndarray:
    """Each tumor slice's mask area over its brain area."""
    m = np.asarray(masks, dtype=np.float32)
    m = m[:, 0] if m.ndim == 4 else m
    return (m > 0.5).sum((1, 2)) / np.maximum(brains.sum((1, 2)), 1)


@dataclass
class MatchedSlices:
    """The area-matched held-out slices a model is scored on."""

    normal: Any  # (N, C, H, W) tensor in [-1, 1]
    tumor: Any
    tumor_masks: Any  # (M, 1, H, W), or None
    normal_brain: np.ndarray
    tumor_brain: np.ndarray
    counts: dict[str, int]


def select_slices(pair, *, seed: int, min_tumor_share: float = MIN_TUMOR_SHARE) -> MatchedSlices:
    """The visible-tumor slices of ``pair`` (a TwoDomainSet), area-matched against its normal slices."""
    normal, tumor = pair.normal.images, pair.tumor.images
    masks = pair.tumor.masks
    b_n, b_t = brain_masks(normal), brain_masks(tumor)
    keep = np.ones(len(tumor), dtype=bool)
    if masks is not None and min_tumor_share > 0:
        labelled = np.ones(len(tumor), bool) if pair.tumor.has_mask is None else pair.tumor.has_mask.numpy()
        keep = labelled & (tumor_shares(masks, b_t) >= min_tumor_share)
    t_rows = np.flatnonzero(keep)
    i_n, i_t = area_match(b_n.sum((1, 2)), b_t[t_rows].sum((1, 2)), seed)
    t_idx = t_rows[i_t]
    if len(i_n) < 2:
        raise InputError(f"only {len(i_n)} normal and tumor slice(s) have comparable brain areas "
                         f"(of {len(normal)} normal, {len(t_rows)} tumor slices with a tumor "
                         f">= {min_tumor_share:g} of the brain)",
                         hint="score on more cases, or lower --min-tumor-share")
    return MatchedSlices(
        normal=normal[i_n], tumor=tumor[t_idx], tumor_masks=None if masks is None else masks[t_idx],
        normal_brain=b_n[i_n], tumor_brain=b_t[t_idx],
        counts={"normal_in": len(normal), "tumor_in": len(tumor), "tumor_visible": int(len(t_rows)),
                "normal": int(len(i_n)), "tumor": int(len(t_idx))})


def translate_all(model, images, to: str, batch_size: int = 32, regions=None):
    """(translated images, attention maps or None), float32 on the CPU; ``regions`` (N, 1, H, W) are
    passed to ``model.translate(..., region=...)``."""
    import torch

    outs, atts = [], []
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        extra = {} if regions is None else {"region": regions[part].to(model.device)}
        with torch.inference_mode():
            y, a = model.translate(images[part].to(model.device), to=to, **extra)
        outs.append(y.float().cpu().clamp(-1, 1))
        atts.append(None if a is None else a.float().cpu().clamp(0, 1))
    y = torch.cat(outs)
    return y, (None if any(a is None for a in atts) else torch.cat(atts))


def change_maps(x, y, attention) -> tuple[np.ndarray, float, str]:
    """(N, H, W) maps in [0, 1] of where the model changed the image, the level above which a pixel
    counts as changed, and which map it is."""
    import torch.nn.functional as F

    if attention is not None:
        if attention.shape[-2:] != x.shape[-2:]:
            attention = F.interpolate(attention, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return attention.mean(1).numpy(), THRESHOLD, "attention"
    return ((y - x).abs() / 2).mean(1).numpy(), CHANGE_LEVEL, "change |y-x|/2"


def where_stats(maps: np.ndarray, level: float, brains: np.ndarray) -> dict[str, Any]:
    """Share of the maps' mass inside the brain (pooled), and the mean share of each brain covered."""
    mass = float(maps.sum())
    inside = float((maps * brains).sum()) / mass if mass > 0 else None
    covered = ((maps > level) & brains).sum((1, 2)) / np.maximum(brains.sum((1, 2)), 1)
    outside = ((maps > level) & ~brains).sum((1, 2)) / np.maximum((~brains).sum((1, 2)), 1)
    return {"inside_brain_share": inside, "brain_attended_share": float(covered.mean()),
            "background_attended_share": float(outside.mean())}


def intensity_stats(values: np.ndarray) -> dict[str, Any] | None:
    """Pixel count, mean, spread and quantiles of 1-D intensities (in [-1, 1]); None when there are none."""
    if values.size == 0:
        return None
    q = np.quantile(values, INTENSITY_QUANTILES)
    return {"pixels": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            **{f"p{round(level * 100)}": float(v) for level, v in zip(INTENSITY_QUANTILES, q)}}


def _minus_brain_median(values: np.ndarray, around: np.ndarray, region: np.ndarray, brains: np.ndarray) -> np.ndarray:
    """(N, H, W) ``values`` minus each slice's median of ``around`` over its brain outside ``region``."""
    out = values.copy()
    for i in range(len(values)):
        rest = brains[i] & ~region[i]
        if rest.any():
            out[i] -= np.median(around[i][rest])
    return out


def _quantile_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """The distance sag-gan's ``lambda_lesion_intensity`` trains on (None when a side is empty)."""
    if not (a.size and b.size):
        return None
    import torch

    from medsyn_cli.nn.masks import quantile_distance

    return float(quantile_distance(torch.from_numpy(a), torch.from_numpy(b)))


def lesion_intensity(x_n, y_n, maps_n: np.ndarray, level: float, brains: np.ndarray, tumors, masks,
                     tumor_brains: np.ndarray) -> dict[str, Any]:
    """What the grown tissue looks like next to real tumor tissue: intensities (channel mean) of the translated
    normals where the map is above ``level`` inside the brain, of the real test tumors inside their masks, and
    the mean distance between 32 quantiles of the two (a 1-D Wasserstein estimate; 0 for the same distribution);
    ``contrast``: the same with each slice's values less the median of its brain outside the region (for a
    translated normal, of the input), for data whose normal and tumor slices come from differently normalised
    volumes."""
    grown_at, tumor_at = (maps_n > level) & brains, masks[:, 0].numpy() > 0.5
    y, x, t = y_n.mean(1).numpy(), x_n.mean(1).numpy(), tumors.mean(1).numpy()
    grown, real = y[grown_at], t[tumor_at]
    grown_c = _minus_brain_median(y, x, grown_at, brains)[grown_at]
    real_c = _minus_brain_median(t, t, tumor_at, tumor_brains)[tumor_at]
    return {"grown": intensity_stats(grown), "real_tumor": intensity_stats(real),
            "quantile_distance": _quantile_distance(grown, real),
            "contrast": {"grown": intensity_stats(grown_c), "real_tumor": intensity_stats(real_c),
                         "quantile_distance": _quantile_distance(grown_c, real_c)}}


def conversion(before: float, after: float) -> float | None:
    """``(after - before) / (1 - before)``: 0 for a copy, 1 when every slice moved; None when the
    inputs were all already judged to be in the target domain."""
    return None if before >= 1.0 else (after - before) / (1.0 - before)


def score_translation(model, pair, judge, *, seed: int = 0, features: Callable | None = None,
                      min_tumor_share: float = MIN_TUMOR_SHARE, batch_size: int = 32,
                      kid_fn: Callable | None = None, reference=None) -> dict[str, Any]:
    """Score ``model`` on ``pair`` (held-out TwoDomainSet with tumor masks) with ``judge``.

    ``features(images) -> (N, 2048)`` (Inception pool3) enables FID/KID; ``None`` skips them.
    ``reference`` (a TwoDomainSet of other cases, e.g. the judge's) adds what real tumor slices of those
    cases score against the test tumors: the FID a translation as good as real tumors would reach."""
    from medsyn_cli.metrics.attention import dice

    sel = select_slices(pair, seed=seed, min_tumor_share=min_tumor_share)
    ref = None
    if reference is not None:
        try:
            ref = select_slices(reference, seed=seed, min_tumor_share=min_tumor_share)
        except InputError:
            ref = None
    y_n, att_n = translate_all(model, sel.normal, "tumor", batch_size)
    y_t, att_t = translate_all(model, sel.tumor, "normal", batch_size)

    p = {k: judge.prob_tumor(v) for k, v in
         {"normal": sel.normal, "tumor": sel.tumor, "to_tumor": y_n, "to_normal": y_t}.items()}
    judge_acc = float(np.concatenate([p["normal"] < 0.5, p["tumor"] >= 0.5]).mean())
    before_t, after_t = float((p["normal"] >= 0.5).mean()), float((p["to_tumor"] >= 0.5).mean())
    before_n, after_n = float((p["tumor"] < 0.5).mean()), float((p["to_normal"] < 0.5).mean())

    result: dict[str, Any] = {
        "slices": sel.counts,
        "judge": {**judge.describe(), "accuracy": judge_acc,
                  "tpr": float((p["tumor"] >= 0.5).mean()), "tnr": float((p["normal"] < 0.5).mean())},
        "to_tumor": {"judged_tumor_before": before_t, "judged_tumor_after": after_t,
                     "conversion": conversion(before_t, after_t)},
        "to_normal": {"judged_normal_before": before_n, "judged_normal_after": after_n,
                      "conversion": conversion(before_n, after_n)},
    }
    maps_n, level, kind = change_maps(sel.normal, y_n, att_n)
    maps_t, _, _ = change_maps(sel.tumor, y_t, att_t)
    result["to_tumor"].update(where_stats(maps_n, level, sel.normal_brain))
    result["to_normal"].update(where_stats(maps_t, level, sel.tumor_brain))
    if sel.tumor_masks is not None:
        truth = sel.tumor_masks[:, 0].numpy() > 0.5
        result["to_normal"]["dice"] = float(np.mean([dice(m > level, t) for m, t in zip(maps_t, truth)]))
        result["to_tumor"]["intensity"] = lesion_intensity(sel.normal, y_n, maps_n, level, sel.normal_brain,
                                                           sel.tumor, sel.tumor_masks, sel.tumor_brain)
    result["maps"] = {"kind": kind, "level": level}
    result["change_in_brain"] = {  # mean |y - x| over brain pixels, in [-1, 1] units
        "to_tumor": float(((y_n - sel.normal).abs().mean(1).numpy() * sel.normal_brain).sum()
                          / max(sel.normal_brain.sum(), 1)),
        "to_normal": float(((y_t - sel.tumor).abs().mean(1).numpy() * sel.tumor_brain).sum()
                           / max(sel.tumor_brain.sum(), 1))}
    f_tumor = features(sel.tumor) if features is not None else None
    if features is not None:
        result["distances"] = _distances(features, sel, y_n, y_t, kid_fn, ref, seed, f_tumor)
    from medsyn_cli.model import supports_region

    if ref is not None and ref.tumor_masks is not None and supports_region(model):
        result["to_tumor_in_region"] = _in_region(model, sel, ref, judge, features, f_tumor, seed, batch_size,
                                                  result.get("distances"))
    return result


def reference_picks(seed: int, n_ref: int, n_test: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The reference draws (``min(n_test, n_ref)`` slices each, for the real-tumor FID) and the paste picks
    (one reference tumor slice per test normal), REFERENCE_DRAWS of each from one seeded stream."""
    rng = np.random.default_rng(seed)
    n = min(n_test, n_ref)
    draws = [np.sort(rng.choice(n_ref, n, replace=False)) for _ in range(REFERENCE_DRAWS)]
    picks = [rng.choice(n_ref, n_test, replace=n_ref < n_test) for _ in range(REFERENCE_DRAWS)]
    return draws, picks


def paste_regions(ref: MatchedSlices, normal_brain: np.ndarray, pick: np.ndarray):
    """(N, 1, H, W) float {0, 1}: reference tumor ``pick[i]``'s mask at its place, inside normal ``i``'s brain."""
    import torch

    return ((ref.tumor_masks[pick, :1] > 0.5) & torch.from_numpy(np.asarray(normal_brain, bool))[:, None]).float()


def _in_region(model, sel: MatchedSlices, ref: MatchedSlices, judge, features: Callable | None, f_test, seed: int,
               batch_size: int, distances: dict[str, Any] | None) -> dict[str, Any]:
    """The held-out normals translated to tumor inside the paste reference's regions, per draw: the judge's
    conversion, the share of each region the map fills (above THRESHOLD), and with ``features`` the FID
    against the test tumors, as a ratio to the untouched normals' beside the paste reference's."""
    _, picks = reference_picks(seed, len(ref.tumor), len(sel.normal))
    before = float((judge.prob_tumor(sel.normal) >= 0.5).mean())
    after, pasted, filled, fids = [], [], [], []
    for pick in picks:
        regions = paste_regions(ref, sel.normal_brain, pick)
        y, att = translate_all(model, sel.normal, "tumor", batch_size, regions=regions)
        after.append(judge.prob_tumor(y) >= 0.5)
        real = paste_tumors(sel.normal, sel.normal_brain, ref.tumor, ref.tumor_masks, pick)
        pasted.append(judge.prob_tumor(real) >= 0.5)  # the same regions holding real tumors
        maps, level, _ = change_maps(sel.normal, y, att)
        inside = regions[:, 0].numpy() > 0.5
        rows = inside.sum((1, 2)) > 0
        shares = ((maps > level) & inside).sum((1, 2))[rows] / inside.sum((1, 2))[rows]
        filled.append(float(shares.mean()) if rows.any() else 0.0)
        if f_test is not None:
            from medsyn_cli.metrics.fid import fid_from_features

            fids.append(fid_from_features(f_test, features(y)))
    # the draws' calls pooled (equal counts per draw): a share of slices, so an unchanged translation gives
    # exactly ``before`` (a mean of per-draw shares could differ from it in the last bit)
    judged_after = float(np.concatenate(after).mean())
    out: dict[str, Any] = {
        "regions": "the paste reference's: a judge's-case tumor mask at its place, inside the normal's brain",
        "draws": len(picks), "judged_tumor_before": before, "judged_tumor_after": judged_after,
        "conversion": conversion(before, judged_after),
        "paste_conversion": conversion(before, float(np.concatenate(pasted).mean())),
        "region_filled_share": float(np.mean(filled))}
    if fids and distances:
        untouched = distances["fid_normal_vs_tumor"]
        out.update({"fid_translated_normal_vs_tumor": float(np.mean(fids)), "fid_draws": fids,
                    "fid_ratio_to_tumor": float(np.mean(fids)) / max(untouched, 1e-12),
                    "fid_ratio_paste": distances.get("fid_ratio_paste")})
    return out


def _reference(f_test: np.ndarray, features: Callable, sel: MatchedSlices, ref: MatchedSlices, seed: int,
               untouched: float) -> dict[str, Any]:
    """FID of real, area-matched tumor slices of other cases (``ref``) against the test tumors (``f_test``,
    their features), in REFERENCE_DRAWS draws of as many slices as there are translated normals (FID's bias
    depends on the count). Each reference slice's features are computed once, whatever the draws."""
    from medsyn_cli.metrics.fid import fid_from_features

    index, picks = reference_picks(seed, len(ref.tumor), len(sel.normal))
    f_ref = features(ref.tumor)
    draws = [fid_from_features(f_test, f_ref[i]) for i in index]
    out = {"fid_reference_tumor_vs_tumor": float(np.mean(draws)), "fid_reference_draws": draws,
           "fid_reference_slices": int(len(index[0])),
           "fid_ratio_reference": float(np.mean(draws)) / max(untouched, 1e-12)}
    if ref.tumor_masks is not None:  # a translation that keeps the anatomy and puts a real tumor in
        pasted = [fid_from_features(f_test, features(paste_tumors(
            sel.normal, sel.normal_brain, ref.tumor, ref.tumor_masks, pick))) for pick in picks]
        out.update({"fid_paste_tumor_into_normal": float(np.mean(pasted)), "fid_paste_draws": pasted,
                    "fid_ratio_paste": float(np.mean(pasted)) / max(untouched, 1e-12)})
    return out


def paste_tumors(normals, normal_brain: np.ndarray, tumors, masks, pick: np.ndarray):
    """The normal slices with the tumor region of tumor slice ``pick[i]`` copied into slice ``i`` at the
    same place, where it falls inside that normal slice's brain: real tumors in the untouched anatomy,
    the paste reference of ``medsyn eval translation``."""
    import torch

    out = normals.clone()
    region = (masks[pick, 0] > 0.5) & torch.from_numpy(np.asarray(normal_brain, dtype=bool))
    region = region[:, None].expand_as(out)
    out[region] = tumors[pick][region]
    return out


def _distances(features: Callable, sel: MatchedSlices, y_n, y_t, kid_fn: Callable | None,
               ref: MatchedSlices | None = None, seed: int = 0, f_tumor=None) -> dict[str, Any]:
    """FID (and KID) of each translation against the target domain's real slices, beside the inputs';
    with ``ref`` (the reference cases' matched slices) also what their real tumor slices score (``_reference``)."""
    from medsyn_cli.metrics.fid import fid_from_features

    f = {"normal": features(sel.normal), "tumor": features(sel.tumor) if f_tumor is None else f_tumor,
         "to_tumor": features(y_n), "to_normal": features(y_t)}
    out: dict[str, Any] = {
        "fid_translated_normal_vs_tumor": fid_from_features(f["tumor"], f["to_tumor"]),
        "fid_normal_vs_tumor": fid_from_features(f["tumor"], f["normal"]),
        "fid_translated_tumor_vs_normal": fid_from_features(f["normal"], f["to_normal"]),
        "fid_tumor_vs_normal": fid_from_features(f["normal"], f["tumor"]),
    }
    out["fid_ratio_to_tumor"] = out["fid_translated_normal_vs_tumor"] / max(out["fid_normal_vs_tumor"], 1e-12)
    if kid_fn is not None:
        out["kid_translated_normal_vs_tumor"] = kid_fn(f["to_tumor"], f["tumor"])
        out["kid_normal_vs_tumor"] = kid_fn(f["normal"], f["tumor"])
    if ref is not None:
        out.update(_reference(f["tumor"], features, sel, ref, seed, out["fid_normal_vs_tumor"]))
    return out
