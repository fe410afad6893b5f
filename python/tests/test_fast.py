"""kiln.fast against NumPy references written here."""
import numpy as np
import pytest

import kiln as kn
from kiln import fast
from utils import assert_close, random_array


def test_rms_norm(rng, device):
    x = random_array(rng, (3, 5, 16))
    w = random_array(rng, (16,))
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt(np.mean(x64 ** 2, axis=-1, keepdims=True) + 1e-5)
    assert_close(fast.rms_norm(x, w, 1e-5, stream=device), ref * w, rtol=1e-5, atol=1e-5)
    assert_close(kn.fast.rms_norm(x, None, eps=1e-5), ref, rtol=1e-5, atol=1e-5)


def test_layer_norm(rng, device):
    x = random_array(rng, (4, 32))
    w = random_array(rng, (32,))
    b = random_array(rng, (32,))
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-6)
    assert_close(fast.layer_norm(x, w, b, 1e-6, stream=device), ref * w + b, rtol=1e-4, atol=1e-5)
    assert_close(fast.layer_norm(x, None, None, 1e-6), ref, rtol=1e-4, atol=1e-5)


def rope_ref(x, dims, traditional, base, scale, offset, freqs=None):
    x = x.astype(np.float64)
    seq = x.shape[-2]
    pos = (offset + np.arange(seq))[:, None]
    inv = 1.0 / freqs if freqs is not None else base ** (-2.0 * np.arange(dims // 2) / dims)
    ang = pos * scale * inv
    cos, sin = np.cos(ang), np.sin(ang)
    out = x.copy()
    if traditional:
        a, b = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2] = a * cos - b * sin
        out[..., 1:dims:2] = a * sin + b * cos
    else:
        a, b = x[..., :dims // 2], x[..., dims // 2:dims]
        out[..., :dims // 2] = a * cos - b * sin
        out[..., dims // 2:dims] = a * sin + b * cos
    return out


@pytest.mark.parametrize("traditional", [False, True])
def test_rope(rng, device, traditional):
    x = random_array(rng, (2, 3, 7, 16))
    offset = int(rng.integers(0, 100))
    for dims in (16, 8):
        out = fast.rope(x, dims, traditional=traditional, base=10000.0, scale=0.5, offset=offset, stream=device)
        assert_close(out, rope_ref(x, dims, traditional, 10000.0, 0.5, offset), rtol=1e-4, atol=1e-4)
    freqs = fast.llama3_rope_freqs(16, 500000.0, 8.0, 1.0, 4.0, 8192)
    assert freqs.shape == (8,)
    out = fast.rope(x, 16, traditional=traditional, base=None, scale=1.0, offset=offset, freqs=freqs)
    ref = rope_ref(x, 16, traditional, None, 1.0, offset, freqs=np.array(freqs).astype(np.float64))
    assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_silu_mul(rng, device):
    g = random_array(rng, (5, 8))
    u = random_array(rng, (5, 8))
    g64 = g.astype(np.float64)
    assert_close(fast.silu_mul(g, u, stream=device), g64 / (1 + np.exp(-g64)) * u, rtol=1e-5, atol=1e-6)



def test_silu_mul_halves(rng, device):
    x = random_array(rng, (3, 4, 2 * 24))
    g64, u64 = x[..., :24].astype(np.float64), x[..., 24:]
    y = fast.silu_mul(x, stream=device)
    assert y.shape == (3, 4, 24)
    assert_close(y, g64 / (1 + np.exp(-g64)) * u64, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="even last axis"):
        fast.silu_mul(random_array(rng, (2, 5)))

def sdpa_ref(q, k, v, scale, mask=None, causal=False):
    q, k, v = (t.astype(np.float64) for t in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k = np.repeat(k, rep, axis=1)
    v = np.repeat(v, rep, axis=1)
    s = q @ np.swapaxes(k, -1, -2) * scale
    lq, lk = q.shape[2], k.shape[2]
    if causal:
        keep = np.arange(lk)[None, :] <= (lk - lq + np.arange(lq))[:, None]
        s = np.where(keep, s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_scaled_dot_product_attention(rng, device, causal):
    b, hq, hkv, lq, lk, d = 2, 4, 2, 3, 9, 16
    q = random_array(rng, (b, hq, lq, d), low=-1, high=1)
    k = random_array(rng, (b, hkv, lk, d), low=-1, high=1)
    v = random_array(rng, (b, hkv, lk, d), low=-1, high=1)
    scale = 1 / np.sqrt(d)
    out = fast.scaled_dot_product_attention(q, k, v, scale=scale, causal=causal, stream=device)
    assert_close(out, sdpa_ref(q, k, v, scale, causal=causal), rtol=1e-4, atol=1e-5)
    mask = random_array(rng, (lq, lk), np.bool_)
    mask[:, 0] = True  # every query sees a key
    out = fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    assert_close(out, sdpa_ref(q, k, v, scale, mask=mask), rtol=1e-4, atol=1e-5)
    add = random_array(rng, (1, hq, lq, lk), low=-2, high=0)
    out = fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=add)
    assert_close(out, sdpa_ref(q, k, v, scale, mask=add), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hq,hkv,lq,lk,d", [(32, 8, 1, 4096, 128), (32, 1, 1, 1000, 128), (8, 8, 2, 777, 64)])
def test_scaled_dot_product_attention_decode_bfloat16(rng, device, hq, hkv, lq, lk, d):
    # Few query rows against a long cache: on the GPU the tensor-core kernel split over the keys,
    # with its partials merged by a second kernel.
    q, k, v = (random_array(rng, shape, low=-1, high=1) for shape in ((1, hq, lq, d), (1, hkv, lk, d), (1, hkv, lk, d)))
    q, k, v = (kn.array(x).astype(kn.bfloat16) for x in (q, k, v))
    exact = [np.array(x.astype(kn.float32)).astype(np.float64) for x in (q, k, v)]
    scale = 1 / np.sqrt(d)
    out = fast.scaled_dot_product_attention(q, k, v, scale=scale, causal=lq > 1, stream=device)
    assert_close(out, sdpa_ref(*exact, scale, causal=lq > 1), rtol=2e-2, atol=2e-2)
