"""medsyn's data layer: readers, intensity mappings, slicing, squaring, phantoms, datasets and their cache.

nibabel, pydicom and SciPy-heavy work are imported when used.
"""

from medsyn_cli.data import phantoms
from medsyn_cli.data.datasets import load_dataset
from medsyn_cli.data.geometry import from_square, to_square
from medsyn_cli.data.intensity import apply_mapping, ct_window_mapping, invert_mapping, percentile_mapping
from medsyn_cli.data.readers import list_images, read_image, read_volume
from medsyn_cli.data.volumes import slice_volume

__all__ = [
    "apply_mapping", "ct_window_mapping", "from_square", "invert_mapping", "list_images", "load_dataset",
    "percentile_mapping", "phantoms", "read_image", "read_volume", "slice_volume", "to_square",
]
