"""BraTS preparation as the SAG-GAN paper splits it: by case (20 % test, 10 % validation, seeded),
BraTS_S as a fraction of the training cases, and the per-subject FLAIR/T1/GT_W layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.data import brats, load_dataset, readers, slice_volume
from medsyn_cli.errors import InputError


def test_case_split_fractions_disjointness_and_seed():
    cases = [f"case{i:03d}" for i in range(40)]
    split = brats.split_cases(cases, seed=1)
    assert (len(split["test"]), len(split["val"]), len(split["train"])) == (8, 4, 28)
    parts = [set(split[p]) for p in ("train", "val", "test", "unused")]
    assert set().union(*parts) == set(cases) and sum(map(len, parts)) == 40  # every case exactly once
    assert split == brats.split_cases(list(reversed(cases)), seed=1)  # the input order does not matter
    assert split["test"] != brats.split_cases(cases, seed=2)["test"]
    small = brats.split_cases(cases, seed=1, case_fraction=0.125)  # BraTS_S: 1/8 of the training cases
    assert (small["test"], small["val"]) == (split["test"], split["val"])  # held-out cases do not move
    assert len(small["train"]) == round(28 / 8) and set(small["train"]) <= set(split["train"])
    assert set(small["unused"]) == set(split["train"]) - set(small["train"])
    few = brats.split_cases(["a", "b", "c", "d", "e", "f"], seed=0)
    assert (len(few["test"]), len(few["val"]), len(few["train"])) == (1, 1, 4)
    with pytest.raises(InputError, match="none for training"):
        brats.split_cases(["a", "b"], test_fraction=0.5, val_fraction=0.5)


def test_case_of_reads_the_case_back_from_a_slice_name():
    assert brats.case_of("Brats18_CBICA_AAB_1_z077.png") == "Brats18_CBICA_AAB_1"
    assert brats.case_of("fake/Brats18_2013_2_1_z100.png") == "Brats18_2013_2_1"
    assert brats.case_of("plain.png") == "plain"


@pytest.fixture(scope="module")
def flair_t1(request):
    from conftest import SHARED_DATA

    root = SHARED_DATA / "brats2018-flair-t1"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root


def test_subject_layout_is_found_and_auto_picks_a_modality_every_case_has(flair_t1):
    cases = brats.find_cases(flair_t1, "t1")
    assert len(cases) == 6 and all(img.name == "T1.nii.gz" and seg.name == "GT_W.nii.gz" for _, img, seg in cases)
    assert [c[0] for c in cases] == sorted(p.name for p in flair_t1.iterdir() if p.is_dir())
    assert brats.case_modalities(cases[0][2]) == ["t1", "flair"]
    assert brats.resolve_modality([seg for *_, seg in cases]) == "flair"  # no t1ce here
    from medsyn_cli.data.info import describe

    assert describe(str(flair_t1))["modality"] == "flair" and describe(str(flair_t1))["cases"] == 6
    with pytest.raises(InputError, match="has no t1ce volume \\(it has: t1, flair\\)"):
        brats.find_cases(flair_t1, "t1ce")


def test_prepare_cli_splits_by_case_and_records_modality_and_split(flair_t1, tmp_path):
    out = tmp_path / "prep"
    proc = run_cli("data", "prepare", "brats", flair_t1, "--modality", "flair", "--out", out, "--res", "64",
                   "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "split.json").read_text())
    assert doc["modality"] == "flair" and doc["settings"]["seed"] == 3
    cases = doc["cases"]
    assert cases == brats.split_cases(sorted(p.name for p in flair_t1.iterdir() if p.is_dir()), seed=3)
    assert (len(cases["train"]), len(cases["val"]), len(cases["test"])) == (4, 1, 1)
    folders = {"train": out, "val": out / "val", "test": out / "test"}
    for part, folder in folders.items():
        names = [p.name for d in ("normal", "tumor") for p in (folder / d).iterdir()]
        assert names and {brats.case_of(n) for n in names} <= set(cases[part]), part  # no case in two parts
        assert doc["counts"][part]["tumor"] == len(list((folder / "tumor").iterdir()))
    # a written mask is GT_W > 0 of its slice (squared to 64 like its image)
    name = sorted(p.name for p in (out / "test" / "masks").iterdir())[0]
    case, z = brats.case_of(name), int(name[-7:-4])
    seg, img = readers.read_volume(flair_t1 / case / "GT_W.nii.gz")
    from medsyn_cli.data.geometry import to_square

    plane = dict(slice_volume(seg, "axial", img.affine))[z] > 0
    expected = to_square(plane.astype(np.float32)[None], 64, pad_value=0.0)[0][0] > 0.5
    np.testing.assert_array_equal(np.asarray(Image.open(out / "test" / "masks" / name)) == 255, expected)
    # training reads only the training cases: the held-out folders are not part of the data
    data = load_dataset(out, res=32, task="translation", use_cache=False)
    assert {brats.case_of(s) for s in data.normal.sources + data.tumor.sources} == set(cases["train"])
    single = load_dataset(out, res=32, use_cache=False)  # an unconditional model on the same folder
    assert {brats.case_of(s) for s in single.sources} <= set(cases["train"])


def test_case_fraction_keeps_an_eighth_of_the_training_cases(flair_t1, tmp_path):
    prep = brats.prepare(flair_t1, "t1", case_fraction=0.125)
    assert len(prep.split["train"]) == 1 and len(prep.split["unused"]) == 3
    train = {s.case for s in prep.normal + prep.tumor if s.part == "train"}
    assert train == set(prep.split["train"])
    assert not {s.case for s in prep.normal + prep.tumor} & set(prep.split["unused"])  # never read


def test_on_the_fly_loader_trains_on_the_training_cases_only(flair_t1):
    data = load_dataset(flair_t1, res=32, task="translation", use_cache=False)
    split = brats.split_cases([p.name for p in flair_t1.iterdir() if p.is_dir()], seed=0)
    seen = {s.split("/", 1)[0] for s in data.normal.sources + data.tumor.sources}
    assert seen == set(split["train"]) and all("FLAIR.nii.gz" in s for s in data.tumor.sources)
    assert bool(data.tumor.has_mask.all()) and len(data.tumor.masks) == len(data.tumor)
