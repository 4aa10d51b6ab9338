"""The SAG-GAN downstream test: metric code against hand-computed cases, and a real end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from medsyn_cli.metrics.classify import (binary_metrics, mean_std, positive_class, rebalance, roc_auc,
                                         stratified_split)


# -- metric code ------------------------------------------------------------------------------

def test_auc_hand_computed_cases_including_ties():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert roc_auc([1, 0], [0.2, 0.9]) == 0.0
    # Ties between a positive and a negative count 1/2: pairs (p=.5 vs n=.5) 0.5, (p=.5 vs n=.2) 1,
    # (p=.9 vs both) 2 -> 3.5 of 4.
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.2]) == pytest.approx(3.5 / 4)
    assert roc_auc([1, 1, 0], [0.3, 0.3, 0.3]) == pytest.approx(0.5)  # all tied
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))  # one class only


def test_auc_equals_the_pairwise_definition_on_random_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60), 1)  # rounding makes many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
    assert roc_auc(y, s) == pytest.approx(np.mean(pairs))


def test_accuracy_tpr_tnr_at_the_half_threshold():
    # labels   1    1    1    0    0
    # probs   .9   .6   .2   .4   .7  -> predicted 1, 1, 0, 0, 1: TP 2, FN 1, TN 1, FP 1
    m = binary_metrics(np.array([1, 1, 1, 0, 0]), np.array([0.9, 0.6, 0.2, 0.4, 0.7]))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["tpr"] == pytest.approx(2 / 3)
    assert m["tnr"] == pytest.approx(1 / 2)
    assert m["auc"] == pytest.approx(3 / 6)  # ordered pairs: .9 over both, .6 over .4 only, .2 over none


def test_stratified_split_proportions_disjointness_and_determinism():
    labels = np.array([0] * 50 + [1] * 20)
    tr, va, te = stratified_split(labels, seed=3)
    assert len(set(tr) | set(va) | set(te)) == 70 and not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    counts = {name: (int((labels[ix] == 0).sum()), int((labels[ix] == 1).sum()))
              for name, ix in (("train", tr), ("val", va), ("test", te))}
    assert counts == {"train": (35, 14), "val": (10, 4), "test": (5, 2)}
    again = stratified_split(labels, seed=3)
    other = stratified_split(labels, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(te, other[2])
    small = stratified_split(np.array([0, 0, 0, 1, 1, 1]), seed=0)  # every split sees both classes
    assert all(len(set(np.array([0, 0, 0, 1, 1, 1])[ix])) == 2 for ix in small)


def test_over_and_undersampling_balance_the_classes():
    labels = np.array([0] * 7 + [1] * 3)
    over = rebalance(labels, "oversample", seed=0)
    assert np.bincount(labels[over]).tolist() == [7, 7] and set(range(10)) <= set(over.tolist())
    under = rebalance(labels, "undersample", seed=0)
    assert np.bincount(labels[under]).tolist() == [3, 3] and len(set(under.tolist())) == 6


def test_mean_std_over_seeds_and_positive_class_rule():
    assert mean_std([0.5, 0.7]) == {"mean": pytest.approx(0.6), "std": pytest.approx(np.std([0.5, 0.7], ddof=1)),
                                    "values": [0.5, 0.7]}
    assert mean_std([0.5])["std"] == 0.0
    assert positive_class(["normal", "tumor"]) == "tumor"
    assert positive_class(["Tumor", "healthy"]) == "Tumor"
    assert positive_class(["benign", "malignant"]) == "malignant"


def test_augmentation_is_seeded_and_keeps_shape_and_range():
    torch = pytest.importorskip("torch")
    from medsyn_cli.metrics.classify import augment_batch

    x = torch.linspace(-1, 1, 4 * 32 * 32).reshape(4, 1, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert a.min() >= -1 and a.max() <= 1


# -- end to end on real BraTS slices ----------------------------------------------------------

def brats_two_class_set(case_dir: Path, out: Path, per_class: int = 14, tumor_min_px: int = 400) -> None:
    """t1ce axial slices: tumor = seg>0 over ``tumor_min_px`` pixels; normal = brain, no tumor."""
    import nibabel as nib
    from PIL import Image

    t1ce = np.asarray(nib.load(next(case_dir.glob("*_t1ce.nii*"))).dataobj, dtype=np.float32)
    seg = np.asarray(nib.load(next(case_dir.glob("*_seg.nii*"))).dataobj)
    hi = np.percentile(t1ce[t1ce > 0], 99.5)
    tumor, normal = [], []
    for z in range(t1ce.shape[2]):
        brain = (t1ce[..., z] > 0).mean()
        area = int((seg[..., z] > 0).sum())
        if area >= tumor_min_px:
            tumor.append(z)
        elif area == 0 and brain > 0.15:
            normal.append(z)
    for name, zs in (("tumor", tumor), ("normal", normal)):
        (out / name).mkdir(parents=True, exist_ok=True)
        pick = np.linspace(0, len(zs) - 1, min(per_class, len(zs))).round().astype(int)
        for z in (zs[i] for i in pick):
            img = np.clip(t1ce[..., z] / hi * 255, 0, 255).astype(np.uint8)
            Image.fromarray(np.rot90(img)).resize((64, 64), Image.Resampling.BILINEAR).save(
                out / name / f"{case_dir.name}_z{z:03d}.png")


@pytest.mark.realdata
def test_classify_end_to_end_on_brats_slices(shared_data, tmp_path):
    from PIL import Image

    cases = sorted((shared_data / "brats2018-sample").iterdir())
    data = tmp_path / "labelled"
    brats_two_class_set(cases[0], data)
    # Stand-ins for generated tumor images: tumor slices of the other case, mirrored.
    brats_two_class_set(cases[1], tmp_path / "other", per_class=6)
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for p in sorted((tmp_path / "other" / "tumor").iterdir()):
        Image.open(p).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(synthetic / p.name)
    n_synth = len(list(synthetic.iterdir()))
    r = run_cli("eval", "classify", "--data", data, "--synthetic", synthetic, "--seeds", "1", "--epochs", "2",
                "--res", "64", "--batch-size", "8", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["classes"] == {"negative": "normal", "positive": "tumor"}
    assert list(out["arms"]) == ["real", "oversample", "undersample", "augment", "synthetic"]
    n_normal, n_tumor = out["counts"]["normal"], out["counts"]["tumor"]
    split = out["splits"][0]
    assert sum(split[s]["tumor"] for s in split) == n_tumor and split["test"]["tumor"] >= 1
    for arm, figs in out["arms"].items():
        for k in ("accuracy", "auc", "tpr", "tnr"):
            v = figs[k]["mean"]
            assert v is None or 0.0 <= v <= 1.0, (arm, k, v)
        assert figs[k]["std"] == 0.0  # one seed
        assert 1 <= figs["best_epoch"][0] <= 2
    counts = {arm: out["arms"][arm]["train_counts"][0] for arm in out["arms"]}
    assert counts["synthetic"]["tumor"] == counts["real"]["tumor"] + n_synth
    assert counts["oversample"]["tumor"] == counts["oversample"]["normal"] == max(counts["real"].values())
    assert counts["undersample"]["tumor"] == counts["undersample"]["normal"] == min(counts["real"].values())
    assert out["synthetic"]["label"] == "tumor" and out["synthetic"]["count"] == n_synth
    table = run_cli("eval", "classify", "--data", data, "--seeds", "1", "--epochs", "1", "--res", "32",
                    "--arms", "real", "--device", "cpu")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].startswith("real") and "±" in table.stdout


def test_classify_needs_two_classes(tmp_path):
    (tmp_path / "only").mkdir()
    r = run_cli("eval", "classify", "--data", tmp_path, "--arms", "real")
    assert r.returncode == 2 and "two class subfolders" in r.stderr
