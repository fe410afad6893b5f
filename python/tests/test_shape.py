"""Shape, joining, padding, integer-array indexing and sorting ops against NumPy."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array


def test_reshape_transpose_and_friends(rng):
    x = random_array(rng, (2, 3, 4))
    a = kn.array(x)
    assert_close(kn.reshape(x, (4, -1)), x.reshape(4, -1))
    assert_close(kn.reshape(x, 24), x.reshape(24))
    assert_close(a.reshape(6, 4), x.reshape(6, 4))
    assert_close(a.reshape((3, 8)), x.reshape(3, 8))
    assert_close(kn.flatten(x), x.reshape(-1))
    assert_close(kn.flatten(x, 1, 2), x.reshape(2, 12))
    assert_close(kn.transpose(x), x.T)
    assert_close(kn.transpose(x, [1, 0, 2]), x.transpose(1, 0, 2))
    assert_close(a.transpose(2, 0, 1), x.transpose(2, 0, 1))
    assert_close(a.transpose(), x.T)
    assert_close(kn.swapaxes(x, 0, 2), np.swapaxes(x, 0, 2))
    assert_close(kn.moveaxis(x, 0, -1), np.moveaxis(x, 0, -1))
    assert_close(kn.expand_dims(x, 1), np.expand_dims(x, 1))
    assert_close(kn.expand_dims(x, [0, -1]), np.expand_dims(x, (0, -1)))
    y = x.reshape(2, 1, 3, 1, 4)
    assert_close(kn.squeeze(y), np.squeeze(y))
    assert_close(kn.squeeze(y, 3), np.squeeze(y, 3))
    assert_close(kn.squeeze(y, axis=[1, 3]), np.squeeze(y, (1, 3)))
    assert_close(kn.broadcast_to(x[0, 0], (5, 4)), np.broadcast_to(x[0, 0], (5, 4)))
    p, q = kn.broadcast_arrays(x[:, :1], x[0])
    bp, bq = np.broadcast_arrays(x[:, :1], x[0])
    assert_close(p, bp)
    assert_close(q, bq)
    assert kn.broadcast_shapes((3, 1), (4,)) == (3, 4)
    assert_close(kn.slice(x, [0, 1], [2, 3], [1, 2]), x[0:2, 1:3:2])
    assert_close(kn.as_strided(x, (3, 2), (1, 4)), np.lib.stride_tricks.as_strided(x, (3, 2), (4, 16)))


def test_concatenate_stack_split(rng):
    xs = [random_array(rng, (2, int(n), 3)) for n in rng.integers(1, 4, size=3)]
    assert_close(kn.concatenate(xs, axis=1), np.concatenate(xs, axis=1))
    ys = [random_array(rng, (2, 3)) for _ in range(4)]
    assert_close(kn.stack(ys), np.stack(ys))
    assert_close(kn.stack(ys, axis=-1), np.stack(ys, axis=-1))
    x = random_array(rng, (6, 4))
    for got, ref in zip(kn.split(x, 3), np.split(x, 3)):
        assert_close(got, ref)
    for got, ref in zip(kn.split(x, [1, 4], axis=0), np.split(x, [1, 4], axis=0)):
        assert_close(got, ref)
    assert len(kn.split(x, 2, axis=1)) == 2


def test_pad_tile_repeat_roll_flip(rng):
    x = random_array(rng, (3, 4))
    assert_close(kn.pad(x, 1), np.pad(x, 1))
    assert_close(kn.pad(x, (1, 2), value=5.0), np.pad(x, (1, 2), constant_values=5.0))
    assert_close(kn.pad(x, [(0, 1), (2, 0)], mode="edge"), np.pad(x, [(0, 1), (2, 0)], mode="edge"))
    assert_close(kn.pad(x, [(2, 2), (1, 3)], mode="reflect"), np.pad(x, [(2, 2), (1, 3)], mode="reflect"))
    assert_close(kn.tile(x, (2, 3)), np.tile(x, (2, 3)))
    assert_close(kn.tile(x, 2), np.tile(x, 2))
    assert_close(kn.repeat(x, 2), np.repeat(x, 2))
    assert_close(kn.repeat(x, 3, axis=1), np.repeat(x, 3, axis=1))
    assert_close(kn.roll(x, 5), np.roll(x, 5))
    assert_close(kn.roll(x, -1, axis=1), np.roll(x, -1, axis=1))
    assert_close(kn.roll(x, [1, 2], axis=[0, 1]), np.roll(x, (1, 2), axis=(0, 1)))
    assert_close(kn.flip(x), np.flip(x))
    assert_close(kn.flip(x, 1), np.flip(x, 1))
    with pytest.raises(ValueError, match="mode"):
        kn.pad(x, 1, mode="wrap")


def test_triangles_and_diagonals(rng):
    x = random_array(rng, (2, 4, 5))
    for k in (-1, 0, 2):
        assert_close(kn.tril(x, k), np.tril(x, k))
        assert_close(kn.triu(x, k=k), np.triu(x, k))
    assert_close(kn.diagonal(x, 1, 1, 2), np.diagonal(x, 1, 1, 2))
    assert_close(kn.diagonal(x[0]), np.diagonal(x[0]))


def test_take_gather_scatter(rng):
    x = random_array(rng, (4, 5, 6))
    idx = rng.integers(-4, 4, size=(3, 2))
    assert_close(kn.take(x, idx, axis=0), np.take(x, idx, axis=0))
    assert_close(kn.take(x, idx % 6, axis=-1), np.take(x, idx % 6, axis=-1))
    assert_close(kn.take(x, idx % 120), np.take(x, idx % 120))
    along = rng.integers(0, 5, size=(4, 3, 6))
    assert_close(kn.take_along_axis(x, along, axis=1), np.take_along_axis(x, along, axis=1))
    vals = random_array(rng, (4, 1, 6))
    ref = x.copy()
    perm = np.stack([rng.permutation(5)[:1] for _ in range(4)])[:, :, None].repeat(6, axis=2)
    np.put_along_axis(ref, perm, vals, axis=1)
    assert_close(kn.put_along_axis(x, perm, vals, axis=1), ref)
    # gather single elements: indices into axes 0 and 2, slice sizes 1.
    i0 = rng.integers(0, 4, size=7)
    i2 = rng.integers(0, 6, size=7)
    g = kn.gather(x, [i0, i2], [0, 2], [1, 5, 1])
    assert g.shape == (7, 1, 5, 1)
    assert_close(kn.reshape(g, (7, 5)), x[i0, :, i2])
    # scatter-add rows with repeats.
    base = random_array(rng, (5, 3))
    rows = rng.integers(0, 5, size=8)
    upd = random_array(rng, (8, 1, 3))
    ref = base.copy()
    np.add.at(ref, rows, upd[:, 0])
    assert_close(kn.scatter(base, [rows], upd, [0], mode="add"), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        kn.scatter(base, [rows], upd, [0], mode="mul")
    with pytest.raises(IndexError):
        kn.take(x, [9], axis=0)


def test_slice_update(rng):
    x = random_array(rng, (5, 6))
    u = random_array(rng, (2, 3))
    ref = x.copy()
    ref[1:5:2, ::-2] = u
    assert_close(kn.slice_update(x, u, [1, -1], [5, -7], [2, -2]), ref)


def test_sorting(rng):
    x = random_array(rng, (4, 7))
    x[0, 2] = np.nan
    assert_close(kn.sort(x), np.sort(x))
    assert_close(kn.sort(x, axis=0), np.sort(x, axis=0))
    assert_close(kn.sort(x, axis=None), np.sort(x, axis=None))
    ints = random_array(rng, (5, 9), np.int32, low=0, high=4)  # many ties: argsort is stable
    assert_close(kn.argsort(ints), np.argsort(ints, kind="stable"))
    assert_close(kn.argsort(ints, axis=None), np.argsort(ints, axis=None, kind="stable"))
    y = random_array(rng, (3, 10))
    for kth in (0, 4, -1):
        part = np.array(kn.partition(y, kth))
        k = kth % 10
        assert np.all(part[:, :k] <= part[:, k:k + 1]) and np.all(part[:, k + 1:] >= part[:, k:k + 1])
        np.testing.assert_array_equal(part[:, k], np.sort(y, axis=-1)[:, k])
        ip = np.array(kn.argpartition(y, kth))
        np.testing.assert_array_equal(np.take_along_axis(y, ip.astype(np.int64), -1)[:, k], np.sort(y)[:, k])
    assert_close(kn.topk(y, 3), -np.sort(-y, axis=-1)[:, :3])
    assert_close(kn.topk(y, 2, axis=0), -np.sort(-y, axis=0)[:2])
