"""Edge maps and edge statistics, the way the CT thesis inspects generated slices.

All filters are scikit-image's and scipy.ndimage's; this module only chooses them and their inputs:

* ``sobel``: ``skimage.filters.sobel`` (gradient magnitude) of the image, after
  ``scipy.ndimage.gaussian_filter(sigma)`` when ``sigma > 0`` (default sigma 0);
* ``canny``: ``skimage.feature.canny(sigma=sigma)``, a binary map (default sigma 1, skimage's);
* ``laplacian``: ``|scipy.ndimage.gaussian_laplace(sigma)|`` (Laplacian of Gaussian), or
  ``|scipy.ndimage.laplace|`` when ``sigma == 0`` (default sigma 1).

Inputs are read by ``medsyn_cli.data.readers`` (``read_image``, ``read_volume``) and filtered as
grey values in [0, 1]. The statistics behind ``medsyn eval edges`` are in
:func:`edge_statistics`; docs/edges.md explains each measure.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, stats
from scipy.spatial.distance import jensenshannon

from medsyn_cli.errors import InputError

METHODS = ("sobel", "canny", "laplacian")
DEFAULT_SIGMA = {"sobel": 0.0, "canny": 1.0, "laplacian": 1.0}
#: Colour of edges drawn over the grey image by ``--overlay`` (RGB, 0..1).
OVERLAY_COLOUR = np.array([1.0, 0.15, 0.0])
#: At most this many gradient magnitudes per set go into the Wasserstein distance (a fixed-seed sample).
MAX_WASSERSTEIN_VALUES = 1_000_000


# -- edge maps ---------------------------------------------------------------------------------
def check_method(method: str, sigma: float | None) -> float:
    """Validate ``method`` and return the sigma to use (the method's default when None)."""
    if method not in METHODS:
        raise InputError(f"unknown edge method {method!r}", hint=f"choose one of {', '.join(METHODS)}")
    sigma = DEFAULT_SIGMA[method] if sigma is None else float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise InputError(f"--sigma must be a number >= 0, not {sigma}")
    return sigma


def edge_map(image: np.ndarray, method: str = "sobel", sigma: float | None = None) -> np.ndarray:
    """Edge map of one 2D grey image in [0, 1]: float32 strength (sobel, laplacian) or {0, 1} (canny)."""
    from skimage import feature, filters

    sigma = check_method(method, sigma)
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"edge_map expects a 2D image, got shape {img.shape}")
    if method == "sobel":
        return filters.sobel(ndimage.gaussian_filter(img, sigma) if sigma > 0 else img).astype(np.float32)
    if method == "canny":
        return feature.canny(img, sigma=sigma).astype(np.float32)
    response = ndimage.gaussian_laplace(img, sigma) if sigma > 0 else ndimage.laplace(img)
    return np.abs(response).astype(np.float32)


def gradient_magnitude(image: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """Sobel gradient magnitude of a 2D image in [0, 1], smoothed with ``sigma`` first when > 0."""
    from skimage import filters

    img = np.asarray(image, dtype=np.float64)
    return filters.sobel(ndimage.gaussian_filter(img, sigma) if sigma > 0 else img)


def edges_to_uint8(edges: np.ndarray) -> np.ndarray:
    """An edge map as an 8-bit picture: binary maps as 0/255, strengths scaled by the image's maximum."""
    peak = float(edges.max()) if edges.size else 0.0
    scaled = edges / peak if peak > 0 else np.zeros_like(edges)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def overlay(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the grey image with edges blended in colour, opacity = relative edge strength."""
    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)
    alpha = (edges_to_uint8(edges).astype(np.float64) / 255.0)[..., None]
    rgb = (1 - alpha) * grey + alpha * OVERLAY_COLOUR
    return np.round(rgb * 255).astype(np.uint8)


# -- reading -----------------------------------------------------------------------------------
def is_volume(path: Path) -> bool:
    """A NIfTI volume, as the format registry (:mod:`medsyn_cli.formats`) names it."""
    from medsyn_cli.formats import kind_of

    return kind_of(path) == "nifti"


def is_image(path: Path) -> bool:
    """A 2D image file, as the format registry names it."""
    from medsyn_cli.formats import kind_of

    return kind_of(path) == "image"


def _supported_hint(volumes: bool) -> str:
    from medsyn_cli.formats import suffixes

    return ", ".join(suffixes("image", "nifti") if volumes else suffixes("image"))


def read_grey(path: Path) -> np.ndarray:
    """A 2D image file as grey float64 in [0, 1], read by ``medsyn_cli.data.readers.read_image``
    (colour as ITU-R 601 luma; 16-bit and float images by their 0.5-99.5 percentiles)."""
    from medsyn_cli.data.readers import read_image

    image, _ = read_image(path)  # (1, H, W) float32 in [-1, 1]; InputError naming the file
    return (np.asarray(image[0], dtype=np.float64) + 1.0) / 2.0


def read_nifti(path: Path):
    """(3D float32 array, nibabel image) by ``medsyn_cli.data.readers.read_volume``; InputError
    naming the file if it is not a readable 3D volume."""
    from medsyn_cli.data.readers import read_volume

    return read_volume(path)


def axial_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs inferior-superior (axial slices are taken across it); 2 if unknown."""
    import nibabel as nib

    codes = nib.aff2axcodes(affine)
    return next((i for i, c in enumerate(codes) if c in ("S", "I")), 2)


def unit_range(volume: np.ndarray) -> np.ndarray:
    """A volume's values in [0, 1]: its 0.5-99.5 percentile range, clipped (robust to outliers)."""
    from medsyn_cli.data.intensity import apply_mapping, percentile_mapping

    return (apply_mapping(volume, percentile_mapping(volume)).astype(np.float64) + 1.0) / 2.0


def volume_edges(volume: np.ndarray, affine: np.ndarray, method: str, sigma: float | None) -> np.ndarray:
    """Edge volume (float32, the input's voxel order), computed axial slice by axial slice on the
    volume mapped to [0, 1]; the axial axis is the voxel axis the affine sends along S-I."""
    unit = unit_range(volume)
    axis = axial_axis(affine)
    planes = [edge_map(plane, method, sigma) for plane in np.moveaxis(unit, axis, 0)]
    return np.moveaxis(np.stack(planes), 0, axis).astype(np.float32)


# -- writing -----------------------------------------------------------------------------------
def write_png(array: np.ndarray, tmp: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(tmp, format="PNG")


def write_nifti_like(edges: np.ndarray, source_img: Any, target: Path, tmp: Path) -> None:
    """Write ``edges`` with the source's affine and a copy of its header, as float32, to ``tmp``
    (gzip-compressed when ``target`` ends in .gz; the name is the target's, not the temporary one's)."""
    import nibabel as nib

    header = source_img.header.copy()
    header.set_data_dtype(np.float32)
    out = nib.Nifti1Image(edges.astype(np.float32), source_img.affine, header)
    out.header.set_slope_inter(1.0, 0.0)  # values are stored as they are, not rescaled
    out.header["cal_min"], out.header["cal_max"] = 0.0, 0.0  # the source's display range no longer applies
    data = out.to_bytes()
    tmp.write_bytes(gzip.compress(data) if target.name.lower().endswith(".gz") else data)


# -- statistics --------------------------------------------------------------------------------
@dataclass
class SetEdges:
    """The per-pixel quantities of one image set that the statistics are computed from."""

    images: np.ndarray  # (N, H, W) grey in [0, 1]
    gradients: np.ndarray  # (N, H, W) Sobel gradient magnitude
    responses: np.ndarray  # (N, H, W) edge_map output of the chosen method


def compute_set(images: np.ndarray, method: str, sigma: float) -> SetEdges:
    return SetEdges(
        images=images,
        gradients=np.stack([gradient_magnitude(im, sigma) for im in images]),
        responses=np.stack([edge_map(im, method, sigma) for im in images]),
    )


def edge_threshold(real: SetEdges, method: str) -> float | None:
    """The strength above which a pixel is an edge: Otsu's threshold of the REAL set's responses
    (applied to both sets, so they are judged alike); None for canny, whose map is already binary."""
    from skimage.filters import threshold_otsu

    if method == "canny":
        return None
    values = real.responses.ravel()
    return float(threshold_otsu(values)) if np.ptp(values) > 0 else float(values.max())


def binary_edges(s: SetEdges, threshold: float | None) -> np.ndarray:
    return s.responses > (0.5 if threshold is None else threshold)


#: Gaussian sigma (pixels) applied before the background threshold, so noise does not move the mask.
BACKGROUND_SMOOTHING = 2.0


def background_mask(image: np.ndarray, erode: int) -> np.ndarray:
    """The dark surroundings of the body: pixels of the image smoothed with ``BACKGROUND_SMOOTHING``
    below its Otsu threshold that are connected to the image border (dark regions inside the body,
    such as the lungs, are anatomy, not background), eroded by ``erode`` pixels so the body
    outline's own edges are not counted as background noise. Smoothing first makes the mask the
    same for an image and a noisy copy of it, so noise shows as edges inside the mask."""
    from skimage.filters import threshold_otsu
    from skimage.segmentation import clear_border

    if np.ptp(image) == 0:
        return np.zeros(image.shape, dtype=bool)
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), BACKGROUND_SMOOTHING)
    dark = smooth < threshold_otsu(smooth)
    mask = dark & ~clear_border(dark)  # only dark components that touch the border
    return ndimage.binary_erosion(mask, iterations=erode) if erode > 0 else mask


def set_statistics(s: SetEdges, edges: np.ndarray, *, bin_edges: np.ndarray, min_size: int,
                   erode: int) -> dict[str, Any]:
    """Edge density, background edge density, connected components and the gradient distribution."""
    eight = np.ones((3, 3), dtype=bool)  # 8-connectivity: diagonal steps continue a line
    densities, background, background_grad, components, small = [], [], [], [], []
    for image, grad, e in zip(s.images, s.gradients, edges):
        densities.append(e.mean())
        mask = background_mask(image, erode)
        if mask.any():
            background.append(e[mask].mean())
            background_grad.append(grad[mask].mean())
        labels, n = ndimage.label(e, structure=eight)
        sizes = np.bincount(labels.ravel())[1:]
        components.append(n)
        small.append(int((sizes < min_size).sum()))
    grads = s.gradients.ravel()
    hist, _ = np.histogram(np.clip(grads, bin_edges[0], bin_edges[-1]), bins=bin_edges)
    return {
        "n_images": int(len(s.images)),
        "edge_density": float(np.mean(densities)),
        "background_edge_density": float(np.mean(background)) if background else None,
        "background_gradient_mean": float(np.mean(background_grad)) if background_grad else None,
        "components_per_image": float(np.mean(components)),
        "small_components_per_image": float(np.mean(small)),
        "small_component_fraction": float(np.sum(small) / max(1, np.sum(components))),
        "gradient": {
            "mean": float(grads.mean()),
            "p50": float(np.percentile(grads, 50)),
            "p90": float(np.percentile(grads, 90)),
            "p99": float(np.percentile(grads, 99)),
            "histogram": hist.tolist(),
        },
    }


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if values.size <= MAX_WASSERSTEIN_VALUES:
        return values
    return rng.choice(values, MAX_WASSERSTEIN_VALUES, replace=False)


def distribution_distances(real: np.ndarray, fake: np.ndarray, bin_edges: np.ndarray) -> dict[str, float]:
    """Distances between two gradient-magnitude samples: Wasserstein-1 on the values, and the
    Jensen-Shannon divergence (base 2, in [0, 1]) and KL(real || fake) of their shared histograms."""
    rng = np.random.default_rng(0)  # a fixed sample, so the same inputs give the same number
    w = stats.wasserstein_distance(_subsample(real.ravel(), rng), _subsample(fake.ravel(), rng))
    eps = 1e-10  # empty bins would make KL infinite
    p = np.histogram(np.clip(real, bin_edges[0], bin_edges[-1]), bins=bin_edges)[0] + eps
    q = np.histogram(np.clip(fake, bin_edges[0], bin_edges[-1]), bins=bin_edges)[0] + eps
    return {
        "wasserstein": float(w),
        "js_divergence": float(jensenshannon(p, q, base=2) ** 2),
        "kl_divergence": float(stats.entropy(p, q)),
    }


def edge_statistics(real_images: np.ndarray, fake_images: np.ndarray, *, method: str = "sobel",
                    sigma: float | None = None, bins: int = 64, min_size: int = 8,
                    erode: int = 2) -> dict[str, Any]:
    """Compare the edges of two sets of (N, H, W) grey images in [0, 1]; one JSON-ready dict."""
    sigma = check_method(method, sigma)
    real = compute_set(real_images, method, sigma)
    fake = compute_set(fake_images, method, sigma)
    threshold = edge_threshold(real, method)
    top = float(max(real.gradients.max(), fake.gradients.max(), 1e-12))
    bin_edges = np.linspace(0.0, top, bins + 1)
    return {
        "method": method,
        "sigma": sigma,
        "res": [int(real_images.shape[1]), int(real_images.shape[2])],
        "edge_threshold": threshold,
        "min_component_size": min_size,
        "background_erosion": erode,
        "histogram_bin_edges": bin_edges.tolist(),
        "real": set_statistics(real, binary_edges(real, threshold), bin_edges=bin_edges,
                               min_size=min_size, erode=erode),
        "fake": set_statistics(fake, binary_edges(fake, threshold), bin_edges=bin_edges,
                               min_size=min_size, erode=erode),
        "distance": distribution_distances(real.gradients, fake.gradients, bin_edges),
    }


# -- inputs and outputs ------------------------------------------------------------------------
def collect_inputs(items: list[str], *, volumes: bool = True) -> list[tuple[Path, Path]]:
    """(file, output-relative name) for every image (and NIfTI volume if ``volumes``) in ``items``.

    A file stands for itself (its name); a folder for the supported files below it, in sorted
    order, named by their path relative to the folder (hidden files skipped).
    """
    def supported(p: Path) -> bool:
        return is_image(p) or (volumes and is_volume(p))

    found: list[tuple[Path, Path]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and supported(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                kinds = "images or NIfTI volumes" if volumes else "images"
                raise InputError(f"no {kinds} found in this folder", path=path,
                                 hint=f"supported: {_supported_hint(volumes)}")
            found += [(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            if not supported(path):
                raise InputError("not a supported file type", path=path,
                                 hint=f"supported: {_supported_hint(volumes)}")
            found.append((path, Path(path.name)))
        else:
            raise InputError("no such file or directory", path=path)
    return found


def output_name(rel: Path, method: str, overlay: bool) -> Path:
    """``scan.png`` -> ``scan_sobel.png`` (``scan_sobel_overlay.png``); ``ct.nii.gz`` -> ``ct_sobel.nii.gz``."""
    name = rel.name
    if is_volume(rel):
        suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else ".nii"
        return rel.with_name(f"{name[: -len(suffix)]}_{method}{suffix}")
    tag = f"_{method}_overlay" if overlay else f"_{method}"
    return rel.with_name(f"{rel.stem}{tag}.png")


def load_grey_set(files: list[Path], res: int) -> np.ndarray:
    """(N, res, res) grey images in [0, 1], each brought to the square the way training data is
    (``medsyn_cli.data.geometry.to_square``: aspect kept, padded with black)."""
    from medsyn_cli.data.geometry import to_square
    from medsyn_cli.data.readers import read_image

    out = np.empty((len(files), res, res), dtype=np.float64)
    for i, path in enumerate(files):
        image, _ = read_image(path)  # (1, H, W) grey in [-1, 1]
        out[i] = (to_square(image, res)[0][0] + 1.0) / 2.0
    return out


def image_size(path: Path) -> int:
    """The longer side of an image file, in pixels."""
    from medsyn_cli.data.readers import read_image

    image, _ = read_image(path)
    return int(max(image.shape[-2:]))
