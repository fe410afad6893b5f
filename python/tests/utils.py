"""Comparison helpers shared by the tests."""
import numpy as np

import kiln as kn

# The NumPy dtype of each kiln dtype (bfloat16 has none: it is compared through float32).
NP_DTYPES = {
    kn.bool_: np.bool_, kn.uint8: np.uint8, kn.uint16: np.uint16, kn.uint32: np.uint32, kn.uint64: np.uint64,
    kn.int8: np.int8, kn.int16: np.int16, kn.int32: np.int32, kn.int64: np.int64, kn.float16: np.float16,
    kn.float32: np.float32, kn.float64: np.float64, kn.complex64: np.complex64,
}


def to_numpy(a):
    if a.dtype == kn.bfloat16:
        a = a.astype(kn.float32)
    return np.array(a)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, dtype=None):
    """actual (a kiln array) matches expected (NumPy) in shape, values and, when given, dtype."""
    assert isinstance(actual, kn.array), type(actual)
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    got = to_numpy(actual)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if got.dtype == np.bool_ or np.issubdtype(got.dtype, np.integer):
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


def random_array(rng, shape, dtype=np.float32, low=-3.0, high=3.0):
    """Random values of a NumPy dtype: uniform floats, integers in [low, high), random bools."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        lo = max(int(low), np.iinfo(dtype).min)
        return rng.integers(lo, int(high), size=shape, dtype=dtype)
    if np.issubdtype(dtype, np.complexfloating):
        return (rng.uniform(low, high, shape) + 1j * rng.uniform(low, high, shape)).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)
