"""Fixed-size batching never loses or reorders items, the last partial batch included."""
import numpy as np
import pytest

from gnuradio.gdm.runtime.batching import bucket_size, run_batched, run_bucketed


@pytest.mark.parametrize("n", [1, 7, 8, 9, 23])
def test_every_item_comes_back_in_order(n):
    seen = []

    def fn(a, b):
        seen.append(a.shape[0])
        return a * 2 + b

    a = np.arange(n, dtype=float)[:, None]
    b = np.ones((n, 1))
    out = run_batched(fn, {"a": a, "b": b}, 8)
    assert out.shape == (n, 1)
    np.testing.assert_array_equal(out[:, 0], np.arange(n) * 2 + 1)
    assert set(seen) == {8}  # one shape only: the partial batch was padded
    assert len(seen) == -(-n // 8)


def test_buckets():
    assert [bucket_size(n) for n in (1, 2, 3, 5, 64, 100)] == [1, 2, 4, 8, 64, 64]
    seen = []
    out = run_bucketed(lambda x: seen.append(len(x)) or x + 1, {"x": np.arange(70.0)[:, None].repeat(3, 1)})
    assert out.shape == (70, 3) and np.all(out == np.arange(70.0)[:, None] + 1)
    assert seen == [64, 8]  # the rest in the smallest bucket that holds it, not padded to 64
    seen.clear()
    run_bucketed(lambda x: seen.append(len(x)) or x, {"x": np.zeros((128, 1))})
    assert seen == [64, 64]


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        run_batched(lambda a, b: a, {"a": np.zeros(3), "b": np.zeros(4)}, 2)
