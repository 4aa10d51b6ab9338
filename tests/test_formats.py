"""One format registry: the built-in formats come through ``register_formats`` and every command
(training data, eval inputs, translate, edges) asks it what a file is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsyn_cli import edges, formats, translation
from medsyn_cli.data import readers
from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.metrics.inputs import resolve_input
from medsyn_cli.plugins import pm


def test_builtin_formats_are_a_default_plugin():
    found = formats.all_formats()
    assert list(found) == ["image", "nifti", "dicom", "array"]
    assert {f.plugin for f in found.values()} == {"medsyn_cli.data.builtin_formats"}


@pytest.mark.parametrize("name,kind", [("a.PNG", "image"), ("b.webp", "image"), ("c.tif", "image"),
                                       ("d.nii.gz", "nifti"), ("e.dcm", "dicom"), ("f.npz", "array"),
                                       ("notes.txt", None), (".hidden.png", None)])
def test_the_commands_agree_on_what_a_file_is(tmp_path, name, kind):
    path = tmp_path / name
    assert readers.file_kind(path) == kind
    assert edges.is_image(path) == (kind == "image") and edges.is_volume(path) == (kind == "nifti")
    if kind in ("image", "nifti"):
        assert translation.kind_of(path) == {"image": "image", "nifti": "volume"}[kind]
    else:
        with pytest.raises(InputError, match="translate reads 2D images and NIfTI volumes"):
            translation.kind_of(path)


def test_dicom_without_a_suffix_is_sniffed(tmp_path):
    path = tmp_path / "IM0001"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    assert readers.file_kind(path) == "dicom"


class _Grey16:
    """A throwaway format: '.g16' files hold one 16x16 grey image of a constant value (the first byte)."""

    @hookimpl
    def register_formats(self, register):
        def read(path: Path):
            value = path.read_bytes()[0] / 127.5 - 1.0
            return [(path.name, np.full((1, 16, 16), value, np.float32), {"kind": "uint8"})]

        register(formats.FileFormat("g16", (".g16",), "grey constants", read))


@pytest.fixture
def grey16():
    pm.register(_Grey16(), name="grey16")
    yield
    pm.unregister(name="grey16")


def test_a_registered_format_is_read_by_training_lists_and_eval(grey16, tmp_path):
    for i, value in enumerate((0, 255)):
        (tmp_path / f"{i}.g16").write_bytes(bytes([value]))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    assert [p.name for p in readers.list_inputs(tmp_path)] == ["0.g16", "1.g16", "x.png"]
    side = resolve_input(str(tmp_path))
    assert len(side) == 3 and side.kinds == {"g16", "images"}
    arrays = [p.images for p in side.parts if hasattr(p, "images")]
    assert [int(a.max()) for a in arrays] == [0, 255]


def test_a_format_dropped_with_its_plugin(grey16, tmp_path):
    assert readers.file_kind(tmp_path / "a.g16") == "g16"
    pm.unregister(name="grey16")
    try:
        assert readers.file_kind(tmp_path / "a.g16") is None
    finally:
        pm.register(_Grey16(), name="grey16")
