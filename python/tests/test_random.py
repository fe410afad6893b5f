"""kiln.random: shapes, dtypes, ranges, reproducibility and rough distributions."""
import numpy as np
import pytest

import kiln as kn
import kiln.random as knr
from utils import to_numpy


def test_keys_and_split(rng):
    seed = int(rng.integers(0, 2**63))
    k = kn.random.key(seed)
    assert k.shape == (2,) and k.dtype == kn.uint32
    assert k.tolist() == [seed >> 32, seed & 0xFFFFFFFF]
    keys = kn.random.split(k, num=3)
    assert keys.shape == (3, 2)
    rows = [tuple(r) for r in np.array(keys)]
    assert len(set(rows)) == 3
    assert np.array_equal(np.array(kn.random.split(k, 3)), np.array(keys))


@pytest.mark.parametrize("dtype", [kn.float32, kn.float16, kn.bfloat16, kn.float64])
def test_uniform_normal_shapes_dtypes_ranges(rng, dtype):
    shape = tuple(int(d) for d in rng.integers(1, 40, size=2))
    lo = float(rng.uniform(-5, 0))
    hi = lo + float(rng.uniform(1, 5))  # far enough apart to differ in 16-bit floats
    u = kn.random.uniform(lo, hi, shape, dtype)
    assert u.shape == shape and u.dtype == dtype
    v = to_numpy(u).astype(np.float64)
    tol = 0.05 * (hi - lo) if dtype in (kn.float16, kn.bfloat16) else 1e-6
    assert v.min() >= lo - tol and v.max() < hi + tol
    n = kn.random.normal(shape, dtype)
    assert n.shape == shape and n.dtype == dtype
    assert kn.random.uniform(shape=3).shape == (3,)
    assert kn.random.normal().shape == ()


def test_distributions_roughly(rng):
    key = kn.random.key(int(rng.integers(0, 2**32)))
    z = np.array(kn.random.normal((200000,), loc=2.0, scale=3.0, key=key))
    assert abs(z.mean() - 2.0) < 0.05 and abs(z.std() - 3.0) < 0.05
    u = np.array(kn.random.uniform(shape=(200000,), key=key))
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    b = np.array(kn.random.bernoulli(0.3, (200000,), key=key))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 0.01
    g = np.array(kn.random.gumbel((200000,), key=key))
    assert abs(g.mean() - 0.5772) < 0.02
    t = np.array(kn.random.truncated_normal(-1.0, 0.5, (10000,), key=key))
    assert t.min() >= -1.0 and t.max() <= 0.5


def test_randint(rng):
    lo = int(rng.integers(-100, 0))
    hi = lo + int(rng.integers(1, 50))
    r = kn.random.randint(lo, hi, (1000,))
    assert r.dtype == kn.int32
    v = np.array(r)
    assert v.min() >= lo and v.max() < hi
    assert kn.random.randint(0, 10, (3, 4), kn.uint8).dtype == kn.uint8
    arr = np.array(kn.random.randint(kn.array([0, 10]), kn.array([1, 12]), (500, 2)))
    assert np.all(arr[:, 0] == 0) and np.all((arr[:, 1] >= 10) & (arr[:, 1] < 12))
    with pytest.raises(ValueError):
        kn.random.randint(5, 5, (2,))


def test_seed_and_key_reproducibility(rng):
    s = int(rng.integers(0, 2**32))
    kn.random.seed(s)
    a = np.array(kn.random.normal((5,)))
    b = np.array(kn.random.normal((5,)))
    kn.random.seed(s)
    np.testing.assert_array_equal(np.array(kn.random.normal((5,))), a)
    np.testing.assert_array_equal(np.array(kn.random.normal((5,))), b)
    assert not np.array_equal(a, b)
    k = kn.random.key(s)
    np.testing.assert_array_equal(np.array(kn.random.uniform(shape=(4,), key=k)),
                                  np.array(kn.random.uniform(shape=(4,), key=k)))
    np.testing.assert_array_equal(np.array(knr.bits((3,), key=k)), np.array(knr.bits((3,), key=k)))
    assert knr.bits((3,), width=1).dtype == kn.uint8 and knr.bits((3,), 8).dtype == kn.uint64


def test_categorical(rng):
    key = kn.random.key(int(rng.integers(0, 2**32)))
    probs = np.array([0.1, 0.6, 0.3])
    s = np.array(kn.random.categorical(np.log(probs).astype(np.float32), num_samples=50000, key=key))
    assert s.shape == (50000,) and s.dtype == np.uint32
    np.testing.assert_allclose(np.bincount(s, minlength=3) / 50000, probs, atol=0.015)
    logits = np.zeros((4, 5, 6), np.float32)
    assert kn.random.categorical(logits, axis=1).shape == (4, 6)
    assert kn.random.categorical(logits, num_samples=3).shape == (4, 5, 3)
