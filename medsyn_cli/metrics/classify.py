"""The downstream classification test of the SAG-GAN paper: do synthetic images help a classifier?

Protocol (one run per seed, every arm sharing that seed's split):

* data: a folder with exactly two class subfolders of images (e.g. ``normal/``, ``tumor/``). The
  positive class is ``tumor`` when present, else the second name in alphabetical order. Images are
  read grey (PIL ``convert("L")``), fitted into RES x RES with the aspect kept (bilinear, black
  padding) and scaled to [-1, 1].
* split, always by case (a case = a patient; a slice named ``<case>_z<index>...`` belongs to ``<case>``,
  any other file is its own case), so no patient is in two parts:

  - a folder prepared by ``medsyn data prepare brats`` (it has ``split.json``): its own case split, the
    same for every seed: training cases in ``normal/`` + ``tumor/``, ``val/`` and ``test/`` (the paper's
    dataset split, 20 % test and 10 % validation cases). The GAN trained on that folder saw only the
    training cases, so no classifier test case was in GAN training;
  - ``test_cases`` given: those cases are the test part, the rest is split by case into train and
    validation (seeded, validation ``round(0.2 * all cases)``);
  - otherwise seeded by case: 70 % train / 20 % validation / 10 % test of the cases (the paper's
    classification split). With fewer than 3 cases (or one image per case) it is the per-image split:
    stratified, per class 70/20/10, counts rounded to nearest (at least one validation and one test image
    per class when it has 3) - and ``split`` says so.
* network: torchvision ResNet18 from scratch (``weights=None``), ``conv1`` taking 1 channel, 2 outputs;
  Adam, cross-entropy; the epoch with the best validation accuracy (earliest on ties) is kept.
* arms: ``real`` (the train split as is); ``oversample`` (minority images drawn again, seeded, until
  the classes are even); ``undersample`` (majority images dropped, seeded, to the minority count);
  ``augment`` (random horizontal/vertical flips, rotations within ±10°, crops of 90-100 % of the side
  resized back, drawn fresh every epoch); ``synthetic`` (the train split plus every synthetic image:
  generated tumor images labelled ``--synthetic-label``, by default the positive class, and generated
  normal images, the other direction, labelled negative). Validation and test images are never
  synthetic or augmented. A synthetic image named after a case that is validation or test for every
  seed (a prepared folder's, ``--test-cases``) is refused; one named after a case that is validation
  for only some seeds (``--test-cases`` draws them per seed) is left out of those seeds' training.
* figures on the test split: accuracy, ROC AUC (Mann-Whitney rank statistic on P(positive)), TPR
  (sensitivity) and TNR (specificity) at argmax; mean and sample std (ddof 1) over seeds; for every arm
  but ``real`` the paper's "Relative imp.": the error reduction against ``real``,
  ``(m_arm - m_real) / (1 - m_real)`` of the mean accuracy and the mean AUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medsyn_cli.errors import InputError
from medsyn_cli.metrics.splits import LabelledSet, split_parts

ARMS = ("real", "oversample", "undersample", "augment", "synthetic")


# -- metric code ------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counting 1/2.

    Computed from the Mann-Whitney U statistic with average ranks (``scipy.stats.rankdata``):
    AUC = (R+ - n+(n+ + 1)/2) / (n+ n-), R+ the rank sum of the positives. NaN without both classes.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: a tie between a positive and a negative counts 1/2
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(labels: np.ndarray, pos_prob: np.ndarray) -> dict[str, float]:
    """Accuracy, AUC, TPR and TNR with the positive class predicted when P(positive) > 0.5."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(pos_prob, dtype=np.float64)
    pred = p > 0.5
    tp, tn = int((pred & y).sum()), int((~pred & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return {
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "auc": roc_auc(y, p),
        "tpr": tp / n_pos if n_pos else float("nan"),
        "tnr": tn / n_neg if n_neg else float("nan"),
    }


def rebalance(labels: np.ndarray, how: str, seed: int) -> np.ndarray:
    """Indices into ``labels`` after over- (minority drawn again) or under-sampling (majority cut)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        return np.arange(len(labels))
    target = counts.max() if how == "oversample" else counts.min()
    out = []
    for cls, count in zip(classes, counts):
        idx = np.flatnonzero(labels == cls)
        if count < target:
            idx = np.concatenate([idx, rng.choice(idx, target - count, replace=True)])
        elif count > target:
            idx = np.sort(rng.choice(idx, target, replace=False))
        out.append(idx)
    return np.concatenate(out)


def relative_improvement(value: float, base: float) -> float:
    """The paper's "Relative imp.": the share of the baseline's error removed, (value - base) / (1 - base)."""
    if not (np.isfinite(value) and np.isfinite(base)) or base >= 1.0:
        return float("nan")
    return float((value - base) / (1.0 - base))


def mean_std(values: list[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    mean = float(ok.mean()) if len(ok) else float("nan")
    std = float(ok.std(ddof=1)) if len(ok) > 1 else 0.0
    return {"mean": mean, "std": std, "values": [float(x) for x in v]}


# -- data -------------------------------------------------------------------------------------


def _fit_square(img, res: int) -> np.ndarray:
    from PIL import Image, ImageOps

    fitted = ImageOps.pad(img, (res, res), method=Image.Resampling.BILINEAR, color=0)
    return np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0


def _grey(item) -> "Any":
    """A PIL 'L' image from a file path or a uint8 (H, W, C) array (ITU-R 601 luma, as PIL)."""
    from PIL import Image

    from medsyn_cli.metrics.inputs import read_image_file

    arr = read_image_file(item) if isinstance(item, Path) else item
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], mode="L")
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB").convert("L")


def positive_class(names: list[str]) -> str:
    """``tumor`` when present (any case), else the second name alphabetically."""
    for n in names:
        if n.lower() == "tumor":
            return n
    return sorted(names)[1]


def load_labelled(folder: str | Path, res: int) -> LabelledSet:
    """Two class subfolders -> a labelled set; a prepared BraTS folder (``split.json``) -> its three parts."""
    from medsyn_cli.data.brats import read_split

    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder of class subfolders", path=root)
    split = read_split(root)
    if split is None:
        return _load_classes(root, res)
    parts = [(0, root)] + [(k, root / name) for k, name in ((1, "val"), (2, "test")) if (root / name).is_dir()]
    sets = [(k, _load_classes(where, res, ("normal", "tumor"))) for k, where in parts]
    if len(sets) < 3:
        raise InputError("the prepared folder has no val/ and test/ cases", path=root,
                         hint="prepare it again from 3 or more cases, or pass two class folders and --test-cases")
    first = sets[0][1]
    return LabelledSet(np.concatenate([s.images for _, s in sets]), np.concatenate([s.labels for _, s in sets]),
                       first.classes, [x for _, s in sets for x in s.sources], [x for _, s in sets for x in s.cases],
                       np.concatenate([np.full(len(s.labels), k) for k, s in sets]), split)


def _load_classes(root: Path, res: int, classes: tuple[str, ...] | None = None) -> LabelledSet:
    from medsyn_cli.data.brats import case_of
    from medsyn_cli.metrics.inputs import iter_images, resolve_input

    if classes is None:
        classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(classes) != 2:
        raise InputError(f"expected exactly two class subfolders, found {len(classes)}"
                         + (f" ({', '.join(classes)})" if classes else ""), path=root,
                         hint="e.g. DATA/normal/*.png and DATA/tumor/*.png")
    pos = positive_class(classes)
    neg = classes[0] if classes[1] == pos else classes[1]
    images, labels, sources = [], [], []
    for label, name in ((0, neg), (1, pos)):
        inp = resolve_input(str(root / name), name=f"class {name!r}")
        for source, item in iter_images(inp):
            images.append(_fit_square(_grey(item), res)[None])
            labels.append(label)
            sources.append(source)
    return LabelledSet(np.stack(images), np.asarray(labels, dtype=np.int64), (neg, pos), sources,
                       [case_of(s) for s in sources])


def load_synthetic(spec: str, res: int, held_out: set[str] = frozenset()) -> tuple[np.ndarray, list[str]]:
    """Synthetic images fitted like the real ones, and the case each was made from (its file name, as
    ``medsyn translate`` names it); one named after a ``held_out`` case is an error."""
    from medsyn_cli.data.brats import case_of
    from medsyn_cli.metrics.inputs import iter_images, resolve_input

    inp = resolve_input(spec, name="synthetic")
    out, cases = [], []
    for source, item in iter_images(inp):
        case = case_of(source)
        if case in held_out:
            raise InputError(f"synthetic image of validation/test case {case}", path=source,
                             hint="translate only the training cases' slices")
        out.append(_fit_square(_grey(item), res)[None])
        cases.append(case)
    return np.stack(out), cases


# -- training ---------------------------------------------------------------------------------


def build_resnet18():
    """torchvision ResNet18, untrained, 1 input channel, 2 outputs."""
    import torch.nn as nn
    from torchvision.models import resnet18

    net = resnet18(weights=None, num_classes=2)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


def augment_batch(x, generator):
    """Random flips, rotations within ±10° and 90-100 % crops resized back (one affine warp)."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    dev = x.device
    u = torch.rand(b, 5, generator=generator).to(dev)
    angle = (u[:, 0] * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.1 * u[:, 1]  # crop side as a fraction of the image
    max_shift = 1 - scale  # keep the crop inside the image (normalised coords)
    tx, ty = (u[:, 2] * 2 - 1) * max_shift, (u[:, 3] * 2 - 1) * max_shift
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    flips = torch.rand(b, 2, generator=generator).to(dev) < 0.5
    out = torch.where(flips[:, 0, None, None, None], out.flip(-1), out)
    return torch.where(flips[:, 1, None, None, None], out.flip(-2), out)


@dataclass
class TrainSettings:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    device: str = "cpu"


def _predict(net, x: np.ndarray, batch_size: int, device: str) -> np.ndarray:
    import torch

    net.eval()
    probs = []
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[s:s + batch_size]).to(device)
            probs.append(torch.softmax(net(xb).float(), 1)[:, 1].cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def train_and_test(train_x: np.ndarray, train_y: np.ndarray, val: tuple[np.ndarray, np.ndarray],
                   test: tuple[np.ndarray, np.ndarray], *, seed: int, settings: TrainSettings,
                   augment: bool = False, on_epoch: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train a fresh ResNet18; return test metrics of the epoch with the best validation accuracy."""
    import copy

    import torch
    import torch.nn.functional as F

    from medsyn_cli.nn.adam_kernel import use_fast_kernels

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = settings.device
    net = build_resnet18().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    use_fast_kernels(opt, torch.device(dev))  # fused Adam where the device has it
    x_all = torch.from_numpy(train_x)
    y_all = torch.from_numpy(train_y)
    best = (-1.0, 0, None)  # (val accuracy, epoch, state)
    for epoch in range(1, settings.epochs + 1):
        net.train()
        order = torch.randperm(len(x_all), generator=gen)
        for s in range(0, len(order), settings.batch_size):
            idx = order[s:s + settings.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            xb, yb = x_all[idx].to(dev), y_all[idx].to(dev)
            if augment:
                xb = augment_batch(xb, gen)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_acc = binary_metrics(val[1], _predict(net, val[0], settings.batch_size, dev))["accuracy"]
        if val_acc > best[0]:
            best = (val_acc, epoch, copy.deepcopy(net.state_dict()))
        if on_epoch is not None:
            on_epoch()
    net.load_state_dict(best[2])
    figures = binary_metrics(test[1], _predict(net, test[0], settings.batch_size, dev))
    return {**figures, "val_accuracy": best[0], "best_epoch": best[1]}


def synthetic_for_split(synthetic: list[tuple], excluded: set[str]) -> tuple[list[tuple[np.ndarray, int]], int]:
    """The synthetic ``(images, label[, cases])`` sets without the images made from an ``excluded`` case
    (this seed's validation and test cases), and how many were dropped. Without cases, all are kept."""
    kept, dropped = [], 0
    for images, label, *rest in synthetic:
        cases = rest[0] if rest else None
        if cases is not None:
            keep = np.array([c not in excluded for c in cases], dtype=bool)
            dropped += int((~keep).sum())
            images = images[keep]
        kept.append((images, label))
    return kept, dropped


def run_protocol(data: LabelledSet, synthetic: np.ndarray | list[tuple] | None,
                 synthetic_label: int = 1, *, seeds: int, arms: tuple[str, ...], settings: TrainSettings,
                 on_epoch: Callable[[], None] | None = None, test_cases: list[str] | None = None) -> dict[str, Any]:
    """Every arm for every seed; returns per-arm mean/std (and the relative improvement over ``real``),
    the split sizes and how the split was made.

    ``synthetic`` is one array labelled ``synthetic_label`` or a list of ``(images, label)`` or
    ``(images, label, cases)`` sets (both translation directions). With cases, each seed's synthetic arm
    leaves out the images made from that seed's validation and test cases: with ``--test-cases`` the
    validation cases change from seed to seed, so a fixed synthetic folder cannot be checked up front.
    """
    if isinstance(synthetic, np.ndarray):
        synthetic = [(synthetic, synthetic_label)]
    if "synthetic" in arms and not synthetic:
        raise ValueError("the synthetic arm needs synthetic images")
    per_arm: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    splits, how = [], ""
    for seed in range(seeds):
        (tr, va, te), how = split_parts(data, seed, test_cases)
        splits.append({name: {data.classes[c]: int((data.labels[ix] == c).sum()) for c in (0, 1)}
                       for name, ix in (("train", tr), ("val", va), ("test", te))})
        for name, ix in (("train", tr), ("val", va), ("test", te)):
            splits[-1][name]["cases"] = len({data.cases[i] for i in ix}) if data.cases else None
        val = (data.images[va], data.labels[va])
        test = (data.images[te], data.labels[te])
        if "synthetic" in arms:  # (synthetic images are there: checked above)
            excluded = {data.cases[i] for i in np.concatenate([va, te])} if data.cases else set()
            fakes, dropped = synthetic_for_split(synthetic, excluded)
        for arm in arms:
            x, y, augment = data.images[tr], data.labels[tr], False
            if arm in ("oversample", "undersample"):
                keep = rebalance(y, arm, seed)
                x, y = x[keep], y[keep]
            elif arm == "augment":
                augment = True
            elif arm == "synthetic":
                x = np.concatenate([x, *(images for images, _ in fakes)])
                y = np.concatenate([y, *(np.full(len(images), label, dtype=np.int64) for images, label in fakes)])
            out = train_and_test(x, y, val, test, seed=seed, settings=settings, augment=augment,
                                 on_epoch=on_epoch)
            out["train_counts"] = {data.classes[c]: int((y == c).sum()) for c in (0, 1)}
            if arm == "synthetic":
                out["synthetic_dropped"] = dropped
            per_arm[arm].append(out)
    summary = {}
    for arm, runs in per_arm.items():
        summary[arm] = {k: mean_std([r[k] for r in runs]) for k in ("accuracy", "auc", "tpr", "tnr")}
        summary[arm]["best_epoch"] = [r["best_epoch"] for r in runs]
        summary[arm]["train_counts"] = [r["train_counts"] for r in runs]
        if arm == "synthetic":  # per seed: images made from that seed's validation/test cases, left out
            summary[arm]["synthetic_dropped"] = [r["synthetic_dropped"] for r in runs]
    if "real" in summary:
        base = summary["real"]
        for arm in summary:
            if arm != "real":
                summary[arm]["relative_improvement"] = {
                    k: relative_improvement(summary[arm][k]["mean"], base[k]["mean"]) for k in ("accuracy", "auc")}
    return {"arms": summary, "splits": splits, "split": how}
