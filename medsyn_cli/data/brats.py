"""BraTS-style cases -> two-domain slices: tumor-free brain slices, tumor-bearing slices, whole-tumor masks.

Two case layouts are read (one folder per case, found anywhere below the root):

* the BraTS release's: ``<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair`` and the labels ``<case>_seg.nii.gz``
  (whole tumor = ``seg > 0``);
* one folder per case named by its subject id holding ``FLAIR.nii.gz``, ``T1.nii.gz`` (``T1CE``/``T1C``,
  ``T2`` when present) and the whole-tumor mask ``GT_W.nii.gz`` (as in ``brats2018-flair-t1``).

Cases are split first (:func:`split_cases`, seeded): ``test_fraction`` of the cases for testing,
``val_fraction`` for validation, the rest for training, of which a ``case_fraction`` share is kept (the
SAG-GAN paper's BraTS_S: 1/8 of the training cases); slices of one case never land in two parts. For
the chosen modality each volume is sliced axially with :func:`medsyn_cli.data.volumes.slice_volume` (the
same slicing ``medsyn translate`` uses) and:

* intensities are normalised per volume: the 0.5 / 99.5 percentiles of the brain (voxels > 0) map to
  [-1, 1] (:func:`medsyn_cli.data.intensity.percentile_mapping`), one mapping per source volume;
* a slice whose brain area (pixels > 0 in the modality) is below ``min_brain_area`` is dropped;
* a slice with no tumor label is a **normal** slice; one with a whole-tumor area of at least
  ``min_tumor_area`` pixels is a **tumor** slice; slices with a smaller, non-zero tumor area are ambiguous
  and dropped from both sets;
* masks are kept for a seeded ``mask_fraction`` share of the training tumor slices (1 by default: the
  paper labels every case; a smaller share is an experiment of medsyn's, not the paper's BraTS_S).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.data import readers
from medsyn_cli.data.intensity import apply_mapping, percentile_mapping
from medsyn_cli.data.volumes import slice_volume
from medsyn_cli.errors import InputError

MODALITIES = ("t1", "t1ce", "t2", "flair")
#: File stems (lower case) of each modality in the per-subject layout (FLAIR.nii.gz, T1.nii.gz, ...).
SUBJECT_NAMES = {"t1": ("t1",), "t1ce": ("t1ce", "t1c", "t1gd"), "t2": ("t2",), "flair": ("flair",)}
SUBJECT_MASK = "GT_W"
#: The SAG-GAN paper's case split: 20 % of the cases test, 10 % validation, the rest training.
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1
PARTS = ("train", "val", "test")
SPLIT_FILE = "split.json"
MIN_TUMOR_AREA = 100
MIN_BRAIN_AREA = 1000
PERCENTILES = (0.5, 99.5)


@dataclass
class Slice:
    """One kept slice: ``image`` in [-1, 1] at native size, ``mask`` {0, 1} (tumor slices only)."""

    name: str  # e.g. "Brats18_2013_2_1_z077.png" (the case, then the slice index)
    source: str  # e.g. "Brats18_2013_2_1/Brats18_2013_2_1_t1ce.nii.gz#z=77"
    image: np.ndarray
    mask: np.ndarray | None = None
    tumor_area: int = 0
    brain_area: int = 0
    case: str = ""
    part: str = "train"  # train, val or test


@dataclass
class Prepared:
    normal: list[Slice] = field(default_factory=list)
    tumor: list[Slice] = field(default_factory=list)
    has_mask: list[bool] = field(default_factory=list)
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)  # source volume -> mapping
    dropped: dict[str, int] = field(default_factory=lambda: {"small_brain": 0, "ambiguous_tumor": 0})
    split: dict[str, list[str]] = field(default_factory=dict)  # part -> case names ("unused" too)
    modality: str = ""


def _volume_ext(path: Path) -> str:
    return ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"


def _subject_file(folder: Path, modality: str) -> Path | None:
    """The ``modality`` volume of a per-subject case folder (``FLAIR.nii.gz``, ``T1.nii.gz``, ...)."""
    for p in sorted(folder.iterdir()):
        stem = p.name.split(".nii", 1)[0].lower()
        if ".nii" in p.name and stem in SUBJECT_NAMES.get(modality, (modality,)):
            return p
    return None


def case_modalities(image_or_seg: Path) -> list[str]:
    """The modalities present next to a case's label file (for error hints and ``modality="auto"``)."""
    folder, name = image_or_seg.parent, image_or_seg.name
    if name.split(".nii", 1)[0] == SUBJECT_MASK:
        return [m for m in MODALITIES if _subject_file(folder, m) is not None]
    case, ext = name.split("_seg.nii", 1)[0], _volume_ext(image_or_seg)
    return [m for m in MODALITIES if (folder / f"{case}_{m}{ext}").is_file()]


def _label_files(root: Path) -> list[Path]:
    found = sorted(set(root.rglob("*_seg.nii*")) | set(root.rglob(f"{SUBJECT_MASK}.nii*")))
    return [p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def find_cases(folder: str | Path, modality: str = "t1ce") -> list[tuple[str, Path, Path]]:
    """``(case name, modality file, label file)`` for every case under ``folder`` (or ``folder`` itself).

    ``modality="auto"`` picks t1ce (the SAG-GAN paper's) when every case has it, else the first of
    flair, t2, t1 that every case has.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder of BraTS cases", path=root)
    labels = _label_files(root)
    if modality == "auto":
        modality = resolve_modality(labels)
    cases = []
    for seg in labels:
        if seg.name.split(".nii", 1)[0] == SUBJECT_MASK:
            case, image = seg.parent.name, _subject_file(seg.parent, modality)
        else:
            case = seg.name.split("_seg.nii", 1)[0]
            image = seg.with_name(f"{case}_{modality}{_volume_ext(seg)}")
        if image is None or not image.is_file():
            have = ", ".join(case_modalities(seg)) or "none"
            raise InputError(f"case {case} has no {modality} volume (it has: {have})", path=seg.parent,
                             hint="pick another --modality")
        cases.append((case, image, seg))
    return cases


def pick_modality(folder: str | Path, modality: str) -> str:
    """``modality`` itself, or for ``"auto"`` the one :func:`find_cases` would pick in ``folder``."""
    root = Path(folder)
    return resolve_modality(_label_files(root)) if modality == "auto" and root.is_dir() else modality


def resolve_modality(labels: list[Path]) -> str:
    present = [set(case_modalities(p)) for p in labels]
    for m in ("t1ce", "flair", "t2", "t1"):
        if present and all(m in have for have in present):
            return m
    return "t1ce"  # find_cases then names the case that lacks it


def is_brats_folder(folder: str | Path) -> bool:
    root = Path(folder)
    return root.is_dir() and bool(_label_files(root))


def split_cases(cases: list[str], seed: int = 0, *, test_fraction: float = TEST_FRACTION,
                val_fraction: float = VAL_FRACTION, case_fraction: float = 1.0) -> dict[str, list[str]]:
    """A seeded case-level split: ``round(f * n)`` cases each for test and validation (at least one each
    when there are 3 or more cases and the fraction is not 0), the rest training, of which
    ``round(case_fraction * n_train)`` (at least 1) are kept and the others listed as ``unused``."""
    for name, f in (("test", test_fraction), ("validation", val_fraction), ("case", case_fraction)):
        if not 0.0 <= f <= 1.0:
            raise InputError(f"the {name} fraction must be in [0, 1], got {f}")
    if case_fraction == 0.0:
        raise InputError("the case fraction must be above 0")
    names = sorted(cases)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n = len(order)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    if n >= 3:
        n_test, n_val = max(n_test, int(test_fraction > 0)), max(n_val, int(val_fraction > 0))
    if n_test + n_val >= n and n:
        raise InputError(f"{n} case(s) leave none for training with test {test_fraction} and "
                         f"validation {val_fraction}")
    train = order[n_test + n_val:]
    keep = max(1, int(round(case_fraction * len(train)))) if train else 0
    return {"train": sorted(train[:keep]), "val": sorted(order[n_test:n_test + n_val]),
            "test": sorted(order[:n_test]), "unused": sorted(train[keep:])}


def prepare(folder: str | Path, modality: str = "t1ce", *, mask_fraction: float = 1.0, seed: int = 0,
            test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION,
            case_fraction: float = 1.0, min_tumor_area: int = MIN_TUMOR_AREA,
            min_brain_area: int = MIN_BRAIN_AREA) -> Prepared:
    """Split the cases, then every kept case's axial slices into normal and tumor slices (module docstring)."""
    if not 0.0 <= mask_fraction <= 1.0:
        raise InputError(f"--mask-fraction must be in [0, 1], got {mask_fraction}")
    root = Path(folder)
    modality = pick_modality(root, modality)
    cases = find_cases(root, modality)
    if not cases:
        raise InputError("no BraTS cases found (no *_seg.nii.gz or GT_W.nii.gz file)", path=root)
    names = [c[0] for c in cases]
    if len(set(names)) != len(names):
        raise InputError("two cases share a name", path=root, hint="keep one copy of each case")
    out = Prepared(modality=modality)
    out.split = split_cases(names, seed, test_fraction=test_fraction, val_fraction=val_fraction,
                            case_fraction=case_fraction)
    part_of = {c: part for part in PARTS for c in out.split[part]}
    for case, image_path, seg_path in cases:
        if case not in part_of:  # a training case left out by case_fraction: not even read
            continue
        _slice_case(root, case, image_path, seg_path, part_of[case], out, min_tumor_area, min_brain_area)
    train_tumor = [i for i, s in enumerate(out.tumor) if s.part == "train"]
    chosen = mask_selection(len(train_tumor), mask_fraction, seed)
    out.has_mask = [True] * len(out.tumor)  # validation and test slices keep every mask
    for i, keep in zip(train_tumor, chosen):
        out.has_mask[i] = keep
    return out


def _slice_case(root: Path, case: str, image_path: Path, seg_path: Path, part: str, out: Prepared,
                min_tumor_area: int, min_brain_area: int) -> None:
    vol, img = readers.read_volume(image_path)
    seg, _ = readers.read_volume(seg_path)
    if seg.shape != vol.shape:
        raise InputError(f"label shape {seg.shape} differs from the {out.modality} volume {vol.shape}",
                         path=seg_path)
    rel = image_path.relative_to(root).as_posix() if image_path != root else image_path.name
    mapping = percentile_mapping(vol, *PERCENTILES, mask=vol > 0)
    out.mappings[rel] = mapping
    for (k, plane), (_, labels) in zip(slice_volume(vol, "axial", img.affine),
                                       slice_volume(seg, "axial", img.affine)):
        brain_area = int(np.count_nonzero(plane > 0))
        tumor_area = int(np.count_nonzero(labels > 0))
        if brain_area < min_brain_area:
            out.dropped["small_brain"] += 1
            continue
        if 0 < tumor_area < min_tumor_area:
            out.dropped["ambiguous_tumor"] += 1
            continue
        item = Slice(name=f"{case}_z{k:03d}.png", source=f"{rel}#z={k}", image=apply_mapping(plane, mapping),
                     tumor_area=tumor_area, brain_area=brain_area, case=case, part=part)
        if tumor_area:
            item.mask = (labels > 0).astype(np.float32)
            out.tumor.append(item)
        else:
            out.normal.append(item)


def mask_selection(n: int, fraction: float, seed: int) -> list[bool]:
    """Which of ``n`` tumor slices keep their mask: ``round(fraction * n)`` of them, chosen by ``seed``."""
    keep = int(round(fraction * n))
    chosen = np.zeros(n, dtype=bool)
    if keep:
        chosen[np.random.default_rng(seed).choice(n, size=keep, replace=False)] = True
    return chosen.tolist()


def write(prep: Prepared, folder: Path, *, res: int = 0, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``prep`` into ``folder``; returns the counts.

    The training cases go to ``normal/``, ``tumor/`` and ``masks/`` (what ``medsyn train`` reads), the
    validation and test cases to ``val/`` and ``test/`` with the same three folders, all as 8-bit PNGs.
    ``split.json`` records the modality and which cases went where; ``intensity.json`` the mappings.
    ``res`` 0 keeps the native slice size; otherwise slices are squared with
    :func:`medsyn_cli.data.geometry.to_square` (masks padded with 0 and thresholded at 0.5).
    """
    import json

    from medsyn_cli.data.geometry import to_square
    from medsyn_cli.data.writing import save_mask, save_png

    def fit(plane: np.ndarray, pad: float) -> np.ndarray:
        return plane if not res else to_square(plane[None], res, pad_value=pad)[0]

    base = {"train": folder, "val": folder / "val", "test": folder / "test"}
    per_part = {p: {"normal": 0, "tumor": 0, "masks": 0} for p in PARTS}
    for part in PARTS:
        if part == "train" or prep.split.get(part):
            for name in ("normal", "tumor", "masks"):
                (base[part] / name).mkdir(parents=True)
    for s in prep.normal:
        save_png(fit(s.image, -1.0), base[s.part] / "normal" / s.name)
        per_part[s.part]["normal"] += 1
    for s, labelled in zip(prep.tumor, prep.has_mask):
        save_png(fit(s.image, -1.0), base[s.part] / "tumor" / s.name)
        per_part[s.part]["tumor"] += 1
        if labelled:
            save_mask(fit(s.mask, 0.0) > 0.5, base[s.part] / "masks" / s.name)
            per_part[s.part]["masks"] += 1
    counts = {**per_part["train"], "val": per_part["val"], "test": per_part["test"],
              "dropped_small_brain": prep.dropped["small_brain"],
              "dropped_ambiguous_tumor": prep.dropped["ambiguous_tumor"]}
    doc = {"format": "medsyn-brats-1", "png": "uint8 = round((mapped + 1) * 127.5), mapped in [-1, 1]",
           "normalisation": {"kind": "percentile", "low": PERCENTILES[0], "high": PERCENTILES[1],
                             "within": "brain (voxels > 0), per volume"},
           "volumes": prep.mappings, "counts": counts, "settings": settings or {}}
    (folder / "intensity.json").write_text(json.dumps(doc, indent=1))
    split = {"format": "medsyn-brats-split-1", "modality": prep.modality,
             "folders": {"train": ".", "val": "val", "test": "test"},
             "slice_name": "<case>_z<axial index>.png", "cases": prep.split, "counts": per_part,
             "settings": settings or {}}
    (folder / SPLIT_FILE).write_text(json.dumps(split, indent=1))
    return counts


def read_split(folder: str | Path) -> dict[str, Any] | None:
    """The ``split.json`` of a prepared folder, or None when it has none."""
    import json

    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable split file: {exc}", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), dict):
        raise InputError("not a medsyn split file (no 'cases')", path=path)
    return doc


def case_of(name: str) -> str:
    """The case a prepared slice belongs to: its file name without the extension, the suffix
    ``medsyn translate`` adds (``_to-tumor``, ``_attention``) and ``_z<index>``."""
    import re

    stem = Path(name.split("#", 1)[0]).name.split(".", 1)[0]
    stem = re.sub(r"_to-(tumor|normal)(_attention)?$", "", stem)
    return re.sub(r"_z\d+$", "", stem)
