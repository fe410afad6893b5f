"""Indexing and slice assignment against NumPy on random index tuples."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array


def random_slice(rng, n):
    def bound():
        return None if rng.random() < 0.3 else int(rng.integers(-n - 2, n + 3))

    step = None if rng.random() < 0.3 else int(rng.choice([-3, -2, -1, 1, 2, 3]))
    return slice(bound(), bound(), step)


def random_basic_index(rng, shape):
    """A tuple of ints, slices, None and at most one Ellipsis for an array of `shape`."""
    entries = []
    axes = list(range(len(shape)))
    use_ellipsis = rng.random() < 0.4
    covered = int(rng.integers(0, len(shape) + 1))
    for ax in axes[:covered]:
        n = shape[ax]
        if rng.random() < 0.3 and n > 0:
            entries.append(int(rng.integers(-n, n)))
        else:
            entries.append(random_slice(rng, n))
        if rng.random() < 0.2:
            entries.append(None)
    if use_ellipsis:
        entries.insert(int(rng.integers(0, len(entries) + 1)), Ellipsis)
        # Integers after the ellipsis must index the trailing axes: keep only slices and None there.
        pos = entries.index(Ellipsis)
        entries = entries[:pos + 1] + [e if not isinstance(e, int) else slice(None) for e in entries[pos + 1:]]
    return tuple(entries)


def test_basic_indexing_matches_numpy(rng):
    for _ in range(200):
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
        ref = random_array(rng, shape)
        a = kn.array(ref)
        key = random_basic_index(rng, shape)
        assert_close(a[key], ref[key])


def test_single_indices():
    ref = np.arange(24).reshape(2, 3, 4)
    a = kn.array(ref)
    for key in (1, -1, (0, 2), (-1, -2, -3), slice(None, None, -1), Ellipsis, (Ellipsis, 1), (None,), (),
                (1, Ellipsis, None), (slice(1, 3), None, slice(None, None, 2)), np.int64(1), kn.array(1)):
        assert_close(a[key], ref[key])
    assert a[1, 2, 3].item() == ref[1, 2, 3]


def test_integer_array_index(rng):
    ref = random_array(rng, (5, 6, 7))
    a = kn.array(ref)
    idx = rng.integers(-5, 5, size=(2, 3))
    assert_close(a[idx], ref[idx])
    assert_close(a[list(idx[0])], ref[list(idx[0])])
    cols = rng.integers(0, 6, size=4)
    for key in ((slice(None), cols), (slice(1, 4), cols, slice(None, None, 2)), (Ellipsis, kn.array(cols)),
                (1, cols), (cols % 5, 2), (cols % 5, slice(None), 3), (slice(None), 2, cols[:3] % 7), (None, 1, cols)):
        ref_key = tuple(np.array(k) if isinstance(k, kn.array) else k for k in key)
        assert_close(a[key], ref[ref_key])


def test_index_errors():
    a = kn.zeros((3, 4))
    with pytest.raises(IndexError, match="out of bounds for axis 1 with size 4"):
        a[0, 4]
    with pytest.raises(IndexError, match="too many indices"):
        a[0, 0, 0]
    with pytest.raises(IndexError, match="one ellipsis"):
        a[..., ...]
    with pytest.raises(IndexError, match="integer dtype"):
        a[kn.array([0.5])]
    with pytest.raises(IndexError, match="boolean"):
        a[True]
    with pytest.raises(IndexError, match="valid indices"):
        a["x"]
    with pytest.raises(ValueError, match="step cannot be zero"):
        a[::0]


def test_slice_assignment(rng):
    for _ in range(100):
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        ref = random_array(rng, shape)
        a = kn.array(ref)
        key = random_basic_index(rng, shape)
        target = ref[key].shape
        value = random_array(rng, target[int(rng.integers(0, len(target) + 1)):])  # broadcasts
        ref[key] = value
        a[key] = kn.array(value)
        assert_close(a, ref)
    a = kn.zeros((3, 4), kn.int32)
    a[1] = 5
    a[:, -1] = kn.array([1, 2, 3], kn.int32)
    a[0, ::2] = 7.9  # cast to the array's dtype, as NumPy does
    ref = np.zeros((3, 4), np.int32)
    ref[1] = 5
    ref[:, -1] = [1, 2, 3]
    ref[0, ::2] = 7.9
    assert_close(a, ref, dtype=kn.int32)


def test_assignment_keeps_exported_views_alive(rng):
    ref = random_array(rng, (4, 4))
    a = kn.array(ref)
    view = np.asarray(a)
    a[0] = 0
    np.testing.assert_array_equal(view, ref)  # the old values, still readable
    assert float(kn.sum(a[0]).item()) == 0.0


def test_assignment_errors():
    a = kn.zeros((3, 4))
    with pytest.raises(ValueError):
        a[0] = kn.zeros((5,))
    with pytest.raises(IndexError, match="not supported yet"):
        a[[0, 1]] = 1


def test_bare_none_and_ellipsis_keys(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    a = kn.array(x)
    np.testing.assert_array_equal(np.asarray(a[None]), x[None])
    np.testing.assert_array_equal(np.asarray(a[...]), x[...])
    b = kn.array(x)
    b[None] = 2.0
    y = x.copy()
    y[None] = 2.0
    np.testing.assert_array_equal(np.asarray(b), y)
