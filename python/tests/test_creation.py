"""Array creation against NumPy."""
import numpy as np
import pytest

import kiln as kn
from utils import NP_DTYPES, assert_close


@pytest.mark.parametrize("dtype", [kn.float32, kn.int32, kn.bool_, kn.float16, kn.uint8, kn.complex64])
def test_zeros_ones_full(rng, dtype):
    shape = tuple(int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4))))
    assert_close(kn.zeros(shape, dtype), np.zeros(shape, NP_DTYPES[dtype]), dtype=dtype)
    assert_close(kn.ones(shape, dtype=dtype), np.ones(shape, NP_DTYPES[dtype]), dtype=dtype)
    assert_close(kn.full(shape, 3, dtype), np.full(shape, 3, NP_DTYPES[dtype]), dtype=dtype)


def test_full_and_like(rng):
    v = rng.uniform(-5, 5, size=(4,)).astype(np.float32)
    assert_close(kn.full((3, 4), v), np.broadcast_to(v, (3, 4)), dtype=kn.float32)
    assert_close(kn.full(5, 2.5), np.full(5, 2.5), dtype=kn.float64)  # a Python float is float64, as in NumPy
    assert kn.zeros(3).shape == (3,)
    a = kn.array(rng.uniform(size=(2, 3)).astype(np.float16))
    assert_close(kn.zeros_like(a), np.zeros((2, 3), np.float16), dtype=kn.float16)
    assert_close(kn.ones_like(a), np.ones((2, 3), np.float16), dtype=kn.float16)
    assert_close(kn.full_like(a, 7.0), np.full((2, 3), 7, np.float16), dtype=kn.float16)


def test_arange_linspace(rng):
    start, stop = sorted(int(v) for v in rng.integers(-20, 20, size=2))
    step = int(rng.integers(1, 4))
    assert_close(kn.arange(stop - start), np.arange(stop - start), dtype=kn.int32)
    assert_close(kn.arange(start, stop, step), np.arange(start, stop, step), dtype=kn.int32)
    assert_close(kn.arange(stop, start, -step), np.arange(stop, start, -step), dtype=kn.int32)
    assert_close(kn.arange(0.5, 3.0, 0.25), np.arange(0.5, 3.0, 0.25), dtype=kn.float32)
    assert_close(kn.arange(5.0), np.arange(5.0), dtype=kn.float32)
    assert_close(kn.arange(1, 10, 2, kn.float64), np.arange(1, 10, 2, np.float64), dtype=kn.float64)
    assert_close(kn.linspace(-1, 2, 7), np.linspace(-1, 2, 7), dtype=kn.float32)
    assert_close(kn.linspace(0, 1), np.linspace(0, 1), dtype=kn.float32)


def test_eye_identity_tri():
    for n, m, k in ((3, None, 0), (3, 5, 1), (4, 2, -1)):
        assert_close(kn.eye(n, m, k), np.eye(n, m, k), dtype=kn.float32)
        assert_close(kn.tri(n, m, k, kn.int32), np.tri(n, m, k, np.int32), dtype=kn.int32)
    assert_close(kn.identity(4, kn.float64), np.identity(4), dtype=kn.float64)


def test_creation_errors():
    with pytest.raises(ValueError):
        kn.zeros((2, -1))
    with pytest.raises(ValueError):
        kn.full((2, 2), [1, 2, 3])
