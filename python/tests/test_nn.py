"""kiln.nn: every layer, activation and loss against float64 NumPy definitions written here (on fresh random
inputs) and against torch.nn where PyTorch is installed (those tests skip, visibly, without it); the Module
tree, update, strict loading and its errors, saving, train/eval, Sequential naming and subclassing."""
import math
import os
import warnings

import numpy as np
import pytest

import kiln as kn
import kiln.nn as nn
from test_conv import conv_ref
from utils import assert_close, random_array

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch): the "
                                 "comparisons with torch.nn need it")
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "torch_checkpoint")
TOL = dict(rtol=1e-4, atol=1e-5)


def f64(a):
    return np.array(a).astype(np.float64)


# ---- float64 references ----

def log_softmax_ref(x, axis=-1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def softmax_ref(x, axis=-1):
    return np.exp(log_softmax_ref(x, axis))


_erf = np.vectorize(math.erf)


def softplus_ref(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def sigmoid_ref(x):
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = {  # name: (function call, module, float64 definition)
    "relu": (nn.relu, nn.ReLU(), lambda x: np.maximum(x, 0)),
    "relu6": (nn.relu6, nn.ReLU6(), lambda x: np.minimum(np.maximum(x, 0), 6)),
    "leaky_relu": (lambda x: nn.leaky_relu(x, 0.2), nn.LeakyReLU(0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    "elu": (lambda x: nn.elu(x, 0.7), nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    "celu": (lambda x: nn.celu(x, 1.5), nn.CELU(1.5),
             lambda x: np.maximum(x, 0) + np.minimum(1.5 * (np.exp(x / 1.5) - 1), 0)),
    "selu": (nn.selu, nn.SELU(),
             lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "gelu": (nn.gelu, nn.GELU(), lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x: nn.gelu(x, "tanh"), nn.GELU("tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (nn.silu, nn.SiLU(), lambda x: x * sigmoid_ref(x)),
    "sigmoid": (nn.sigmoid, nn.Sigmoid(), sigmoid_ref),
    "tanh": (nn.tanh, nn.Tanh(), np.tanh),
    "softplus": (lambda x: nn.softplus(x, 2.0, 3.0), nn.Softplus(2.0, 3.0),
                 lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2)),
    "mish": (nn.mish, nn.Mish(), lambda x: x * np.tanh(softplus_ref(x))),
    "softsign": (nn.softsign, nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    "hardtanh": (lambda x: nn.hardtanh(x, -0.5, 2.0), nn.Hardtanh(-0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0)),
    "hardsigmoid": (nn.hardsigmoid, nn.Hardsigmoid(), lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "hardswish": (nn.hardswish, nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "logsigmoid": (nn.logsigmoid, nn.LogSigmoid(), lambda x: -np.log1p(np.exp(-x))),
    "softmax": (lambda x: nn.softmax(x, 1), nn.Softmax(1), lambda x: softmax_ref(x, 1)),
    "log_softmax": (nn.log_softmax, nn.LogSoftmax(), log_softmax_ref),
    "glu": (lambda x: nn.glu(x, 1), nn.GLU(1), lambda x: x[:, :2] * sigmoid_ref(x[:, 2:])),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(rng, name):
    fn, module, ref = ACTIVATIONS[name]
    x = random_array(rng, (3, 4, 5), low=-8, high=8)
    want = ref(x.astype(np.float64))
    assert_close(fn(kn.array(x)), want, **TOL, dtype=kn.float32)
    assert_close(module(kn.array(x)), want, **TOL, dtype=kn.float32)
    assert module.parameters() == {}


def test_prelu(rng):
    x = random_array(rng, (2, 3, 4))
    w = random_array(rng, (4,))
    layer = nn.PReLU(4)
    assert_close(layer.weight, np.full(4, 0.25))
    layer.update({"weight": w})
    assert_close(layer(kn.array(x)), np.where(x >= 0, x, x * w), **TOL)
    assert_close(nn.PReLU()(kn.array(x)), np.where(x >= 0, x, 0.25 * x), **TOL)


def conv_layer_ref(layer, x, padding):
    y = conv_ref(x, np.array(layer.weight), layer.stride, padding, layer.dilation, layer.groups)
    return y if layer.bias is None else y + f64(layer.bias)


def test_linear(rng):
    layer = nn.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    bound = 1 / math.sqrt(5)
    assert np.abs(np.array(layer.weight)).max() <= bound and np.abs(np.array(layer.bias)).max() <= bound
    x = random_array(rng, (2, 4, 5))
    assert_close(layer(kn.array(x)), x.astype(np.float64) @ f64(layer.weight).T + f64(layer.bias), **TOL)
    no_bias = nn.Linear(5, 3, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert_close(no_bias(kn.array(x)), x.astype(np.float64) @ f64(no_bias.weight).T, **TOL)


def test_conv1d(rng):
    layer = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)
    assert layer.weight.shape == (6, 3, 2)
    x = random_array(rng, (2, 11, 4))
    assert_close(layer(kn.array(x)), conv_layer_ref(layer, x, (1,)), **TOL)
    same = nn.Conv1d(3, 2, 4, padding="same", dilation=1)
    y = same(kn.array(x[..., :3]))
    assert y.shape == (2, 11, 2)
    # PyTorch's 'same' pads (k - 1) // 2 before and the rest after.
    padded = np.pad(x[..., :3], [(0, 0), (1, 2), (0, 0)])
    assert_close(y, conv_layer_ref(same, padded, (0,)), **TOL)
    valid = nn.Conv1d(4, 2, 3, padding="valid", bias=False)
    assert_close(valid(kn.array(x[0])), conv_layer_ref(valid, x[:1], (0,))[0], **TOL)  # unbatched (L, C)


def test_conv2d(rng):
    layer = nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2)
    assert layer.weight.shape == (6, 3, 2, 2)
    x = random_array(rng, (2, 8, 7, 4))
    assert_close(layer(kn.array(x)), conv_layer_ref(layer, x, (1, 0)), **TOL)
    same = nn.Conv2d(4, 3, 3, padding="same", dilation=2, bias=False)
    assert_close(same(kn.array(x)), conv_layer_ref(same, x, (2, 2)), **TOL)
    assert_close(same(kn.array(x[1])), conv_layer_ref(same, x[1:], (2, 2))[0], **TOL)
    with pytest.raises(ValueError, match=r"\[Conv2d\] in_channels \(3\) and out_channels \(4\) must be divisible"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"\[Conv2d\] padding='same' needs stride 1"):
        nn.Conv2d(3, 3, 3, stride=2, padding="same")


def pool_ref(x, kernel, stride, padding, op, dilation=(1, 1), count_include_pad=True):
    """Pooling of x (N, *spatial, C) over its spatial axes, padding with -inf (max) or zeros (average)."""
    x = x.astype(np.float64)
    nsp = x.ndim - 2
    fill = -np.inf if op == "max" else 0.0
    pads = [(0, 0)] + [(p, p) for p in padding] + [(0, 0)]
    xp = np.pad(x, pads, constant_values=fill)
    real = np.pad(np.ones(x.shape[1:-1]), [(p, p) for p in padding])
    out_sp = [(x.shape[1 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
              for i in range(nsp)]
    out = np.zeros((x.shape[0], *out_sp, x.shape[-1]))
    for o in np.ndindex(*out_sp):
        idx = [o[i] * stride[i] + dilation[i] * np.arange(kernel[i]) for i in range(nsp)]
        win = xp[(slice(None), *np.ix_(*idx), slice(None))] if nsp > 1 else xp[:, idx[0]]
        axes = tuple(range(1, 1 + nsp))
        if op == "max":
            out[(slice(None), *o)] = win.max(axes)
        else:
            count = np.prod(kernel) if count_include_pad else real[np.ix_(*idx)].sum()
            out[(slice(None), *o)] = win.sum(axes) / count
    return out


def test_pooling(rng):
    x = random_array(rng, (2, 7, 8, 3))
    assert_close(nn.MaxPool2d(3, stride=2, padding=1)(kn.array(x)), pool_ref(x, (3, 3), (2, 2), (1, 1), "max"))
    assert_close(nn.MaxPool2d((2, 3), dilation=(2, 1))(kn.array(x)),
                 pool_ref(x, (2, 3), (2, 3), (0, 0), "max", dilation=(2, 1)))
    assert_close(nn.AvgPool2d(3, stride=2, padding=1)(kn.array(x)), pool_ref(x, (3, 3), (2, 2), (1, 1), "avg"),
                 **TOL)
    assert_close(nn.AvgPool2d(3, stride=(1, 2), padding=1, count_include_pad=False)(kn.array(x)),
                 pool_ref(x, (3, 3), (1, 2), (1, 1), "avg", count_include_pad=False), **TOL)
    assert_close(nn.MaxPool2d(2)(kn.array(x[0])), pool_ref(x[:1], (2, 2), (2, 2), (0, 0), "max")[0])
    x1 = random_array(rng, (2, 9, 3))
    assert_close(nn.MaxPool1d(3, stride=2, padding=1)(kn.array(x1)), pool_ref(x1, (3,), (2,), (1,), "max"))
    assert_close(nn.AvgPool1d(2)(kn.array(x1)), pool_ref(x1, (2,), (2,), (0,), "avg"), **TOL)
    # Adaptive pooling to (2, 4) of (7, 8): PyTorch's windows [floor(i H / h), ceil((i + 1) H / h)).
    want = np.zeros((2, 2, 4, 3))
    for i in range(2):
        for j in range(4):
            rows = slice(i * 7 // 2, -(-(i + 1) * 7 // 2))
            cols = slice(j * 8 // 4, -(-(j + 1) * 8 // 4))
            want[:, i, j] = x[:, rows, cols].astype(np.float64).mean((1, 2))
    assert_close(nn.AdaptiveAvgPool2d((2, 4))(kn.array(x)), want, **TOL)


def randomize(layer, rng):
    """Random values for every floating parameter (positive for variances), so tests see more than the init."""
    for name, p in list(layer.named_parameters()):
        if kn.is_floating(p.dtype):
            low = 0.5 if name.endswith("running_var") else -1.5
            layer.update({name: random_array(rng, p.shape, low=low, high=1.5)})
    return layer


def test_batchnorm_inference(rng):
    bn = randomize(nn.BatchNorm(4), rng).eval()
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias", "running_mean", "running_var",
                                                      "num_batches_tracked"]
    assert bn.num_batches_tracked.dtype == kn.int64
    x = random_array(rng, (3, 5, 2, 4))
    p = {n: f64(a) for n, a in bn.named_parameters()}
    want = (x - p["running_mean"]) / np.sqrt(p["running_var"] + 1e-5) * p["weight"] + p["bias"]
    assert_close(bn(kn.array(x)), want, **TOL)


@pytest.mark.parametrize("momentum", [0.3, None])
def test_batchnorm_training(rng, momentum):
    bn = randomize(nn.BatchNorm(3, eps=1e-3, momentum=momentum), rng)
    assert bn.training
    x = random_array(rng, (4, 6, 3)).astype(np.float64)
    before = {n: f64(a) for n, a in bn.named_parameters()}
    y = bn(kn.array(x.astype(np.float32)))
    mean, var = x.mean((0, 1)), x.var((0, 1))
    assert_close(y, (x - mean) / np.sqrt(var + 1e-3) * before["weight"] + before["bias"], **TOL)
    m = 1.0 if momentum is None else momentum  # the cumulative average of one batch is the batch
    assert_close(bn.running_mean, (1 - m) * before["running_mean"] + m * mean, **TOL)
    assert_close(bn.running_var, (1 - m) * before["running_var"] + m * x.var((0, 1), ddof=1), **TOL)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    assert_close(bn(kn.array(x.astype(np.float32))),
                 (x - f64(bn.running_mean)) / np.sqrt(f64(bn.running_var) + 1e-3) * before["weight"]
                 + before["bias"], **TOL)
    untracked = nn.BatchNorm(3, affine=False, track_running_stats=False).eval()
    assert untracked.parameters() == {}
    assert_close(untracked(kn.array(x)), (x - mean) / np.sqrt(var + 1e-5), **TOL)
    with pytest.raises(ValueError, match=r"\[BatchNorm\] expected \(N, \.\.\., 3\)"):
        bn(kn.zeros((2, 4)))


def test_layer_norm(rng):
    x = random_array(rng, (2, 3, 4, 5)).astype(np.float64)
    ln = randomize(nn.LayerNorm(5, eps=1e-4), rng)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    assert_close(ln(kn.array(x.astype(np.float32))),
                 (x - mean) / np.sqrt(var + 1e-4) * f64(ln.weight) + f64(ln.bias), **TOL)
    ln2 = randomize(nn.LayerNorm((4, 5)), rng)
    assert ln2.weight.shape == (4, 5)
    mean, var = x.mean((-2, -1), keepdims=True), x.var((-2, -1), keepdims=True)
    assert_close(ln2(kn.array(x.astype(np.float32))),
                 (x - mean) / np.sqrt(var + 1e-5) * f64(ln2.weight) + f64(ln2.bias), **TOL)
    bare = nn.LayerNorm(5, elementwise_affine=False)
    assert bare.parameters() == {}
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    assert_close(bare(kn.array(x.astype(np.float32))), (x - mean) / np.sqrt(var + 1e-5), **TOL)
    assert set(nn.LayerNorm(5, bias=False).parameters()) == {"weight"}
    with pytest.raises(ValueError, match=r"\[LayerNorm\] expected an input ending in \(4, 5\)"):
        ln2(kn.zeros((2, 5, 4)))


def test_rms_norm(rng):
    x = random_array(rng, (3, 4, 6)).astype(np.float64)
    norm = randomize(nn.RMSNorm(6, eps=1e-6), rng)
    assert_close(norm(kn.array(x.astype(np.float32))),
                 x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * f64(norm.weight), **TOL)
    norm2 = randomize(nn.RMSNorm((4, 6)), rng)
    assert_close(norm2(kn.array(x.astype(np.float32))),
                 x / np.sqrt((x ** 2).mean((-2, -1), keepdims=True) + 1e-5) * f64(norm2.weight), **TOL)
    assert nn.RMSNorm(6, elementwise_affine=False).parameters() == {}


def test_group_norm(rng):
    gn = randomize(nn.GroupNorm(3, 6, eps=1e-4), rng)
    x = random_array(rng, (2, 4, 5, 6)).astype(np.float64)
    g = x.reshape(2, 4, 5, 3, 2)
    mean, var = g.mean((1, 2, 4), keepdims=True), g.var((1, 2, 4), keepdims=True)
    want = ((g - mean) / np.sqrt(var + 1e-4)).reshape(x.shape) * f64(gn.weight) + f64(gn.bias)
    assert_close(gn(kn.array(x.astype(np.float32))), want, **TOL)
    with pytest.raises(ValueError, match=r"\[GroupNorm\] num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)


def test_embedding(rng):
    emb = nn.Embedding(10, 4, padding_idx=-1)
    assert emb.weight.shape == (10, 4) and emb.padding_idx == 9
    assert not np.any(np.array(emb.weight)[9]) and np.all(np.array(emb.weight)[:9] != 0)
    ids = rng.integers(0, 10, size=(3, 5))
    assert_close(emb(kn.array(ids)), np.array(emb.weight)[ids])
    x = random_array(rng, (2, 4))
    assert_close(emb.as_linear(kn.array(x)), x.astype(np.float64) @ f64(emb.weight).T, **TOL)
    with pytest.raises(IndexError, match=r"\[Embedding\] padding_idx 10"):
        nn.Embedding(10, 4, padding_idx=10)


def test_dropout(rng):
    kn.random.seed(int(rng.integers(0, 2 ** 31)))
    x = random_array(rng, (200, 50), low=0.5, high=2.0)
    drop = nn.Dropout(0.3)
    y = np.array(drop(kn.array(x)))
    kept = y != 0
    # 10000 Bernoulli(0.7) draws: the kept fraction is within 6 standard deviations (0.0275) of 0.7.
    assert abs(kept.mean() - 0.7) < 0.03
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    assert_close(drop.eval()(kn.array(x)), x)
    assert_close(nn.Dropout(1.0)(kn.array(x)), np.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[Dropout\] p must be in \[0, 1\]"):
        nn.Dropout(1.5)


def mha_ref(q, k, v, params, heads, mask=None):
    """Batch-first multi-head attention in float64: (output, weights averaged over heads, per-head weights)."""
    e = q.shape[-1]
    if "in_proj_weight" in params:
        wq, wk, wv = np.split(params["in_proj_weight"], 3)
    else:
        wq, wk, wv = params["q_proj_weight"], params["k_proj_weight"], params["v_proj_weight"]
    bq, bk, bv = np.split(params.get("in_proj_bias", np.zeros(3 * e)), 3)

    def split(x, w, b):
        y = x @ w.T + b
        return y.reshape(x.shape[0], x.shape[1], heads, -1).transpose(0, 2, 1, 3)

    qh, kh, vh = split(q, wq, bq), split(k, wk, bk), split(v, wv, bv)
    scores = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(e // heads)
    if mask is not None:
        scores = scores + mask
    p = softmax_ref(scores)
    out = (p @ vh).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], e)
    out = out @ params["out_proj.weight"].T + params.get("out_proj.bias", 0)
    return out, p.mean(1), p


def test_multi_head_attention(rng):
    mha = randomize(nn.MultiHeadAttention(8, 2, batch_first=True), rng).eval()
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                       "out_proj.bias"]
    params = {n: f64(a) for n, a in mha.named_parameters()}
    q, k = random_array(rng, (2, 3, 8)), random_array(rng, (2, 5, 8))
    v = random_array(rng, (2, 5, 8))
    want, want_w, want_heads = mha_ref(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), params, 2)
    out, w = mha(kn.array(q), kn.array(k), kn.array(v))
    assert_close(out, want, **TOL)
    assert_close(w, want_w, **TOL)
    out, w = mha(kn.array(q), kn.array(k), kn.array(v), need_weights=False)
    assert w is None
    assert_close(out, want, **TOL)
    _, w = mha(kn.array(q), kn.array(k), kn.array(v), average_attn_weights=False)
    assert_close(w, want_heads, **TOL)

    # Masks: bool True hides a position (as in PyTorch); a float mask adds; key padding per batch.
    attn_mask = rng.random((3, 5)) < 0.3
    attn_mask[:, 0] = False
    padding = np.zeros((2, 5), bool)
    padding[1, 3:] = True
    additive = np.where(attn_mask, -np.inf, 0)[None, None] + np.where(padding, -np.inf, 0)[:, None, None]
    want, want_w, _ = mha_ref(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), params, 2, additive)
    for need in (True, False):
        out, w = mha(kn.array(q), kn.array(k), kn.array(v), attn_mask=kn.array(attn_mask),
                     key_padding_mask=kn.array(padding), need_weights=need)
        assert_close(out, want, **TOL)
    assert_close(w if w is not None else mha(kn.array(q), kn.array(k), kn.array(v), attn_mask=kn.array(attn_mask),
                                             key_padding_mask=kn.array(padding))[1], want_w, **TOL)
    float_mask = random_array(rng, (4, 3, 5))  # (N * heads, L, S)
    want, _, _ = mha_ref(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), params, 2,
                         float_mask.astype(np.float64).reshape(2, 2, 3, 5))
    assert_close(mha(kn.array(q), kn.array(k), kn.array(v), attn_mask=kn.array(float_mask))[0], want, **TOL)

    # Self-attention with the causal mask, sequence-first, and unbatched.
    seq = nn.MultiHeadAttention(8, 4).eval()
    params = {n: f64(a) for n, a in seq.named_parameters()}
    x = random_array(rng, (4, 2, 8))  # (L, N, E)
    causal = np.triu(np.full((4, 4), -np.inf), 1)
    xb = x.transpose(1, 0, 2).astype(np.float64)
    want, _, _ = mha_ref(xb, xb, xb, params, 4, causal)
    out, _ = seq(kn.array(x), kn.array(x), kn.array(x), is_causal=True, need_weights=False)
    assert_close(out, want.transpose(1, 0, 2), **TOL)
    out, w = seq(kn.array(x[:, 0]), kn.array(x[:, 0]), kn.array(x[:, 0]))
    want, want_w, _ = mha_ref(xb[:1], xb[:1], xb[:1], params, 4)
    assert_close(out, want[0], **TOL)
    assert_close(w, want_w[0], **TOL)


def test_multi_head_attention_kdim_vdim(rng):
    mha = randomize(nn.MultiHeadAttention(6, 3, kdim=4, vdim=5, bias=False, batch_first=True), rng)
    assert [n for n, _ in mha.named_parameters()] == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                                       "out_proj.weight"]
    params = {n: f64(a) for n, a in mha.named_parameters()}
    q, k, v = random_array(rng, (2, 3, 6)), random_array(rng, (2, 4, 4)), random_array(rng, (2, 4, 5))
    want, _, _ = mha_ref(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), params, 3)
    assert_close(mha(kn.array(q), kn.array(k), kn.array(v), need_weights=False)[0], want, **TOL)
    with pytest.raises(ValueError, match=r"\[MultiHeadAttention\] expected query, key and value with 6, 4 and 5"):
        mha(kn.array(q), kn.array(q), kn.array(v))


# ---- losses ----

def ce_ref(logits, targets, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy with class indices on the last axis, from the smoothed target distribution
    q = (1 - ls) one_hot(t) + ls / C: loss_i = -sum_c w_c q_c log p_c; 'mean' divides by sum_i w_{t_i}."""
    classes = logits.shape[-1]
    w = np.ones(classes) if weight is None else weight
    valid = targets != ignore_index
    q = np.eye(classes)[np.where(valid, targets, 0)] * (1 - label_smoothing) + label_smoothing / classes
    per = np.where(valid, -(w * q * log_softmax_ref(logits)).sum(-1), 0.0)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / np.where(valid, w[np.where(valid, targets, 0)], 0).sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_indices(rng, reduction, label_smoothing, weighted):
    logits = random_array(rng, (4, 3, 5), low=-4, high=4)
    targets = rng.integers(0, 5, size=(4, 3))
    targets[0, 1] = -100
    weight = rng.uniform(0.2, 2.0, 5) if weighted else None
    want = ce_ref(logits.astype(np.float64), targets, weight, reduction=reduction, label_smoothing=label_smoothing)
    got = nn.cross_entropy(kn.array(logits), kn.array(targets), weight=None if weight is None else kn.array(weight),
                           reduction=reduction, label_smoothing=label_smoothing)
    assert_close(got, want, **TOL)
    # Classes on axis 1, as PyTorch lays them out.
    got = nn.losses.cross_entropy(kn.array(np.moveaxis(logits, -1, 1)), kn.array(targets),
                                  weight=None if weight is None else kn.array(weight), axis=1, reduction=reduction,
                                  label_smoothing=label_smoothing)
    assert_close(got, want, **TOL)


def test_cross_entropy_probabilities(rng):
    logits = random_array(rng, (6, 4)).astype(np.float64)
    probs = softmax_ref(random_array(rng, (6, 4)).astype(np.float64))
    weight = rng.uniform(0.5, 1.5, 4)
    q = probs * 0.9 + 0.1 / 4
    want = -(weight * q * log_softmax_ref(logits)).sum(-1)
    got = nn.cross_entropy(kn.array(logits.astype(np.float32)), kn.array(probs.astype(np.float32)),
                           weight=kn.array(weight.astype(np.float32)), label_smoothing=0.1, reduction="none")
    assert_close(got, want, **TOL)
    assert_close(nn.cross_entropy(kn.array(logits.astype(np.float32)), kn.array(probs.astype(np.float32))),
                 -(probs * log_softmax_ref(logits)).sum(-1).mean(), **TOL)


def test_nll_loss(rng):
    logp = log_softmax_ref(random_array(rng, (5, 7)).astype(np.float64))
    targets = rng.integers(0, 7, size=5)
    targets[2] = 3
    weight = rng.uniform(0.5, 2, 7)
    picked = logp[np.arange(5), targets]
    got = nn.nll_loss(kn.array(logp.astype(np.float32)), kn.array(targets), weight=kn.array(weight))
    assert_close(got, -(weight[targets] * picked).sum() / weight[targets].sum(), **TOL)
    got = nn.nll_loss(kn.array(logp.astype(np.float32)), kn.array(targets), ignore_index=3, reduction="sum")
    assert_close(got, -picked[targets != 3].sum(), **TOL)
    with pytest.raises(ValueError, match=r"\[nll_loss\] class targets of shape \(4,\) do not fit input \(5, 7\)"):
        nn.nll_loss(kn.array(logp), kn.array(targets[:4]))
    with pytest.raises(ValueError, match=r"\[nll_loss\] reduction must be 'mean', 'sum' or 'none'"):
        nn.nll_loss(kn.array(logp), kn.array(targets), reduction="avg")


def test_regression_losses(rng):
    x = random_array(rng, (4, 6)).astype(np.float64)
    t = random_array(rng, (4, 6)).astype(np.float64)
    d = x - t
    a, b = kn.array(x.astype(np.float32)), kn.array(t.astype(np.float32))
    assert_close(nn.mse_loss(a, b), (d ** 2).mean(), **TOL)
    assert_close(nn.mse_loss(a, b, reduction="none"), d ** 2, **TOL)
    assert_close(nn.l1_loss(a, b, reduction="sum"), np.abs(d).sum(), **TOL)
    for beta in (0.5, 1.0, 2.0):
        want = np.where(np.abs(d) < beta, 0.5 * d ** 2 / beta, np.abs(d) - 0.5 * beta)
        assert_close(nn.smooth_l1_loss(a, b, beta=beta, reduction="none"), want, **TOL)
        assert_close(nn.huber_loss(a, b, delta=beta), (want * beta).mean(), **TOL)
    assert_close(nn.smooth_l1_loss(a, b, beta=0.0), np.abs(d).mean(), **TOL)
    with pytest.raises(ValueError, match=r"\[mse_loss\] input \(4, 6\) and target \(6, 4\) must have the same shape"):
        nn.mse_loss(a, kn.transpose(b))


def test_binary_cross_entropy(rng):
    p = rng.uniform(0.01, 0.99, (5, 3))
    p[0, 0], p[0, 1] = 0.0, 1.0  # the logs clamp at -100
    t = (rng.random((5, 3)) < 0.5).astype(np.float64)
    w = rng.uniform(0.5, 2, (5, 3))
    logs = np.maximum(np.log(np.where(p > 0, p, 1e-300)), -100), np.maximum(np.log(np.where(p < 1, 1 - p, 1e-300)),
                                                                           -100)
    want = -(t * logs[0] + (1 - t) * logs[1])
    got = nn.binary_cross_entropy(kn.array(p.astype(np.float32)), kn.array(t.astype(np.float32)),
                                  weight=kn.array(w.astype(np.float32)), reduction="none")
    assert_close(got, want * w, rtol=1e-4, atol=1e-4)
    assert_close(nn.binary_cross_entropy(kn.array(p.astype(np.float32)), kn.array(t.astype(np.float32))),
                 want.mean(), rtol=1e-4, atol=1e-4)

    x = random_array(rng, (5, 3), low=-30, high=30).astype(np.float64)
    pos = rng.uniform(0.5, 3, 3)
    # -[pos t log s + (1 - t) log(1 - s)] written with log-sigmoids, exact for large |x|.
    log_s, log_1s = -softplus_ref(-x), -softplus_ref(x)
    want = -(pos * t * log_s + (1 - t) * log_1s)
    got = nn.binary_cross_entropy_with_logits(kn.array(x.astype(np.float32)), kn.array(t.astype(np.float32)),
                                              pos_weight=kn.array(pos.astype(np.float32)), reduction="none")
    assert_close(got, want, **TOL)
    got = nn.binary_cross_entropy_with_logits(kn.array(x.astype(np.float32)), kn.array(t.astype(np.float32)))
    assert_close(got, -(t * log_s + (1 - t) * log_1s).mean(), **TOL)


def test_kl_div(rng):
    logq = log_softmax_ref(random_array(rng, (4, 5)).astype(np.float64))
    p = softmax_ref(random_array(rng, (4, 5)).astype(np.float64))
    p[0, 0] = 0.0
    want = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - logq), 0)
    got = nn.kl_div(kn.array(logq.astype(np.float32)), kn.array(p.astype(np.float32)), reduction="batchmean")
    assert_close(got, want.sum() / 4, **TOL)
    lp = np.log(p[1:])
    got = nn.kl_div(kn.array(logq[1:].astype(np.float32)), kn.array(lp.astype(np.float32)), log_target=True,
                    reduction="sum")
    assert_close(got, (np.exp(lp) * (lp - logq[1:])).sum(), **TOL)


def test_init(rng):
    kn.random.seed(int(rng.integers(0, 2 ** 31)))
    w = kn.zeros((3000, 3, 4, 2))  # a convolution weight: fan_in 2 * 12 = 24, fan_out 3000 * 12 = 36000
    assert nn.init.fans(w.shape) == (24, 36000)
    bound = math.sqrt(6 / (24 + 36000))
    a = np.array(nn.init.xavier_uniform()(w))
    assert a.shape == w.shape and np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    # The standard deviations of 72000 draws are within 2% (about 7 standard errors) of the definitions.
    assert abs(np.array(nn.init.xavier_normal(2.0)(w)).std() / (2 * math.sqrt(2 / 36024)) - 1) < 0.02
    assert abs(np.array(nn.init.kaiming_normal()(w)).std() / math.sqrt(2 / 24) - 1) < 0.02
    k = np.array(nn.init.kaiming_uniform(mode="fan_out")(w))
    assert np.abs(k).max() <= math.sqrt(2) * math.sqrt(3 / 36000)
    u = np.array(nn.init.uniform(2, 3)(w.astype(kn.float16)))
    assert u.dtype == np.float16 and u.min() >= 2 and u.max() <= 3
    assert_close(nn.init.constant(0.5)(w[0]), np.full((3, 4, 2), 0.5))
    with pytest.raises(ValueError, match=r"\[init\] fans need a weight of at least 2 dimensions"):
        nn.init.xavier_uniform()(kn.zeros((3,)))


# ---- the Module tree ----

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.norms = [nn.LayerNorm(3), nn.RMSNorm(3)]
        self.heads = {"a": nn.Linear(3, 2), "b": nn.Linear(3, 1, bias=False)}
        self.scale = kn.ones((3,))
        self.kernel = (3, 3)  # not in the tree: no arrays or modules
        self._cache = kn.zeros((2,))  # private

    def __call__(self, x):
        y = self.norms[1](self.norms[0](self.proj(x))) * self.scale
        return kn.concatenate([self.heads["a"](y), self.heads["b"](y)], axis=-1)


BLOCK_NAMES = ["proj.weight", "proj.bias", "norms.0.weight", "norms.0.bias", "norms.1.weight", "heads.a.weight",
               "heads.a.bias", "heads.b.weight", "scale"]


def test_parameter_tree():
    b = Block()
    p = b.parameters()
    assert list(p) == ["proj", "norms", "heads", "scale"]
    assert list(p["proj"]) == ["weight", "bias"] and p["proj"]["weight"] is b.proj.weight
    assert isinstance(p["norms"], list) and [list(n) for n in p["norms"]] == [["weight", "bias"], ["weight"]]
    assert list(p["heads"]) == ["a", "b"] and list(p["heads"]["b"]) == ["weight"]
    assert [n for n, _ in b.named_parameters()] == BLOCK_NAMES
    assert list(b.state_dict()) == BLOCK_NAMES
    assert b.num_parameters() == 4 * 3 + 3 + 3 + 3 + 3 + 3 * 2 + 2 + 3 + 3
    assert [n for n, _ in b.named_modules()] == ["", "proj", "norms.0", "norms.1", "heads.a", "heads.b"]
    assert [n for n, _ in b.named_children()] == ["proj", "norms.0", "norms.1", "heads.a", "heads.b"]
    assert "(heads.b): Linear(in_features=3, out_features=1, bias=False)" in repr(b)


def test_update(rng):
    b = Block()
    x = kn.array(random_array(rng, (2, 4)))
    w = random_array(rng, (3, 4))
    assert b.update({"proj": {"weight": w}}) is b  # nested, a NumPy value
    assert_close(b.proj.weight, w)
    s = random_array(rng, (3,))
    b.update({"norms.1.weight": kn.array(s), "scale": s * 2})  # flat dotted names
    assert_close(b.norms[1].weight, s)
    assert_close(b.scale, s * 2)
    b.update([("heads.b.weight", np.ones((1, 3), np.float32))])
    assert_close(b.heads["b"].weight, np.ones((1, 3)))
    before = np.array(b(x))
    with pytest.raises(ValueError, match=r"^\[update\] Block has no parameter 'proj\.wieght', 'extra'$"):
        b.update({"scale": np.zeros(3, np.float32), "proj.wieght": w, "extra": w})
    assert_close(b(x), before)  # nothing changed
    b.update({"extra": w, "scale": np.zeros(3, np.float32)}, strict=False)
    assert_close(b.scale, np.zeros(3))
    b.update(Block().parameters())  # the tree parameters() returns goes back in

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.biases = [kn.zeros((2,)), kn.zeros((3,))]
            self.pair = (kn.zeros((1,)),)

    h = Holder()
    assert [n for n, _ in h.named_parameters()] == ["biases.0", "biases.1", "pair.0"]
    h.update({"biases.1": np.arange(3, dtype=np.float32)})
    assert_close(h.biases[1], np.arange(3))
    with pytest.raises(TypeError, match=r"'pair\.0' of Holder is an array in a tuple"):
        h.update({"pair.0": np.ones(1, np.float32)})


def test_train_eval():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm(2), nn.ReLU()))
    assert all(x.training for x in m.modules()) and len(m.modules()) == 6
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m[2].train()
    assert [x.training for x in m.modules()] == [False, False, False, True, True, True]
    m.train()
    assert all(x.training for x in m.modules())


def test_sequential(rng):
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.GELU()), nn.Linear(8, 2))
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight",
                                                    "3.bias"]
    assert len(m) == 4 and isinstance(m[2], nn.Sequential) and list(m)[1] is m[1]
    x = random_array(rng, (3, 4)).astype(np.float64)
    p = {n: f64(a) for n, a in m.named_parameters()}
    h = np.maximum(x @ p["0.weight"].T + p["0.bias"], 0)
    h = h @ p["2.0.weight"].T + p["2.0.bias"]
    h = 0.5 * h * (1 + _erf(h / math.sqrt(2)))
    assert_close(m(kn.array(x.astype(np.float32))), h @ p["3.weight"].T + p["3.bias"], **TOL)
    m.append(nn.Tanh())
    assert len(m) == 5 and "(4): Tanh()" in repr(m)
    assert nn.Sequential(lambda t: t * 2)(kn.array(x)).shape == x.shape  # plain callables run too


def test_subclassing(rng):
    class TorchStyle(nn.Module):  # defines forward
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, scale=1.0):
            return self.fc(x) * scale

    class MLXStyle(nn.Module):  # defines __call__, and skips super().__init__()
        def __init__(self):
            self.inner = TorchStyle()

        def __call__(self, x):
            return nn.relu(self.inner(x, scale=2.0))

    m = MLXStyle()
    x = random_array(rng, (4, 3)).astype(np.float64)
    p = {n: f64(a) for n, a in m.named_parameters()}
    assert list(p) == ["inner.fc.weight", "inner.fc.bias"]
    want = np.maximum(2 * (x @ p["inner.fc.weight"].T + p["inner.fc.bias"]), 0)
    assert_close(m(kn.array(x.astype(np.float32))), want, **TOL)
    assert_close(m.forward(kn.array(x.astype(np.float32))), want, **TOL)
    assert m.training and not m.eval().training

    class Empty(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="Empty defines neither __call__ nor forward"):
        Empty()(x)
    with pytest.raises(NotImplementedError, match="Empty defines neither __call__ nor forward"):
        Empty().forward(x)


# ---- loading and saving ----

def test_load_weights_errors(tmp_path, rng):
    m = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
    old = {n: np.array(a) for n, a in m.named_parameters()}
    fresh = {n: random_array(rng, a.shape) for n, a in old.items()}

    def unchanged():
        for n, a in m.named_parameters():
            np.testing.assert_array_equal(np.array(a), old[n])

    missing = {n: a for n, a in fresh.items() if n != "1.bias"}
    with pytest.raises(ValueError, match=r"^\[load_weights\] the weights given does not fit Sequential: "
                                         r"missing '1\.bias'$"):
        m.load_weights(missing)
    with pytest.raises(ValueError, match=r"unexpected '2\.weight'"):
        m.load_weights(dict(fresh, **{"2.weight": fresh["1.bias"]}))
    wrong = dict(fresh, **{"0.weight": random_array(rng, (4, 3))})
    with pytest.raises(ValueError, match=r"shape mismatch: '0\.weight' is \(4, 3\) in the checkpoint but \(3, 4\) "
                                         r"in the module"):
        m.load_weights(wrong)
    # Every problem in one message.
    everything = {n: a for n, a in wrong.items() if n != "0.bias"}
    everything["head.weight"] = fresh["0.bias"]
    with pytest.raises(ValueError, match=r"missing '0\.bias'; unexpected 'head\.weight'; shape mismatch: '0\.weight'"):
        m.load_weights(everything)
    unchanged()
    # Non-strict: what fits loads, the rest is ignored; a shape mismatch is still refused.
    with pytest.raises(ValueError, match="shape mismatch"):
        m.load_weights(everything, strict=False)
    unchanged()
    m.load_weights({"0.weight": fresh["0.weight"], "extra": fresh["0.bias"]}, strict=False)
    assert_close(m[0].weight, fresh["0.weight"])
    assert_close(m[0].bias, old["0.bias"])
    # Nested trees and lists of pairs load as flat dicts do.
    m.load_weights({"0": {"weight": fresh["0.weight"], "bias": fresh["0.bias"]},
                    "1": {"weight": fresh["1.weight"], "bias": fresh["1.bias"]}})
    m.load_weights(list(fresh.items()))
    for n, a in m.named_parameters():
        assert_close(a, fresh[n])
    with pytest.raises(FileNotFoundError, match="none.safetensors"):
        m.load_weights(str(tmp_path / "none.safetensors"))
    with pytest.raises(ValueError, match=r"\[load_weights\] '.*w\.npz': not a \.safetensors"):
        m.load_weights(str(tmp_path / "w.npz"))
    with pytest.raises(ValueError, match=r"\[load_weights\] layout must be 'torch', 'kiln' or None"):
        m.load_weights(fresh, layout="nchw")
    with pytest.raises(ValueError, match=r"\[save_weights\] '.*w\.npz': only \.safetensors"):
        m.save_weights(str(tmp_path / "w.npz"))


def test_save_and_load_safetensors(tmp_path, rng):
    b = randomize(Block(), rng)
    path = tmp_path / "block.safetensors"
    b.save_weights(path)
    b2 = Block().load_weights(str(path))
    for (n, a), (n2, a2) in zip(b.named_parameters(), b2.named_parameters()):
        assert n == n2
        np.testing.assert_array_equal(np.array(a2), np.array(a))
    half = Block().load_weights(path, dtype=kn.float16)
    assert all(a.dtype == kn.float16 for _, a in half.named_parameters())
    assert_close(half.proj.weight, np.array(b.proj.weight).astype(np.float16).astype(np.float32))
    safetensors = pytest.importorskip("safetensors.numpy", reason="the safetensors package reads the file too")
    read = safetensors.load_file(str(path))
    assert sorted(read) == sorted(BLOCK_NAMES)
    for n, a in b.named_parameters():
        np.testing.assert_array_equal(read[n], np.array(a))


def test_save_safetensors_dtypes(tmp_path, rng):
    arrays = {
        "f32": random_array(rng, (3, 4)), "f16": random_array(rng, (5,), np.float16),
        "f64": random_array(rng, (2, 2, 2), np.float64), "i8": random_array(rng, (7,), np.int8, -100, 100),
        "u16": random_array(rng, (2, 3), np.uint16, 0, 60000), "i64": random_array(rng, (4,), np.int64, -10 ** 12, 10 ** 12),
        "bool": random_array(rng, (3, 3), np.bool_), "c64": random_array(rng, (2,), np.complex64),
        "scalar": np.float32(rng.normal()), "empty": np.zeros((0, 3), np.float32),
    }
    bf16 = kn.array(random_array(rng, (2, 5))).astype(kn.bfloat16)
    path = str(tmp_path / "all.safetensors")
    kn.save_safetensors(path, dict(arrays, bf16=bf16), metadata={"format": "np", "note": "kiln"})
    back = kn.load_safetensors(path)
    assert sorted(back) == sorted(list(arrays) + ["bf16"])
    for n, a in arrays.items():
        assert back[n].shape == np.shape(a)
        np.testing.assert_array_equal(np.array(back[n]), a)
    assert back["bf16"].dtype == kn.bfloat16
    np.testing.assert_array_equal(np.array(back["bf16"].astype(kn.float32)), np.array(bf16.astype(kn.float32)))
    safetensors = pytest.importorskip("safetensors", reason="the safetensors package reads the file too")
    with safetensors.safe_open(path, "np") as f:
        assert f.metadata() == {"format": "np", "note": "kiln"}
        for n, a in arrays.items():
            np.testing.assert_array_equal(f.get_tensor(n), a)
    with pytest.raises(TypeError, match=r"\[save_safetensors\] .*metadata keys and values must be strings"):
        kn.save_safetensors(path, {}, metadata={"n": 1})


def test_load_gguf(tmp_path, rng):
    gguf = pytest.importorskip("gguf", reason="gguf-py writes the GGUF file")
    m = nn.Sequential(nn.Linear(6, 4), nn.RMSNorm(4))
    values = {"0.weight": random_array(rng, (4, 6)), "0.bias": random_array(rng, (4,)),
              "1.weight": random_array(rng, (4,))}
    path = str(tmp_path / "w.gguf")
    w = gguf.GGUFWriter(path, arch="kilntest")
    for n, a in values.items():
        w.add_tensor(n, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    m.load_weights(path)
    for n, a in m.named_parameters():
        assert_close(a, values[n])


class TinyNet(nn.Module):
    """The network of tests/fixtures/make_torch_checkpoint.py, channels-last."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm(4), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, groups=2, bias=False), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(4, 5)
        self.aux = nn.Linear(4, 5)

    def __call__(self, x):
        x = kn.reshape(self.features(x), (x.shape[0], -1))
        return self.head(x) + self.aux(x)


def tiny_net_ref(x, p):
    """TinyNet in float64 with PyTorch-layout weights p, on channels-last x, in inference mode."""
    h = conv_ref(x, np.moveaxis(p["features.0.weight"], 1, -1), (1, 1), (1, 1), (1, 1), 1) + p["features.0.bias"]
    h = (h - p["features.1.running_mean"]) / np.sqrt(p["features.1.running_var"] + 1e-5)
    h = np.maximum(h * p["features.1.weight"] + p["features.1.bias"], 0)
    h = conv_ref(h, np.moveaxis(p["features.3.weight"], 1, -1), (1, 1), (0, 0), (1, 1), 2).mean((1, 2))
    return h @ p["head.weight"].T + p["head.bias"] + h @ p["aux.weight"].T + p["aux.bias"]


def test_load_committed_torch_checkpoint(rng):
    """A torch.save'd state dict (committed, so this runs without torch) loads strictly, with the
    convolution weights moved to channels-last."""
    net = TinyNet().load_weights(os.path.join(FIXTURES, "module.pth"))
    torch_read = {n: f64(a) for n, a in kn.load_safetensors(os.path.join(FIXTURES, "module.safetensors")).items()}
    for name, a in net.named_parameters():
        want = torch_read[name]
        if name in ("features.0.weight", "features.3.weight"):
            want = np.moveaxis(want, 1, -1)
        np.testing.assert_array_equal(f64(a), want)
    x = random_array(rng, (2, 6, 6, 3))
    assert_close(net.eval()(kn.array(x)), tiny_net_ref(x.astype(np.float64), torch_read), **TOL)
    # Read as if already channels-last, the grouped convolution's weight does not fit.
    with pytest.raises(ValueError, match=r"'features\.3\.weight' is \(4, 2, 3, 3\) in the checkpoint but "
                                         r"\(4, 3, 3, 2\) in the module"):
        TinyNet().load_weights(os.path.join(FIXTURES, "module.pth"), layout="kiln")


# ---- against torch.nn ----

def to_torch(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def torch_randomize(layer, gen):
    with torch.no_grad():
        for name, t in layer.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=gen))
    return layer


def channels_last(x):
    return np.moveaxis(x, 1, -1)


# name: (torch layer, kiln layer, torch input shape, whether the input is channels-first in torch)
TORCH_LAYERS = {
    "Linear": (lambda: torch.nn.Linear(5, 3), lambda: nn.Linear(5, 3), (4, 2, 5), False),
    "Linear_nobias": (lambda: torch.nn.Linear(5, 3, bias=False), lambda: nn.Linear(5, 3, bias=False), (4, 5), False),
    "Conv1d": (lambda: torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
               lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (2, 4, 11), True),
    "Conv2d": (lambda: torch.nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
               lambda: nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)), (2, 3, 8, 7), True),
    "Conv2d_same": (lambda: torch.nn.Conv2d(4, 8, 4, padding="same", groups=4, bias=False),
                    lambda: nn.Conv2d(4, 8, 4, padding="same", groups=4, bias=False), (1, 4, 6, 5), True),
    "BatchNorm1d": (lambda: torch.nn.BatchNorm1d(6), lambda: nn.BatchNorm(6), (7, 6), False),
    "BatchNorm2d": (lambda: torch.nn.BatchNorm2d(3, eps=1e-3), lambda: nn.BatchNorm(3, eps=1e-3), (2, 3, 4, 5), True),
    "LayerNorm": (lambda: torch.nn.LayerNorm((4, 5)), lambda: nn.LayerNorm((4, 5)), (2, 3, 4, 5), False),
    "RMSNorm": (lambda: torch.nn.RMSNorm(5, eps=1e-5), lambda: nn.RMSNorm(5), (2, 3, 5), False),
    "GroupNorm": (lambda: torch.nn.GroupNorm(2, 6), lambda: nn.GroupNorm(2, 6), (2, 6, 3, 4), True),
    "MaxPool2d": (lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), lambda: nn.MaxPool2d(3, stride=2, padding=1),
                  (2, 3, 7, 8), True),
    "AvgPool2d": (lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                  lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 8), True),
    "AdaptiveAvgPool2d": (lambda: torch.nn.AdaptiveAvgPool2d((3, 2)), lambda: nn.AdaptiveAvgPool2d((3, 2)),
                          (2, 3, 7, 5), True),
    "PReLU": (lambda: torch.nn.PReLU(3), lambda: nn.PReLU(3), (2, 3, 4, 5), True),
    "Sequential": (lambda: torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                                               torch.nn.Linear(8, 2)),
                   lambda: nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 2)), (3, 6), False),
}


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("name", sorted(TORCH_LAYERS))
def test_layers_against_torch(tmp_path, rng, name):
    make_torch, make_kiln, shape, channels_first = TORCH_LAYERS[name]
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 31)))
    ref = torch_randomize(make_torch(), gen).eval()
    path = str(tmp_path / "layer.pth")
    torch.save(ref.state_dict(), path)
    x = random_array(rng, shape)
    with torch.no_grad():
        want = ref(to_torch(x)).double().numpy()
    xk = kn.array(channels_last(x) if channels_first else x)
    for source in (path, ref.state_dict()):  # the file, and the tensors themselves
        layer = make_kiln().load_weights(source).eval()
        assert [n for n, _ in layer.named_parameters()] == list(ref.state_dict())
        got = layer(xk)
        assert_close(got, channels_last(want) if channels_first else want, rtol=1e-4, atol=1e-4)


@needs_torch
def test_batchnorm_training_against_torch(rng):
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 31)))
    ref = torch_randomize(torch.nn.BatchNorm2d(3, momentum=0.2), gen).train()
    bn = nn.BatchNorm(3, momentum=0.2).load_weights(ref.state_dict())
    for _ in range(2):
        x = random_array(rng, (4, 3, 5, 2))
        with torch.no_grad():
            want = ref(to_torch(x)).numpy()
        assert_close(bn(kn.array(channels_last(x))), channels_last(want), rtol=1e-4, atol=1e-4)
    for n, t in ref.state_dict().items():
        assert_close(getattr(bn, n), t.numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_embedding_and_dropout_against_torch(rng):
    ref = torch.nn.Embedding(11, 4, padding_idx=2)
    emb = nn.Embedding(11, 4).load_weights(ref.state_dict())
    ids = rng.integers(0, 11, size=(3, 5))
    with torch.no_grad():
        assert_close(emb(kn.array(ids)), ref(to_torch(ids)).numpy())
    assert_close(nn.Dropout(0.4).eval()(kn.array(ids.astype(np.float32))),
                 torch.nn.Dropout(0.4).eval()(to_torch(ids.astype(np.float32))).numpy())


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
def test_multi_head_attention_against_torch(tmp_path, rng, batch_first):
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 31)))
    ref = torch_randomize(torch.nn.MultiheadAttention(8, 2, batch_first=batch_first), gen).eval()
    path = str(tmp_path / "mha.pth")
    torch.save(ref.state_dict(), path)
    mha = nn.MultiHeadAttention(8, 2, batch_first=batch_first).load_weights(path).eval()
    shape = (2, 3) if batch_first else (3, 2)
    q = random_array(rng, (*shape, 8))
    kshape = (shape[0], 5) if batch_first else (5, shape[1])
    k = random_array(rng, (*kshape, 8))
    v = random_array(rng, k.shape)
    attn_mask = rng.random((3, 5)) < 0.3
    attn_mask[:, 0] = False
    padding = np.zeros((2, 5), bool)
    padding[0, 4] = True
    for kwargs in ({}, {"attn_mask": attn_mask, "key_padding_mask": padding}, {"average_attn_weights": False},
                   {"need_weights": False, "attn_mask": attn_mask}):
        tk = {key: to_torch(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        kk = {key: kn.array(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        with torch.no_grad():
            want, want_w = ref(to_torch(q), to_torch(k), to_torch(v), **tk)
        got, got_w = mha(kn.array(q), kn.array(k), kn.array(v), **kk)
        assert_close(got, want.numpy(), rtol=1e-4, atol=1e-4)
        if want_w is None:
            assert got_w is None
        else:
            assert_close(got_w, want_w.numpy(), rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_against_torch(rng, name):
    import torch.nn.functional as F
    torch_fns = {
        "relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "elu": lambda t: F.elu(t, 0.7),
        "celu": lambda t: F.celu(t, 1.5), "selu": F.selu, "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu, "sigmoid": torch.sigmoid,
        "tanh": torch.tanh, "softplus": lambda t: F.softplus(t, 2.0, 3.0), "mish": F.mish, "softsign": F.softsign,
        "hardtanh": lambda t: F.hardtanh(t, -0.5, 2.0), "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish,
        "logsigmoid": F.logsigmoid, "softmax": lambda t: F.softmax(t, 1), "log_softmax": lambda t: F.log_softmax(t, -1),
        "glu": lambda t: F.glu(t, 1),
    }
    x = random_array(rng, (3, 4, 5), low=-8, high=8)
    assert_close(ACTIVATIONS[name][1](kn.array(x)), torch_fns[name](to_torch(x)).numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_against_torch(rng, reduction):
    import torch.nn.functional as F
    tol = dict(rtol=1e-4, atol=1e-5)
    logits = random_array(rng, (4, 5, 3))  # PyTorch's (N, C, d): classes on axis 1
    targets = rng.integers(0, 5, size=(4, 3))
    targets[1, 2] = -100
    weight = rng.uniform(0.2, 2.0, 5).astype(np.float32)
    for ls in (0.0, 0.15):
        for w in (None, weight):
            want = F.cross_entropy(to_torch(logits), to_torch(targets), weight=None if w is None else to_torch(w),
                                   reduction=reduction, label_smoothing=ls)
            got = nn.cross_entropy(kn.array(logits), kn.array(targets), weight=None if w is None else kn.array(w),
                                   axis=1, reduction=reduction, label_smoothing=ls)
            assert_close(got, want.numpy(), **tol)
    probs = softmax_ref(random_array(rng, (4, 5, 3)), 1).astype(np.float32)
    want = F.cross_entropy(to_torch(logits), to_torch(probs), weight=to_torch(weight), reduction=reduction,
                           label_smoothing=0.1)
    got = nn.cross_entropy(kn.array(logits), kn.array(probs), weight=kn.array(weight), axis=1, reduction=reduction,
                           label_smoothing=0.1)
    assert_close(got, want.numpy(), **tol)
    logp = F.log_softmax(to_torch(logits), 1)
    assert_close(nn.nll_loss(kn.array(logp.numpy()), kn.array(targets), weight=kn.array(weight), axis=1,
                             reduction=reduction),
                 F.nll_loss(logp, to_torch(targets), weight=to_torch(weight), reduction=reduction).numpy(), **tol)

    x, t = random_array(rng, (6, 4)), random_array(rng, (6, 4))
    pairs = [
        (nn.mse_loss, F.mse_loss, {}), (nn.l1_loss, F.l1_loss, {}), (nn.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.7}),
        (nn.huber_loss, F.huber_loss, {"delta": 1.3}),
    ]
    for ours, theirs, kw in pairs:
        assert_close(ours(kn.array(x), kn.array(t), reduction=reduction, **kw),
                     theirs(to_torch(x), to_torch(t), reduction=reduction, **kw).numpy(), **tol)
    p = rng.uniform(0, 1, (6, 4)).astype(np.float32)
    p[0, 0] = 0.0
    y = (rng.random((6, 4)) < 0.5).astype(np.float32)
    w = rng.uniform(0.5, 2, (6, 4)).astype(np.float32)
    assert_close(nn.binary_cross_entropy(kn.array(p), kn.array(y), weight=kn.array(w), reduction=reduction),
                 F.binary_cross_entropy(to_torch(p), to_torch(y), weight=to_torch(w), reduction=reduction).numpy(),
                 **tol)
    pos = rng.uniform(0.5, 3, 4).astype(np.float32)
    assert_close(nn.binary_cross_entropy_with_logits(kn.array(x * 5), kn.array(y), weight=kn.array(w),
                                                     pos_weight=kn.array(pos), reduction=reduction),
                 F.binary_cross_entropy_with_logits(to_torch(x * 5), to_torch(y), weight=to_torch(w),
                                                    pos_weight=to_torch(pos), reduction=reduction).numpy(), **tol)
    logq = F.log_softmax(to_torch(x), 1)
    target = F.softmax(to_torch(t), 1)
    for red in (reduction, "batchmean"):
        with warnings.catch_warnings():  # torch warns that its 'mean' is not 'batchmean'
            warnings.simplefilter("ignore")
            want = F.kl_div(logq, target, reduction=red).numpy()
        assert_close(nn.kl_div(kn.array(logq.numpy()), kn.array(target.numpy()), reduction=red), want, **tol)


@needs_torch
def test_model_from_torch_save(tmp_path, rng):
    """A torch.nn model's state dict, saved with torch.save, drives the same network built from kiln.nn."""

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                torch.nn.Conv2d(4, 4, 3, groups=2, bias=False), torch.nn.AdaptiveAvgPool2d(1))
            self.head = torch.nn.Linear(4, 5)
            self.aux = torch.nn.Linear(4, 5)

        def forward(self, x):
            x = self.features(x).flatten(1)
            return self.head(x) + self.aux(x)

    gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 31)))
    ref = torch_randomize(TorchNet(), gen).eval()
    path = str(tmp_path / "net.pth")
    torch.save(ref.state_dict(), path)
    net = TinyNet().load_weights(path).eval()
    x = random_array(rng, (2, 3, 6, 6))
    with torch.no_grad():
        want = ref(to_torch(x)).numpy()
    assert_close(net(kn.array(channels_last(x))), want, rtol=1e-4, atol=1e-4)
    broken = dict(ref.state_dict())
    del broken["features.1.running_var"]
    torch.save(broken, path)
    with pytest.raises(ValueError, match=r"missing 'features\.1\.running_var'"):
        TinyNet().load_weights(path)
