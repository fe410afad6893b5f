"""Reductions, arg-reductions, softmax and scans against NumPy."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array

REDUCTIONS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "mean": np.mean, "all": np.all,
              "any": np.any}


def random_axes(rng, ndim):
    choice = rng.integers(0, 3)
    if choice == 0:
        return None
    if choice == 1:
        return int(rng.integers(-ndim, ndim))
    k = int(rng.integers(1, ndim + 1))
    return [int(a) for a in rng.permutation(ndim)[:k]]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(rng, device, name):
    for _ in range(10):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        x = random_array(rng, shape, low=0.5, high=1.5)
        if name in ("all", "any"):
            x = x > 1.0
        axis = random_axes(rng, len(shape))
        keepdims = bool(rng.integers(0, 2))
        ref_axis = tuple(axis) if isinstance(axis, list) else axis
        out = getattr(kn, name)(kn.array(x), axis=axis, keepdims=keepdims, stream=device)
        assert_close(out, REDUCTIONS[name](x.astype(np.float64) if x.dtype != np.bool_ else x, axis=ref_axis,
                                           keepdims=keepdims), rtol=1e-5)
        assert_close(getattr(kn.array(x), name)(axis, keepdims), out.__array__())  # the method


def test_reduction_dtypes(rng):
    i8 = random_array(rng, (10,), np.int8, low=-5, high=5)
    assert kn.sum(i8).dtype == kn.int32
    assert kn.sum(i8.astype(np.uint8)).dtype == kn.uint32
    assert kn.sum(i8.astype(np.int64)).dtype == kn.int64
    assert kn.max(i8).dtype == kn.int8
    assert kn.mean(i8).dtype == kn.float32
    assert kn.sum(kn.array(i8).astype(kn.float16)).dtype == kn.float16
    assert_close(kn.sum(i8), np.sum(i8.astype(np.int32)))


def test_var_std_logsumexp(rng):
    x = random_array(rng, (5, 6, 7)).astype(np.float64)
    for axis in (None, 1, [0, 2]):
        ref_axis = tuple(axis) if isinstance(axis, list) else axis
        for ddof in (0, 1):
            assert_close(kn.var(x, axis=axis, ddof=ddof), np.var(x, axis=ref_axis, ddof=ddof), rtol=1e-10)
            assert_close(kn.std(x, axis, True, ddof), np.std(x, axis=ref_axis, ddof=ddof, keepdims=True), rtol=1e-10)
        m = np.max(x, axis=ref_axis, keepdims=True)
        ref = np.log(np.sum(np.exp(x - m), axis=ref_axis, keepdims=True)) + m
        assert_close(kn.logsumexp(x, axis=axis, keepdims=True), ref, rtol=1e-10)


def test_arg_reductions(rng):
    x = random_array(rng, (4, 5, 6))
    for axis in (None, 0, -1):
        for keepdims in (False, True):
            for name in ("argmax", "argmin"):
                out = getattr(kn, name)(x, axis=axis, keepdims=keepdims)
                assert out.dtype == kn.uint32
                ref = getattr(np, name)(x, axis=axis, keepdims=keepdims)
                assert_close(out, ref)


def test_softmax(rng):
    x = random_array(rng, (3, 4, 5), low=-5, high=5).astype(np.float64)
    for axis in (None, 0, [1, 2]):
        ref_axis = -1 if axis is None else (tuple(axis) if isinstance(axis, list) else axis)
        e = np.exp(x - x.max(axis=ref_axis, keepdims=True))
        ref = e / e.sum(axis=ref_axis, keepdims=True)
        assert_close(kn.softmax(x, axis=axis), ref, rtol=1e-10)
        assert_close(kn.log_softmax(x, axis=axis), np.log(ref), rtol=1e-10, atol=1e-12)


def test_scans(rng):
    x = random_array(rng, (4, 6), low=0.5, high=1.5)
    for axis in (None, 0, 1, -1):
        flat = x.reshape(-1) if axis is None else x
        ax = 0 if axis is None else axis
        assert_close(kn.cumsum(x, axis=axis), np.cumsum(flat, axis=ax), rtol=1e-5)
        assert_close(kn.cumprod(x, axis=axis), np.cumprod(flat, axis=ax), rtol=1e-5)
        assert_close(kn.cummax(x, axis=axis), np.maximum.accumulate(flat, axis=ax))
        assert_close(kn.cummin(x, axis=axis), np.minimum.accumulate(flat, axis=ax))
    rev = np.flip(np.cumsum(np.flip(x, 1), axis=1), 1)
    assert_close(kn.cumsum(x, axis=1, reverse=True), rev, rtol=1e-5)
    exclusive = np.concatenate([np.zeros((4, 1), np.float32), np.cumsum(x, axis=1)[:, :-1]], axis=1)
    assert_close(kn.cumsum(x, axis=1, inclusive=False), exclusive, rtol=1e-5, atol=1e-6)


def test_reduction_errors():
    x = kn.zeros((2, 3))
    with pytest.raises(IndexError, match=r"^\[sum\]"):
        kn.sum(x, axis=2)
    with pytest.raises(ValueError, match="sum"):
        kn.sum(x, axis=[0, 0])
