"""Convolutions and pooling (channels-last) against NumPy references written here, and pooling
against PyTorch where it is installed."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def conv_ref(x, w, stride, padding, dilation, groups):
    """Cross-correlation of x (N, *S, C) with w (O, *K, C / groups), zero padding on both sides."""
    nsp = x.ndim - 2
    x = np.pad(x.astype(np.float64), [(0, 0)] + [(p, p) for p in padding] + [(0, 0)])
    w = w.astype(np.float64)
    ksz = w.shape[1:-1]
    out_sp = [(x.shape[1 + i] - dilation[i] * (ksz[i] - 1) - 1) // stride[i] + 1 for i in range(nsp)]
    cg, og = w.shape[-1], w.shape[0] // groups
    out = np.zeros((x.shape[0], *out_sp, w.shape[0]))
    for g in range(groups):
        xs = x[..., g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for k in np.ndindex(*ksz):
            idx = tuple(slice(k[i] * dilation[i], k[i] * dilation[i] + stride[i] * (out_sp[i] - 1) + 1, stride[i])
                        for i in range(nsp))
            out[..., g * og:(g + 1) * og] += xs[(slice(None), *idx)] @ ws[(slice(None), *k)].T
    return out


@pytest.mark.parametrize("groups", [1, 2])
def test_conv1d_2d_3d(rng, groups):
    x = random_array(rng, (2, 9, 4))
    w = random_array(rng, (6, 3, 4 // groups))
    assert_close(kn.conv1d(x, w, stride=2, padding=1, dilation=2, groups=groups),
                 conv_ref(x, w, (2,), (1,), (2,), groups), rtol=1e-4, atol=1e-4)
    x2 = random_array(rng, (2, 7, 8, 4))
    w2 = random_array(rng, (6, 3, 2, 4 // groups))
    assert_close(kn.conv2d(x2, w2, stride=(1, 2), padding=1, groups=groups),
                 conv_ref(x2, w2, (1, 2), (1, 1), (1, 1), groups), rtol=1e-4, atol=1e-4)
    assert_close(kn.conv2d(x2, w2, dilation=(2, 1), groups=groups),
                 conv_ref(x2, w2, (1, 1), (0, 0), (2, 1), groups), rtol=1e-4, atol=1e-4)
    x3 = random_array(rng, (1, 4, 5, 6, 2))
    w3 = random_array(rng, (3, 2, 2, 3, 2))
    assert_close(kn.conv3d(x3, w3, stride=(1, 2, 1), padding=1), conv_ref(x3, w3, (1, 2, 1), (1, 1, 1), (1, 1, 1), 1),
                 rtol=1e-4, atol=1e-4)
    assert_close(kn.conv_general(x2, w2, stride=[1, 2], padding_lo=1, padding_hi=1, groups=groups),
                 conv_ref(x2, w2, (1, 2), (1, 1), (1, 1), groups), rtol=1e-4, atol=1e-4)


def test_conv_transpose1d(rng):
    x = random_array(rng, (2, 5, 3))
    w = random_array(rng, (4, 3, 3))  # (C_out, k, C_in)
    s, p, d, op = 2, 1, 2, 1
    length = (5 - 1) * s - 2 * p + d * (3 - 1) + op + 1
    full = np.zeros((2, (5 - 1) * s + d * 2 + 1 + op, 4))
    for i in range(5):
        for k in range(3):
            full[:, i * s + k * d] += x[:, i].astype(np.float64) @ w[:, k].astype(np.float64).T
    ref = full[:, p:p + length]
    out = kn.conv_transpose1d(x, w, stride=s, padding=p, dilation=d, output_padding=op)
    assert_close(out, ref, rtol=1e-4, atol=1e-4)


def windows(x, kernel, stride, padding, fill):
    """The pooling windows of x (N, H, W, C): an array (N, OH, OW, kh * kw, C)."""
    xp = np.pad(x, [(0, 0), (padding[0],) * 2, (padding[1],) * 2, (0, 0)], constant_values=fill)
    oh = (xp.shape[1] - kernel[0]) // stride[0] + 1
    ow = (xp.shape[2] - kernel[1]) // stride[1] + 1
    return np.stack([xp[:, i:i + stride[0] * (oh - 1) + 1:stride[0], j:j + stride[1] * (ow - 1) + 1:stride[1]]
                     for i in range(kernel[0]) for j in range(kernel[1])], axis=3)


def test_pooling(rng):
    x = random_array(rng, (2, 7, 6, 3))
    assert_close(kn.max_pool(x, 2), windows(x, (2, 2), (2, 2), (0, 0), 0).max(3))
    assert_close(kn.max_pool(x, [3, 2], stride=1, padding=1), windows(x, (3, 2), (1, 1), (1, 1), -np.inf).max(3))
    assert_close(kn.avg_pool(x, 3, stride=2), windows(x, (3, 3), (2, 2), (0, 0), 0).mean(3), rtol=1e-5)
    sums = windows(x, (3, 3), (2, 2), (1, 1), 0).sum(3)
    counts = windows(np.ones_like(x), (3, 3), (2, 2), (1, 1), 0).sum(3)
    assert_close(kn.avg_pool(x, 3, stride=2, padding=1), sums / 9, rtol=1e-5)
    assert_close(kn.avg_pool(x, 3, stride=2, padding=1, count_include_pad=False), sums / counts, rtol=1e-5)


def test_max_pool_nan_and_integers(rng, device):
    x = random_array(rng, (2, 7, 6, 3))
    x[0, 1, 1, 0] = x[1, 6, 5, 2] = np.nan  # NaN wins, as in PyTorch
    ref = windows(x, (3, 3), (2, 2), (1, 1), -np.inf).max(3)
    assert_close(kn.max_pool(x, 3, stride=2, padding=1, stream=device), ref)
    xi = random_array(rng, (2, 7, 6, 3), np.int32, -100, 100)
    ref = windows(xi, (3, 3), (2, 2), (1, 1), np.iinfo(np.int32).min).max(3)
    assert_close(kn.max_pool(xi, 3, stride=2, padding=1, stream=device), ref, dtype=kn.int32)


# (N, *spatial, C), kernel, stride, padding, dilation: padding of half the kernel, strides beyond
# the kernel, windows that leave the end uncovered.
POOL_CASES = [
    ((2, 11, 3), [3], [2], [1], [1]),
    ((1, 10, 64), [2], [3], [0], [2]),
    ((2, 9, 8, 3), [3, 3], [2, 2], [1, 1], [1, 1]),
    ((1, 7, 10, 64), [2, 3], [3, 4], [1, 1], [1, 2]),
    ((2, 5, 6, 7, 3), [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1]),
]


@needs_torch
@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_vs_torch(rng, device, case):
    shape, k, s, p, dil = case
    d = len(k)
    x = random_array(rng, shape)
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))  # PyTorch is channels-first
    F = torch.nn.functional
    max_fn, avg_fn = getattr(F, f"max_pool{d}d"), getattr(F, f"avg_pool{d}d")

    def last(r):
        return np.moveaxis(r.numpy(), 1, -1)

    assert_close(kn.max_pool(x, k, s, p, dil, stream=device), last(max_fn(t, k, s, p, dil)))
    if all(v == 1 for v in dil):
        for include in (True, False):
            assert_close(kn.avg_pool(x, k, s, p, include, stream=device),
                         last(avg_fn(t, k, s, p, count_include_pad=include)), rtol=1e-5)


def test_adaptive_avg_pool(rng):
    x = random_array(rng, (2, 7, 5, 3))
    for out in ((3, 2), 1, (7, 5)):
        oh, ow = (out, out) if isinstance(out, int) else out
        ref = np.zeros((2, oh, ow, 3))
        for i in range(oh):
            for j in range(ow):
                h0, h1 = (i * 7) // oh, -((-(i + 1) * 7) // oh)
                w0, w1 = (j * 5) // ow, -((-(j + 1) * 5) // ow)
                ref[:, i, j] = x[:, h0:h1, w0:w1].astype(np.float64).mean(axis=(1, 2))
        assert_close(kn.adaptive_avg_pool(x, out), ref, rtol=1e-5)
