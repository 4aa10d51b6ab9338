"""Synthetic brain-MR and chest/abdomen-CT slices: the embedded default data for the demo and fast tests.

Everything is drawn with NumPy/SciPy, vectorised over the batch, deterministic by ``seed``.

* :func:`brain` gives T1-contrast-like axial brain slices (scalp fat, dark skull ring, CSF, folded
  grey/white matter with smooth texture and sulci, lateral ventricles with left/right asymmetry, deep grey
  nuclei), the same brains with a tumor inserted (irregular perturbed-radius lesion with a bright
  enhancing rim, a dark necrotic core and darker surrounding edema, always inside the brain) and the
  whole-tumor masks. ``tumor[i]`` equals ``normal[i]`` exactly outside ``masks[i]``.
* :func:`ct` gives CT-like axial slices rendered in Hounsfield units (air, subcutaneous fat, muscle,
  lungs with vessels or liver/kidneys/bowel gas depending on the slice level, vertebra with cortical rim,
  ribs) and shown through the window :data:`CT_WINDOW`.

All outputs are float32 (n, 1, res, res) in [-1, 1].
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsyn_cli.data.intensity import apply_mapping, ct_window_mapping

#: The window the CT phantoms are shown through (covers air, lungs, soft tissue; bone saturates).
CT_WINDOW = ct_window_mapping(center=-300.0, width=1400.0)
#: How the brain phantoms' [0, 1] signal became [-1, 1].
BRAIN_MAPPING = {"kind": "range", "lo_value": 0.0, "hi_value": 1.0}


def _grid(res: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1]; y grows downwards (image rows)."""
    c = (np.arange(res, dtype=np.float32) + 0.5) / res * 2.0 - 1.0
    y, x = np.meshgrid(c, c, indexing="ij")
    return x[None], y[None]


def _col(values: np.ndarray) -> np.ndarray:
    """A per-sample parameter shaped to broadcast against (n, res, res)."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def _smooth_noise(rng: np.random.Generator, n: int, res: int, scale: float) -> np.ndarray:
    """Smooth zero-mean unit-std random fields; ``scale`` is the correlation length as a fraction of res."""
    field = rng.standard_normal((n, res, res)).astype(np.float32)
    field = ndimage.gaussian_filter(field, sigma=(0, scale * res, scale * res), mode="wrap")
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-8
    return field


def _wobble(rng: np.random.Generator, n: int, angle: np.ndarray, amplitude: float,
            harmonics: range) -> np.ndarray:
    """1 + a random sum of angular harmonics: turns a circle into an irregular closed outline."""
    out = np.ones_like(angle)
    for k in harmonics:
        amp = _col(rng.uniform(0, amplitude / k ** 0.5, n))
        phase = _col(rng.uniform(0, 2 * np.pi, n))
        out = out + amp * np.cos(k * angle + phase)
    return out


def _ellipse(x, y, cx, cy, ax, ay, theta=0.0):
    """Normalised elliptic radius (< 1 inside) for per-sample centres, semi-axes and rotation."""
    dx, dy = x - cx, y - cy
    c, s = np.cos(theta), np.sin(theta)
    u, v = dx * c + dy * s, -dx * s + dy * c
    return np.sqrt((u / ax) ** 2 + (v / ay) ** 2)


def _blur(img: np.ndarray, res: int) -> np.ndarray:
    """A slight blur so edges look like a scanner's point spread, not aliased steps."""
    sigma = max(0.5, res / 200.0)
    return ndimage.gaussian_filter(img, sigma=(0, sigma, sigma))


# ------------------------------------------------------------------------------------------ brain


def _brain_normal(rng, n, res, x, y):
    """Signal in [0, 1] for n normal brains, plus the brain region and head geometry."""
    cx, cy = _col(rng.uniform(-0.03, 0.03, n)), _col(rng.uniform(-0.03, 0.03, n))
    a, b = _col(rng.uniform(0.70, 0.80, n)), _col(rng.uniform(0.84, 0.93, n))
    theta = _col(rng.uniform(-0.08, 0.08, n))
    r = _ellipse(x, y, cx, cy, a, b, theta)
    angle = np.arctan2(y - cy, x - cx)
    r = r / _wobble(rng, n, angle, 0.025, range(2, 5))

    img = np.zeros((n, res, res), np.float32)
    scalp_edge = 0.93 + 0.02 * _smooth_noise(rng, n, res, 0.08)
    img = np.where(r < 1.0, 0.78, img)                      # scalp fat, bright on T1
    img = np.where(r < scalp_edge, 0.08, img)                # skull, dark
    img = np.where(r < 0.86, 0.22, img)                      # CSF rim
    brain = r < 0.82

    folds = _smooth_noise(rng, n, res, 0.035)
    cortex = 0.10 + 0.05 * np.tanh(folds)                    # cortical thickness varies along the folds
    white = r < 0.82 - cortex
    img = np.where(brain, 0.47, img)                         # grey matter
    img = np.where(white, 0.72, img)                         # white matter
    sulci = (np.abs(_smooth_noise(rng, n, res, 0.03)) < 0.12) & (r > 0.62) & brain
    img = np.where(sulci, 0.25, img)

    # deep grey nuclei and the two lateral ventricles, each side drawn on its own (asymmetry)
    size = _col(rng.uniform(0.45, 1.2, n))
    for side in (-1.0, 1.0):
        nx = cx + side * _col(rng.uniform(0.20, 0.26, n))
        nuclei = _ellipse(x, y, nx, cy + 0.05, _col(rng.uniform(0.08, 0.11, n)),
                          _col(rng.uniform(0.13, 0.17, n)), side * 0.3) < 1.0
        img = np.where(nuclei & white, 0.55, img)
        vx = cx + side * _col(rng.uniform(0.07, 0.12, n))
        vy = cy + _col(rng.uniform(-0.06, 0.02, n))
        ventricle = _ellipse(x, y, vx, vy, size * _col(rng.uniform(0.035, 0.065, n)),
                             size * _col(rng.uniform(0.16, 0.24, n)), -side * _col(rng.uniform(0.05, 0.3, n)))
        img = np.where((ventricle < 1.0) & brain, 0.14, img)

    texture = 1.0 + 0.05 * _smooth_noise(rng, n, res, 0.06) + 0.02 * _smooth_noise(rng, n, res, 0.01)
    img = np.where(r < 1.0, img * texture, img)
    return img, brain, (cx, cy, a, b)


def _tumor(rng, n, res, x, y, head):
    """Whole-tumor region (edema included), its signal change, for one lesion per brain."""
    cx, cy, a, b = head
    direction = _col(rng.uniform(0, 2 * np.pi, n))
    reach = _col(rng.uniform(0.0, 0.5, n))
    tx = cx + reach * a * np.cos(direction)
    ty = cy + reach * b * np.sin(direction)
    radius = _col(rng.uniform(0.08, 0.2, n))
    angle = np.arctan2(y - ty, x - tx)
    d = np.sqrt((x - tx) ** 2 + (y - ty) ** 2) / radius
    d = d / _wobble(rng, n, angle, 0.18, range(2, 7)) + 0.12 * _smooth_noise(rng, n, res, 0.02)
    core = _col(rng.uniform(0.35, 0.7, n))
    edema_reach = _col(rng.uniform(1.25, 1.6, n))
    return d, core, edema_reach


def brain(n: int, res: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(normal, tumor, masks)``: n brain slices, the same slices with a tumor, whole-tumor masks.

    Images are float32 (n, 1, res, res) in [-1, 1]; masks float32 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    x, y = _grid(res)
    base, brain_region, head = _brain_normal(rng, n, res, x, y)
    d, core, edema_reach = _tumor(rng, n, res, x, y, head)

    lesion = base.copy()
    ramp = np.clip((d - 1.0) / (edema_reach - 1.0), 0.0, 1.0)   # edema fades smoothly into the brain
    lesion = np.where(d < edema_reach, base * (0.78 + 0.22 * ramp), lesion)
    rim = 0.93 + 0.05 * _smooth_noise(rng, n, res, 0.015)
    lesion = np.where(d < 1.0, rim, lesion)                      # enhancing rim
    necrosis = 0.2 + 0.05 * _smooth_noise(rng, n, res, 0.02)
    lesion = np.where(d < core, necrosis, lesion)                # necrotic core
    mask = (d < edema_reach) & brain_region
    lesion = np.where(brain_region, lesion, base)

    normal = _blur(base, res)
    tumor = np.where(mask, _blur(lesion, res), normal)
    to_unit = lambda im: apply_mapping(im, BRAIN_MAPPING)[:, None]  # noqa: E731
    return to_unit(normal), to_unit(tumor), mask[:, None].astype(np.float32)


# ------------------------------------------------------------------------------------------ CT


def ct(n: int, res: int = 128, seed: int = 0) -> np.ndarray:
    """n CT-like axial chest/abdomen slices, float32 (n, 1, res, res) in [-1, 1] via :data:`CT_WINDOW`."""
    rng = np.random.default_rng(seed)
    x, y = _grid(res)
    hu = np.full((n, res, res), -1000.0, np.float32)
    cx, cy = _col(rng.uniform(-0.03, 0.03, n)), _col(rng.uniform(0.0, 0.08, n))
    a, b = _col(rng.uniform(0.78, 0.92, n)), _col(rng.uniform(0.52, 0.64, n))
    r = _ellipse(x, y, cx, cy, a, b) / _wobble(rng, n, np.arctan2(y - cy, x - cx), 0.02, range(2, 5))
    level = _col(rng.uniform(0.0, 1.0, n))                       # 0 = abdomen ... 1 = upper chest
    chest = level > 0.35

    fat_edge = 0.9 - 0.05 * _col(rng.uniform(0, 1, n)) + 0.015 * _smooth_noise(rng, n, res, 0.05)
    hu = np.where(r < 1.0, -100.0, hu)                           # subcutaneous fat
    hu = np.where(r < fat_edge, 40.0, hu)                        # muscle / soft tissue

    # lungs: chest slices only, bigger higher up, with vessels
    lung_scale = np.clip((level - 0.35) / 0.65, 0, 1) * 0.5 + 0.55
    vessels = np.abs(_smooth_noise(rng, n, res, 0.012)) < 0.08
    for side in (-1.0, 1.0):
        lx = cx + side * a * _col(rng.uniform(0.38, 0.45, n))
        ly = cy - 0.05 * b
        lr = _ellipse(x, y, lx, ly, a * 0.3 * lung_scale, b * 0.68 * lung_scale, side * 0.15)
        lr = lr / _wobble(rng, n, np.arctan2(y - ly, x - lx), 0.05, range(2, 5))
        lung = (lr < 1.0) & chest
        hu = np.where(lung, np.where(vessels, -250.0, -860.0), hu)

    # abdomen: liver (patient's right = image left), kidneys, bowel gas
    abdomen = ~chest
    liver = _ellipse(x, y, cx - 0.35 * a, cy - 0.05, a * 0.42, b * 0.6, 0.3) < 1.0
    hu = np.where(liver & abdomen, 60.0, hu)
    for side in (-1.0, 1.0):
        kidney = _ellipse(x, y, cx + side * 0.32 * a, cy + 0.45 * b, a * 0.1, b * 0.2, side * 0.4) < 1.0
        hu = np.where(kidney & abdomen, 150.0, hu)
    gas = (_smooth_noise(rng, n, res, 0.03) > 1.6) & (r < 0.8) & (y < cy) & (x > cx - 0.1) & abdomen
    hu = np.where(gas, -900.0, hu)

    # spine: vertebral body (cancellous + cortical rim), canal, spinous process
    sx, sy = cx, cy + 0.62 * b
    body = _ellipse(x, y, sx, sy, 0.1 * a, 0.13 * b)
    hu = np.where(body < 1.0, 700.0, hu)
    hu = np.where(body < 0.78, 230.0, hu)
    canal = _ellipse(x, y, sx, sy + 0.22 * b, 0.045, 0.05) < 1.0
    process = _ellipse(x, y, sx, sy + 0.33 * b, 0.025, 0.07) < 1.0
    hu = np.where(process, 600.0, hu)
    hu = np.where(canal, 20.0, hu)

    # ribs: small bright ovals just inside the outline, chest only
    for k in range(10):
        ang = (k / 10.0) * 2 * np.pi + _col(rng.uniform(-0.12, 0.12, n))
        px, py = cx + 0.86 * a * np.cos(ang), cy + 0.86 * b * np.sin(ang)
        rib = _ellipse(x, y, px, py, 0.03, 0.045) < 1.0
        keep = chest & (np.sin(ang) > -0.7)                      # no ribs over the sternum
        hu = np.where(rib & keep & (r < 1.0), 650.0, hu)

    tissue = (hu > -500) & (hu < 300)
    hu = hu + np.where(tissue, 14.0 * _smooth_noise(rng, n, res, 0.02), 0.0)
    hu = hu + 8.0 * rng.standard_normal(hu.shape).astype(np.float32)  # quantum noise
    return apply_mapping(_blur(hu, res), CT_WINDOW)[:, None]
