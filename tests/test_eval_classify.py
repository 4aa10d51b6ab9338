"""The SAG-GAN downstream test: metric code against hand-computed cases, and a real end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from medsyn_cli.metrics.classify import binary_metrics, mean_std, positive_class, rebalance, roc_auc
from medsyn_cli.metrics.splits import stratified_split


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


# -- the paper's case split, relative improvement and both translation directions ------------

def test_relative_improvement_is_the_papers_error_reduction():
    from medsyn_cli.metrics.classify import relative_improvement

    # Table I, "Ours" against "w/o DA": accuracy on BraTS and BraTS_S, AUC on BraTS.
    assert relative_improvement(0.9503, 0.9337) == pytest.approx(0.2504, abs=1e-4)
    assert relative_improvement(0.8759, 0.8334) == pytest.approx(0.2551, abs=1e-4)
    assert relative_improvement(0.9697, 0.9612) == pytest.approx(0.2191, abs=1e-4)
    assert relative_improvement(0.80, 0.90) == pytest.approx(-1.0)  # worse than the baseline: negative
    assert np.isnan(relative_improvement(0.9, 1.0))


def test_case_split_never_puts_one_case_in_two_parts():
    from medsyn_cli.metrics.splits import case_split

    rng = np.random.default_rng(0)
    cases = [f"case{int(c):02d}" for c in rng.integers(0, 20, 400)]  # 20 patients, many slices each
    for seed in range(5):
        parts = case_split(cases, seed)
        assert sum(map(len, parts)) == 400
        owners = [{cases[i] for i in ix} for ix in parts]
        assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
        assert (len(owners[1]), len(owners[2])) == (4, 2)  # 20 % validation, 10 % test cases
    held = ["case03", "case07"]
    tr, va, te = case_split(cases, 0, test_cases=held)
    assert {cases[i] for i in te} == set(held) and not {cases[i] for i in np.concatenate([tr, va])} & set(held)


def test_split_falls_back_to_per_image_with_too_few_cases_and_says_so():
    from medsyn_cli.metrics.splits import LabelledSet, split_parts

    labels = np.array([0] * 10 + [1] * 10)
    one_case = LabelledSet(np.zeros((20, 1, 4, 4), np.float32), labels, ("normal", "tumor"),
                           cases=["Brats18_x"] * 20)
    (tr, va, te), how = split_parts(one_case, 0)
    assert how.startswith("per image") and "1 case(s)" in how and len(te) > 0
    many = LabelledSet(one_case.images, labels, one_case.classes, cases=[f"c{i // 2}" for i in range(20)])
    _, how = split_parts(many, 0)
    assert how.startswith("by case")


@pytest.fixture(scope="module")
def prepared_brats(tmp_path_factory):
    """brats2018-flair-t1 prepared at 32x32 with the default case split (4 train, 1 val, 1 test cases)."""
    from conftest import SHARED_DATA
    from medsyn_cli.data import brats

    root = SHARED_DATA / "brats2018-flair-t1"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    out = tmp_path_factory.mktemp("prepared") / "brats"
    out.mkdir()
    brats.write(brats.prepare(root, "flair", min_tumor_area=400, min_brain_area=12000), out, res=32,
                settings={"modality": "flair", "seed": 0})
    return out


@pytest.mark.slow  # two ResNet18 trainings on a few hundred slices
@pytest.mark.realdata
def test_classify_on_a_prepared_folder_uses_its_case_split_and_both_directions(prepared_brats, tmp_path):
    from PIL import Image

    split = json.loads((prepared_brats / "split.json").read_text())["cases"]
    # Stand-ins for translations of training slices, named as `medsyn translate` names them.
    syn_t, syn_n = tmp_path / "syn-tumor", tmp_path / "syn-normal"
    for src, dst, to in ((prepared_brats / "normal", syn_t, "tumor"), (prepared_brats / "tumor", syn_n, "normal")):
        dst.mkdir()
        for p in sorted(src.iterdir())[::10]:
            Image.open(p).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dst / f"{p.stem}_to-{to}.png")
    n_t, n_n = len(list(syn_t.iterdir())), len(list(syn_n.iterdir()))
    r = run_cli("eval", "classify", "--data", prepared_brats, "--synthetic", syn_t, "--synthetic-normal", syn_n,
                "--arms", "real,synthetic", "--seeds", "1", "--epochs", "1", "--res", "32", "--batch-size", "64",
                "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["settings"]["split"].startswith("by case: the prepared folder")
    test = out["splits"][0]["test"]
    assert test["cases"] == len(split["test"]) == 1
    assert test["tumor"] == len(list((prepared_brats / "test" / "tumor").iterdir()))
    assert test["normal"] == len(list((prepared_brats / "test" / "normal").iterdir()))
    real, syn = (out["arms"][a]["train_counts"][0] for a in ("real", "synthetic"))
    assert syn == {"tumor": real["tumor"] + n_t, "normal": real["normal"] + n_n}
    rel = out["arms"]["synthetic"]["relative_improvement"]
    base, aug = out["arms"]["real"]["accuracy"]["mean"], out["arms"]["synthetic"]["accuracy"]["mean"]
    assert rel["accuracy"] == pytest.approx((aug - base) / (1 - base))
    assert "relative_improvement" not in out["arms"]["real"]
    # A synthetic image made from a test case is refused: it would leak the test patient.
    leak = tmp_path / "leak"
    leak.mkdir()
    first_test = sorted((prepared_brats / "test" / "tumor").iterdir())[0]
    Image.open(first_test).save(leak / f"{first_test.stem}_to-normal.png")
    r = run_cli("eval", "classify", "--data", prepared_brats, "--synthetic", syn_t, "--synthetic-normal", leak,
                "--arms", "real,synthetic", "--seeds", "1", "--epochs", "1", "--res", "32", "--device", "cpu")
    assert r.returncode == 2 and split["test"][0] in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_test_cases_option_holds_those_cases_out(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("normal", "tumor"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for case in range(6):
            for z in range(3):
                Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(
                    tmp_path / "d" / cls / f"p{case}_z{z:03d}.png")
    (tmp_path / "held.txt").write_text("p2  # one patient\np5\n")
    r = run_cli("eval", "classify", "--data", tmp_path / "d", "--test-cases", f"@{tmp_path / 'held.txt'}",
                "--arms", "real", "--seeds", "1", "--epochs", "1", "--res", "32", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["splits"][0]["test"] == {"normal": 6, "tumor": 6, "cases": 2}
    assert out["settings"]["split"].startswith("by case: --test-cases")
    bad = run_cli("eval", "classify", "--data", tmp_path / "d", "--test-cases", "nobody", "--arms", "real")
    assert bad.returncode == 2 and "nobody" in bad.stderr


def test_synthetic_images_of_a_seeds_validation_cases_are_left_out_of_its_training(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, to in (("normal", "tumor"), ("tumor", "normal")):
        (tmp_path / "d" / cls).mkdir(parents=True)
        (tmp_path / f"syn-{to}").mkdir()
        for case in range(6):
            for z in range(3):
                pixels = rng.integers(0, 255, (16, 16), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "d" / cls / f"p{case}_z{z:03d}.png")
                if case not in (2, 5):  # translations of every non-test case, as one translate run makes them
                    Image.fromarray(255 - pixels).save(tmp_path / f"syn-{to}" / f"p{case}_z{z:03d}_to-{to}.png")
    r = run_cli("eval", "classify", "--data", tmp_path / "d", "--test-cases", "p2,p5", "--synthetic",
                tmp_path / "syn-tumor", "--synthetic-normal", tmp_path / "syn-normal", "--arms", "real,synthetic",
                "--seeds", "2", "--epochs", "1", "--res", "32", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for seed, split in enumerate(out["splits"]):
        assert split["val"]["cases"] == 1  # one of p0, p1, p3, p4: its 3 + 3 translations are dropped
        assert out["arms"]["synthetic"]["synthetic_dropped"][seed] == 6
        real, syn = out["arms"]["real"]["train_counts"][seed], out["arms"]["synthetic"]["train_counts"][seed]
        assert syn == {"tumor": real["tumor"] + 9, "normal": real["normal"] + 9}
    text = run_cli("eval", "classify", "--data", tmp_path / "d", "--test-cases", "p2,p5", "--synthetic",
                   tmp_path / "syn-tumor", "--arms", "synthetic", "--seeds", "1", "--epochs", "1", "--res", "32",
                   "--device", "cpu")
    assert text.returncode == 0, text.stderr
    assert "left out of its training: 3 (per seed)" in text.stdout


def test_synthetic_for_split_keeps_sets_without_cases_whole():
    from medsyn_cli.metrics.classify import synthetic_for_split

    images = np.zeros((4, 1, 8, 8), dtype=np.float32)
    kept, dropped = synthetic_for_split([(images, 1), (images, 0, ["a", "b", "a", "c"])], {"a"})
    assert dropped == 2 and [len(x) for x, _ in kept] == [4, 2] and [label for _, label in kept] == [1, 0]
