"""CycleGAN's 50-image history pool: fills, then swaps with p = 1/2; torch RNG only; exact resume."""

import io
import random

import torch

from medsyn_cli.nn.image_pool import ImagePool


def _image(v: float) -> torch.Tensor:
    return torch.full((1, 1, 2, 2), float(v))


def test_fills_to_size_returning_each_new_image():
    pool = ImagePool(50)
    for i in range(50):
        out = pool.query(_image(i))
        assert torch.equal(out, _image(i))
    assert len(pool) == 50
    assert sorted(float(im[0, 0, 0]) for im in pool.images) == [float(i) for i in range(50)]


def test_full_pool_returns_old_or_new_with_probability_one_half():
    torch.manual_seed(0)
    pool = ImagePool(50)
    for i in range(50):
        pool.query(_image(i))
    returned_old, n = 0, 1000
    for i in range(1000, 1000 + n):
        before = {float(im[0, 0, 0]) for im in pool.images}
        v = float(pool.query(_image(i))[0, 0, 0, 0])
        after = {float(im[0, 0, 0]) for im in pool.images}
        if v == i:
            assert after == before  # kept the new one out of the pool
        else:
            returned_old += 1
            assert v in before and v not in after and i in after  # swapped: the new one took its place
        assert len(pool) == 50
    assert 0.45 < returned_old / n < 0.55


def test_randomness_comes_from_torch_global_rng_only():
    def run(torch_seed: int, python_seed: int) -> list[float]:
        torch.manual_seed(torch_seed)
        random.seed(python_seed)
        pool = ImagePool(3)
        return [float(pool.query(_image(i))[0, 0, 0, 0]) for i in range(40)]

    assert run(1, 1) == run(1, 999)  # Python's RNG plays no part
    assert run(1, 1) != run(2, 1)  # torch's does


def test_state_round_trip_through_a_weights_only_checkpoint_resumes_exactly():
    torch.manual_seed(3)
    pool = ImagePool(5)
    for i in range(8):
        pool.query(_image(i))
    buf = io.BytesIO()
    torch.save(pool.state_dict(), buf)
    buf.seek(0)
    restored = ImagePool(50)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.size == 5 and len(restored) == 5

    rng = torch.get_rng_state()
    a = [pool.query(_image(100 + i)) for i in range(20)]
    torch.set_rng_state(rng)
    b = [restored.query(_image(100 + i)) for i in range(20)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_batch_queries_keep_shape_and_size_zero_disables_the_pool():
    pool = ImagePool(4)
    batch = torch.randn(3, 1, 4, 4)
    assert pool.query(batch).shape == batch.shape
    assert torch.equal(ImagePool(0).query(batch), batch)
    assert len(ImagePool(0)) == 0


def test_empty_pool_state_round_trips():
    restored = ImagePool(7)
    restored.load_state_dict(ImagePool(7).state_dict())
    assert len(restored) == 0
