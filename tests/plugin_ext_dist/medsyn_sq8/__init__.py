"""A third-party medsyn plugin: the ``.sq8`` format (b"SQ8", height and width as uint16, then the
8-bit grey pixels) and the ``histgap`` metric (L1 distance between the grey histograms of the sides)."""

from pathlib import Path

import numpy as np

from medsyn_cli.errors import InputError
from medsyn_cli.formats import FileFormat
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.metrics.registry import Metric, MetricOption

MAGIC = b"SQ8"


def write_sq8(image: np.ndarray, path: Path) -> None:
    """(1, H, W) in [-1, 1] -> .sq8."""
    pixels = np.clip(np.rint((np.asarray(image[0], np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)
    h, w = pixels.shape
    Path(path).write_bytes(MAGIC + np.array([h, w], "<u2").tobytes() + pixels.tobytes())


def read_sq8(path: Path):
    data = Path(path).read_bytes()
    if data[:3] != MAGIC or len(data) < 7:
        raise InputError("not an .sq8 file", path=path)
    h, w = np.frombuffer(data[3:7], "<u2")
    pixels = np.frombuffer(data[7:], np.uint8)
    if pixels.size != h * w:
        raise InputError(f"truncated .sq8 file ({pixels.size} of {h * w} pixels)", path=path)
    image = pixels.reshape(1, h, w).astype(np.float32) / 127.5 - 1.0
    return [(Path(path).name, image, {"kind": "uint8"})]


def _histgap(inputs, options):
    bins = options["histgap_bins"]

    def histogram(side):
        counts = sum(np.histogram(img[..., 0], bins=bins, range=(0, 256))[0] for img in inputs.images(side))
        return counts / counts.sum()

    return {"metrics": {"histgap": float(np.abs(histogram("real") - histogram("fake")).sum())},
            "settings": {"histgap": {"bins": bins}}}


@hookimpl
def register_formats(register):
    register(FileFormat("sq8", (".sq8",), "SQ8 raw grey images", read_sq8, write=write_sq8))


@hookimpl
def register_metrics(register):
    register(Metric(name="histgap", summary="L1 distance between the grey-level histograms of REAL and FAKE.",
                    needs="images", compute=_histgap,
                    options=(MetricOption("histgap_bins", 16, "histgap: number of histogram bins.",
                                          flag="--histgap-bins", min=2),),
                    examples=("medsyn eval histgap real/ fake/ --histgap-bins 32",)))
