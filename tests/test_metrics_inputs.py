"""What a side of `medsyn eval` may be, how its pixels are read, and the preprocessing parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsyn_cli.errors import InputError
from medsyn_cli.metrics.inputs import (array_to_uint8, channel_count, iter_images, load_item,
                                       resolve_input)


def write_png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


# -- arrays -------------------------------------------------------------------------------------

def test_array_layouts_become_nhwc_uint8():
    nhw = np.zeros((2, 5, 7), dtype=np.uint8)
    assert array_to_uint8(nhw, "x").shape == (2, 5, 7, 1)
    nchw = np.zeros((2, 3, 5, 7), dtype=np.uint8)
    assert array_to_uint8(nchw, "x").shape == (2, 5, 7, 3)
    nhwc = np.zeros((2, 5, 7, 3), dtype=np.uint8)
    assert array_to_uint8(nhwc, "x").shape == (2, 5, 7, 3)
    assert array_to_uint8(np.zeros((5, 7), dtype=np.uint8), "x").shape == (1, 5, 7, 1)
    with pytest.raises(InputError, match="channel"):
        array_to_uint8(np.zeros((2, 4, 5, 5), dtype=np.uint8), "x")


def test_float_ranges_map_to_uint8_by_the_documented_rule():
    signed = np.array([[-1.0, 0.0, 1.0, 0.5]], dtype=np.float32)  # has negatives: [-1, 1]
    assert array_to_uint8(signed, "x")[0, 0, :, 0].tolist() == [0, 128, 255, 191]  # (x+1)*127.5, rounded
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)  # no negatives: [0, 1]
    assert array_to_uint8(unit, "x")[0, 0, :, 0].tolist() == [0, 128, 255]
    assert array_to_uint8(unit, "x", "signed")[0, 0, :, 0].tolist() == [128, 191, 255]
    with pytest.raises(InputError, match="outside"):
        array_to_uint8(np.array([[0.0, 3.0]]), "x")
    with pytest.raises(InputError, match="dtype"):
        array_to_uint8(np.zeros((2, 4, 4), dtype=np.int16), "x")
    with pytest.raises(InputError, match="NaN"):
        array_to_uint8(np.array([[0.0, np.nan]]), "x")


def test_npy_and_npz_stacks_are_read(tmp_path):
    stack = np.linspace(-1, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 1, 8, 8)
    np.save(tmp_path / "s.npy", stack)
    np.savez(tmp_path / "s.npz", images=stack, labels=np.zeros(3))
    for name in ("s.npy", "s.npz"):
        inp = resolve_input(str(tmp_path / name))
        assert len(inp) == 3 and inp.kinds == {"array"}
        first = load_item(next(iter_images(inp))[1])
        assert first.shape == (8, 8, 1) and first.dtype == np.uint8 and first[0, 0, 0] == 0
    np.savez(tmp_path / "ambiguous.npz", a=stack, b=stack)
    with pytest.raises(InputError, match="which holds the images"):
        resolve_input(str(tmp_path / "ambiguous.npz"))


# -- folders, stdin, errors -------------------------------------------------------------------

def test_folder_lists_images_sorted_any_case_and_not_recursively(tmp_path):
    img = np.full((6, 6), 100, dtype=np.uint8)
    write_png(tmp_path / "b.png", img)
    Image.fromarray(img).save(tmp_path / "a.JPG", format="JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "c.png", img)
    inp = resolve_input(str(tmp_path))
    assert [Path(s).name for s, _ in iter_images(inp)] == ["a.JPG", "b.png"]


def test_stdin_paths_are_read_one_per_line(tmp_path):
    a = write_png(tmp_path / "a.png", np.zeros((4, 4), dtype=np.uint8))
    b = write_png(tmp_path / "b.png", np.zeros((4, 4), dtype=np.uint8))
    inp = resolve_input("-", stdin_lines=[str(a), "", f"  {b}  "])
    assert len(inp) == 2


def test_empty_side_and_missing_path_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="empty"):
        resolve_input(str(tmp_path), name="FAKE")
    with pytest.raises(InputError, match="no such file"):
        resolve_input(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="empty"):
        resolve_input("-", stdin_lines=[])


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    inp = resolve_input(str(tmp_path))
    with pytest.raises(InputError) as err:
        load_item(next(iter_images(inp))[1])
    assert "broken.png" in str(err.value) and "cannot read image" in str(err.value)


def test_content_digest_follows_pixels_not_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    write_png(a / "x.png", img)
    write_png(b / "renamed.png", img)
    assert resolve_input(str(a)).content_digest() == resolve_input(str(b)).content_digest()
    write_png(b / "renamed.png", img[::-1].copy())
    assert resolve_input(str(a)).content_digest() != resolve_input(str(b)).content_digest()


def test_channel_count_sees_grey_stored_as_rgb():
    grey = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1), 3, axis=2)
    assert channel_count(grey) == 1
    colour = grey.copy()
    colour[0, 0, 0] = 255
    assert channel_count(colour) == 3
    assert channel_count(np.zeros((4, 4, 1), dtype=np.uint8)) == 1


# -- preprocessing parity -----------------------------------------------------------------------

def test_preprocessing_equals_pytorch_fid_input_pipeline(tmp_path):
    """ToTensor, then pytorch-fid's in-network resize and scaling, on a grey and a colour image."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torchvision.transforms import ToTensor

    from medsyn_cli.metrics.features import preprocess

    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 256, (37, 53), dtype=np.uint8), rng.integers(0, 256, (310, 301, 3), dtype=np.uint8)):
        path = write_png(tmp_path / f"img{arr.ndim}.png", arr)
        pil = Image.open(path).convert("RGB")
        ref = F.interpolate(ToTensor()(pil)[None], size=(299, 299), mode="bilinear", align_corners=False)
        ref = 2 * ref - 1
        ours = preprocess(load_item(path) if arr.ndim == 3 else arr[..., None])
        assert torch.equal(ours, ref[0])  # bit-identical


def test_preprocessing_parity_holds_on_one_thread(tmp_path):
    """Interpolation kernels differ by thread count and memory layout; parity must not."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        test_preprocessing_equals_pytorch_fid_input_pipeline(tmp_path)
    finally:
        torch.set_num_threads(before)
