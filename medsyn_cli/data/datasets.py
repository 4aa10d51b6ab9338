"""``load_dataset``: any supported input -> an :class:`ImageSet` (or a :class:`TwoDomainSet` for translation).

Inputs (see docs/data.md):

* a folder (searched recursively) or a single file: PNG/JPEG/TIFF/BMP (any mode, converted to grey), NIfTI
  volumes (sliced along ``axis``, empty slices dropped by :func:`medsyn_cli.data.volumes.keep_slice`), DICOM
  files (one image per frame), ``.npy``/``.npz`` stacks;
* ``phantom:ct`` / ``phantom:brain`` (``phantom:ct?n=512&seed=0``): generated in memory;
* ``NAME:...`` where a plugin registered dataset ``NAME`` through the ``register_datasets`` hook;
* for ``task="translation"``: a folder with ``normal/`` and ``tumor/`` (and optional ``masks/`` named like
  the tumor images), a BraTS-style folder of cases (prepared on the fly from its training cases only, see
  :mod:`medsyn_cli.data.brats`), or ``phantom:brain``.

Every image is brought to ``res x res`` by :func:`medsyn_cli.data.geometry.fit_square` with ``fit`` (``pad``:
aspect kept, padded with black; ``resize``; ``crop``: centre square) and to ``channels`` channels (grey
replicated). Translation data is always padded, so translated outputs map back onto their inputs. Files are decoded in a thread pool.
Results are cached (:mod:`medsyn_cli.data.cache`) unless ``use_cache=False``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl

import numpy as np

from medsyn_cli.data import cache, readers
from medsyn_cli.data.geometry import FITS, fit_square, to_square
from medsyn_cli.data.intensity import apply_mapping, combine_mappings
from medsyn_cli.data.modality import prepared_modality
from medsyn_cli.data.modality import record as record_modality
from medsyn_cli.data.volumes import volume_mapping, volume_slices
from medsyn_cli.errors import InputError
from medsyn_cli.formats import format_of

if TYPE_CHECKING:  # torch is imported only when a dataset is built
    from medsyn_cli.data.types import ImageSet, TwoDomainSet

TASKS = ("unconditional", "translation")
PHANTOM_DEFAULT_N = {"ct": 512, "brain": 256}


def supported() -> str:
    """What the registered formats read, for error messages."""
    from medsyn_cli.formats import describe

    return describe()


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Item:
    """One preprocessed image: (C, res, res) float32 in [-1, 1], where it came from, its mapping."""

    source: str
    image: np.ndarray
    mapping: dict[str, Any]


def load_dataset(path: str | os.PathLike, *, res: int, channels: int = 1, task: str = "unconditional",
                 axis: str = "axial", use_cache: bool = True, modality: str = "auto",
                 fit: str = "pad") -> ImageSet | TwoDomainSet:
    """Load, preprocess and (by default) cache a dataset; bad input raises :class:`InputError` naming the file."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if res < 1:
        raise InputError(f"resolution must be positive, got {res}")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels}")
    if fit not in FITS:
        raise InputError(f"unknown --fit {fit!r}", hint=f"use one of {', '.join(FITS)}")
    if task == "translation" and fit != "pad":
        raise InputError(f"--fit {fit}: translation data is always padded (pad), so outputs map back onto inputs")
    text = os.fspath(path)
    settings = {"res": res, "channels": channels, "task": task, "axis": axis, "modality": modality}
    if fit != "pad":  # keys of padded data stay as they were, so existing caches stay valid
        settings["fit"] = fit
    if text.startswith("phantom:"):
        kind, params = parse_phantom(text)
        return _cached(lambda: _phantom(kind, params, res, channels, task), [],
                       {**settings, "phantom": kind, **params}, {"path": text, "res": res, "task": task},
                       use_cache)
    loader = _plugin_loader(text)
    if loader is not None:
        return loader(text, res, channels)
    root = Path(text)
    if not root.exists():
        raise InputError("no such file or directory", path=root)

    if task == "translation":
        if root.is_dir() and (root / "normal").is_dir() and (root / "tumor").is_dir():
            files = _files_for_key(root, readers.list_inputs(root))
            data = _cached(lambda: _two_domain(root, res, channels, axis), files, settings,
                           _what(root, res, task), use_cache)
            return record_modality(data, prepared_modality(root))
        from medsyn_cli.data import brats

        if brats.is_brats_folder(root):
            cases = brats.find_cases(root, modality)
            files = _files_for_key(root, [p for _, image, seg in cases for p in (image, seg)])
            split = {"seed": 0, "test": brats.TEST_FRACTION, "val": brats.VAL_FRACTION}  # only training cases
            data = _cached(lambda: _brats(root, res, channels, modality), files, {**settings, "split": split},
                           _what(root, res, task), use_cache)
            return record_modality(data, modality)
        raise InputError("a translation dataset needs normal/ and tumor/ folders or BraTS-style cases",
                         path=root, hint="or use phantom:brain")

    files = _input_files(root)
    if root.is_dir() and (root / "normal").is_dir() and (root / "tumor").is_dir():
        # masks are labels, not images; a prepared folder's val/ and test/ cases are held out
        held_out = {"masks", "val", "test"} if (root / "split.json").is_file() else {"masks"}
        files = [f for f in files if f.relative_to(root).parts[0] not in held_out]
    base = root if root.is_dir() else root.parent
    data = _cached(lambda: _image_set(files, base, res, channels, axis, fit), _files_for_key(base, files), settings,
                   _what(root, res, task), use_cache)
    return record_modality(data, None)  # from the file names, when they agree


# -------------------------------------------------------------------------- plugins


def plugin_datasets() -> dict[str, Callable]:
    """Every dataset name registered through the ``register_datasets`` hook -> its loader."""
    from medsyn_cli.plugins import collect

    return dict(entry for _, entry in collect("register_datasets", lambda name, loader: (str(name), loader)))


def _plugin_loader(text: str) -> Callable | None:
    if ":" not in text or Path(text).exists():
        return None
    name = text.split(":", 1)[0]
    return plugin_datasets().get(name) if len(name) > 1 else None  # one letter: a Windows drive


# -------------------------------------------------------------------------- caching


def _what(root: Path, res: int, task: str) -> dict[str, Any]:
    return {"path": str(root.resolve()), "res": res, "task": task}


def _files_for_key(base: Path, files: list[Path]) -> list[tuple[str, Path]]:
    return [(f.relative_to(base).as_posix(), f) for f in files]


def _cached(build: Callable[[], ImageSet | TwoDomainSet], files: list[tuple[str, Path]],
            settings: dict[str, Any], what: dict[str, Any], use_cache: bool) -> ImageSet | TwoDomainSet:
    if not use_cache:
        return build()
    key = cache.dataset_key(files, settings)
    hit = cache.load(key)
    if hit is not None:
        return hit
    data = build()
    from medsyn_cli.outputs import write_cache_entry

    # One writer per entry; a read-only or full cache dir warns and must not stop training.
    write_cache_entry(cache.datasets_dir() / f"{key}.npz", lambda: cache.save(key, data, what), "the dataset")
    return data


# -------------------------------------------------------------------------- single domain


def _input_files(root: Path) -> list[Path]:
    if root.is_file():
        if readers.file_kind(root) is None:
            raise InputError(f"unsupported format (medsyn reads {supported()})", path=root)
        return [root]
    everything = [p for p in root.rglob("*") if p.is_file()]
    if not everything:
        raise InputError("empty folder", path=root)
    files = readers.list_inputs(root)
    if not files:
        raise InputError(f"no readable image in folder ({len(everything)} files, none of {supported()})",
                         path=root)
    return files


def decode_file(path: Path, rel: str, res: int, axis: str = "axial", fit: str = "pad") -> list[Item]:
    """Every image one file holds, mapped to [-1, 1] and squared to ``res`` by ``fit`` (one channel unless
    stored as 3)."""
    def to_square(img, size):  # noqa: F811 - the fit chosen for this dataset
        return fit_square(img, size, fit)

    kind = readers.file_kind(path)
    if kind == "image":
        raw, mapping = readers.read_image_raw(path)
        return [Item(rel, to_square(apply_mapping(raw, mapping)[None], res)[0], mapping)]
    if kind == "nifti":
        vol, img = readers.read_volume(path)
        mapping = volume_mapping(vol)
        letter = {"axial": "z", "coronal": "y", "sagittal": "x"}.get(axis, "k")
        return [Item(f"{rel}#{letter}={k}", to_square(plane[None], res)[0], mapping)
                for k, plane in volume_slices(vol, img.affine, axis, mapping)]
    if kind == "dicom":  # the format registry's reader: one rule for which frames a file gives
        from medsyn_cli.data.builtin_formats import read_dicom

        return [Item(rel + name[len(path.name):], to_square(plane, res)[0], mapping)
                for name, plane, mapping in read_dicom(path)]
    if kind == "array":
        arr = readers.read_array(path)
        mapping = readers.array_mapping(arr)
        return [Item(f"{rel}#{k}", to_square(apply_mapping(a, mapping), res)[0], mapping)
                for k, a in enumerate(arr)]
    fmt = format_of(path)  # a plugin's format: its reader gives the planes in [-1, 1]
    if fmt is None:
        raise InputError(f"unsupported format (medsyn reads {supported()})", path=path)
    planes = fmt.read(path)
    return [Item(rel if len(planes) == 1 else f"{rel}#{label}", to_square(np.asarray(image, np.float32), res)[0],
                 mapping) for label, image, mapping in planes]


def _decode_all(files: list[Path], base: Path, res: int, axis: str, fit: str = "pad") -> list[Item]:
    """Decode in a thread pool (Pillow, zlib and NumPy release the GIL); order follows ``files``."""
    rels = [f.relative_to(base).as_posix() for f in files]
    workers = max(1, min(8, os.cpu_count() or 1, len(files)))
    if workers == 1:
        results = [decode_file(f, r, res, axis, fit) for f, r in zip(files, rels)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda fr: decode_file(fr[0], fr[1], res, axis, fit), zip(files, rels)))
    return [item for items in results for item in items]


def _to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    if img.shape[0] == 3 and channels == 1:
        return np.tensordot(_LUMA, img, axes=1)[None].astype(np.float32)
    if img.shape[0] == 1 and channels == 3:
        return np.repeat(img, 3, axis=0)
    return img


def _stack(items: list[Item], channels: int, where: Path) -> ImageSet:
    import torch

    from medsyn_cli.data.types import ImageSet

    if not items:
        raise InputError("no non-empty image or slice found", path=where)
    images = np.stack([_to_channels(it.image, channels) for it in items]).astype(np.float32)
    by_source = {it.source.split("#", 1)[0]: it.mapping for it in items}
    return ImageSet(images=torch.from_numpy(images), sources=[it.source for it in items],
                    intensity=combine_mappings(by_source))


def _image_set(files: list[Path], base: Path, res: int, channels: int, axis: str, fit: str = "pad") -> ImageSet:
    # One file that gives no usable slice is named itself, not its folder.
    return _stack(_decode_all(files, base, res, axis, fit), channels, files[0] if len(files) == 1 else base)


# -------------------------------------------------------------------------- two domains


def _two_domain(root: Path, res: int, channels: int, axis: str) -> TwoDomainSet:
    import torch

    from medsyn_cli.data.types import TwoDomainSet

    domains = {}
    for name in ("normal", "tumor"):
        folder = root / name
        files = _input_files(folder)
        domains[name] = _stack(_decode_all(files, folder, res, axis), channels, folder)
    prepared = root / "intensity.json"  # written by `medsyn data prepare brats`: how the PNGs were made
    if prepared.is_file():
        import json

        try:
            doc = json.loads(prepared.read_text())
            for s in domains.values():
                s.intensity = {**s.intensity, "prepared": doc.get("normalisation", {}), "volumes": doc.get("volumes", {})}
        except (OSError, ValueError):
            pass
    tumor = domains["tumor"]
    masks_dir = root / "masks"
    if masks_dir.is_dir():
        masks = np.zeros((len(tumor), 1, res, res), np.float32)
        has_mask = np.zeros(len(tumor), bool)
        for i, source in enumerate(tumor.sources):
            if "#" in source:  # a slice of a volume: masks/ holds 2D images only
                continue
            mask_path = masks_dir / source
            if mask_path.is_file():
                masks[i] = read_mask(mask_path, res)
                has_mask[i] = True
        tumor.masks, tumor.has_mask = torch.from_numpy(masks), torch.from_numpy(has_mask)
    return TwoDomainSet(domains["normal"], tumor)


def read_mask(path: Path, res: int) -> np.ndarray:
    """A mask image -> (1, res, res) float32 in {0, 1} (any non-zero pixel is tumor)."""
    raw, _ = readers.read_image_raw(path)
    square, _ = to_square((raw > 0).astype(np.float32)[None], res, pad_value=0.0)
    return (square > 0.5).astype(np.float32)


def _brats(root: Path, res: int, channels: int, modality: str) -> TwoDomainSet:
    import torch

    from medsyn_cli.data import brats
    from medsyn_cli.data.types import ImageSet, TwoDomainSet

    # The seeded case split of `medsyn data prepare brats` (its defaults): only the training cases are
    # loaded, so the validation and test cases stay unseen by the GAN.
    prep = brats.prepare(root, modality)
    keep = [s.part == "train" for s in prep.tumor]
    prep.normal = [s for s in prep.normal if s.part == "train"]
    prep.tumor, prep.has_mask = ([s for s, k in zip(prep.tumor, keep) if k],
                                 [h for h, k in zip(prep.has_mask, keep) if k])
    if not prep.normal or not prep.tumor:
        raise InputError(f"BraTS cases gave {len(prep.normal)} normal and {len(prep.tumor)} tumor slices; "
                         "both are needed", path=root)

    def domain(slices, with_masks: bool) -> ImageSet:
        items = [Item(s.source, to_square(s.image[None], res)[0], prep.mappings[s.source.split("#", 1)[0]])
                 for s in slices]
        out = _stack(items, channels, root)
        if with_masks:
            masks = [(to_square(s.mask[None], res, pad_value=0.0)[0] > 0.5).astype(np.float32) for s in slices]
            out.masks = torch.from_numpy(np.stack(masks))
            out.has_mask = torch.tensor(prep.has_mask, dtype=torch.bool)
        return out

    return TwoDomainSet(domain(prep.normal, False), domain(prep.tumor, True))


# -------------------------------------------------------------------------- phantoms


def parse_phantom(text: str) -> tuple[str, dict[str, int]]:
    """``phantom:ct?n=512&seed=0`` -> ("ct", {"n": 512, "seed": 0}) with defaults filled in."""
    body = text[len("phantom:"):]
    kind, _, query = body.partition("?")
    if kind not in PHANTOM_DEFAULT_N:
        raise InputError(f"unknown phantom {kind!r}", path=text, hint="use phantom:ct or phantom:brain")
    params = {"n": PHANTOM_DEFAULT_N[kind], "seed": 0}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in params:
            raise InputError(f"unknown phantom setting {key!r}", path=text, hint="settings: n, seed")
        try:
            params[key] = int(value)
        except ValueError:
            raise InputError(f"phantom setting {key} must be an integer, got {value!r}", path=text) from None
    if params["n"] < 1:
        raise InputError("phantom n must be at least 1", path=text)
    return kind, params


def _phantom(kind: str, params: dict[str, int], res: int, channels: int, task: str) -> ImageSet | TwoDomainSet:
    import torch

    from medsyn_cli.data.types import ImageSet, TwoDomainSet

    from medsyn_cli.data import phantoms

    n, seed = params["n"], params["seed"]
    rep = (lambda a: np.repeat(a, 3, axis=1)) if channels == 3 else (lambda a: a)  # noqa: E731
    if kind == "ct":
        if task == "translation":
            raise InputError("phantom:ct has no tumor domain", path="phantom:ct", hint="use phantom:brain")
        images = phantoms.ct(n, res, seed)
        return ImageSet(torch.from_numpy(rep(images)), [f"phantom:ct#{i}" for i in range(n)],
                        dict(phantoms.CT_WINDOW))
    normal, tumor, masks = phantoms.brain(n, res, seed)
    mapping = dict(phantoms.BRAIN_MAPPING)
    normal_set = ImageSet(torch.from_numpy(rep(normal)), [f"phantom:brain#{i}" for i in range(n)], mapping)
    if task == "unconditional":
        return normal_set
    tumor_set = ImageSet(torch.from_numpy(rep(tumor)), [f"phantom:brain#{i}+tumor" for i in range(n)], dict(mapping),
                         masks=torch.from_numpy(masks), has_mask=torch.ones(n, dtype=torch.bool))
    return TwoDomainSet(normal_set, tumor_set)
