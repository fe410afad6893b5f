"""Elementwise functions against NumPy on random inputs, on every device."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array

# name -> (NumPy reference, input range)
UNARY = {
    "abs": (np.abs, (-3, 3)), "negative": (np.negative, (-3, 3)), "sign": (np.sign, (-3, 3)),
    "exp": (np.exp, (-3, 3)), "exp2": (np.exp2, (-3, 3)), "log": (np.log, (0.1, 5)), "log2": (np.log2, (0.1, 5)),
    "log10": (np.log10, (0.1, 5)), "log1p": (np.log1p, (-0.5, 3)), "expm1": (np.expm1, (-2, 2)),
    "sqrt": (np.sqrt, (0, 5)), "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 5)), "square": (np.square, (-3, 3)),
    "reciprocal": (np.reciprocal, (0.5, 3)), "sin": (np.sin, (-3, 3)), "cos": (np.cos, (-3, 3)),
    "tan": (np.tan, (-1.2, 1.2)), "arcsin": (np.arcsin, (-0.99, 0.99)), "arccos": (np.arccos, (-0.99, 0.99)),
    "arctan": (np.arctan, (-3, 3)), "sinh": (np.sinh, (-3, 3)), "cosh": (np.cosh, (-3, 3)),
    "tanh": (np.tanh, (-3, 3)), "arcsinh": (np.arcsinh, (-3, 3)), "arccosh": (np.arccosh, (1.01, 5)),
    "arctanh": (np.arctanh, (-0.99, 0.99)), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-5, 5)),
    "floor": (np.floor, (-3, 3)), "ceil": (np.ceil, (-3, 3)), "round": (np.round, (-3, 3)),
}

BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "arctan2": np.arctan2, "logaddexp": np.logaddexp,
    "power": np.power, "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(rng, device, name):
    ref_fn, (lo, hi) = UNARY[name]
    x = random_array(rng, (7, 9), np.float64, low=lo, high=hi).astype(np.float32)
    out = getattr(kn, name)(kn.array(x), stream=device)
    assert out.dtype == kn.float32
    assert_close(out, ref_fn(x.astype(np.float64)), rtol=2e-5, atol=2e-6)


def test_erf_and_erfinv(rng):
    import math

    x = random_array(rng, (50,), low=-0.99, high=0.99)
    erf_ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert_close(kn.erf(x), erf_ref, rtol=1e-5, atol=1e-6)
    assert_close(kn.erf(kn.erfinv(x)), x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(rng, device, name):
    x = random_array(rng, (4, 1, 6), low=0.5, high=3)
    y = random_array(rng, (5, 6), low=0.5, high=3)
    out = getattr(kn, name)(x, kn.array(y), stream=device)
    assert_close(out, BINARY[name](x.astype(np.float64), y.astype(np.float64)), rtol=2e-5, atol=2e-6)


def test_integer_binary(rng):
    x = random_array(rng, (30,), np.int32, low=-40, high=40)
    y = random_array(rng, (30,), np.int32, low=1, high=6)
    for name, ref in (("floor_divide", np.floor_divide), ("remainder", np.remainder), ("bitwise_and", np.bitwise_and),
                      ("bitwise_or", np.bitwise_or), ("bitwise_xor", np.bitwise_xor),
                      ("left_shift", np.left_shift), ("right_shift", np.right_shift)):
        assert_close(getattr(kn, name)(x, y), ref(x, y), dtype=kn.int32)


def test_logical_and_predicates(rng):
    p = random_array(rng, (20,), np.bool_)
    q = random_array(rng, (20,), np.bool_)
    assert_close(kn.logical_and(p, q), p & q, dtype=kn.bool_)
    assert_close(kn.logical_or(p, q), p | q)
    assert_close(kn.logical_xor(p, q), p ^ q)
    assert_close(kn.logical_not(p), ~p)
    x = np.array([0.0, np.nan, np.inf, -np.inf, 1.5], np.float32)
    assert_close(kn.isnan(x), np.isnan(x))
    assert_close(kn.isinf(x), np.isinf(x))
    assert_close(kn.isfinite(x), np.isfinite(x))
    ints = random_array(rng, (10,), np.int16, low=-100, high=100)
    assert_close(kn.bitwise_invert(ints), ~ints, dtype=kn.int16)


def test_type_promotion(rng):
    cases = [(np.int8, np.int16), (np.uint8, np.int8), (np.int32, np.int64), (np.float16, np.float32),
             (np.uint16, np.uint32), (np.float32, np.float64), (np.bool_, np.int8)]
    for a_dt, b_dt in cases:
        x = random_array(rng, (5,), a_dt, low=0, high=10)
        y = random_array(rng, (5,), b_dt, low=0, high=10)
        out = kn.add(x, y)
        expected = np.add(x, y)
        assert str(out.dtype) == str(expected.dtype), (a_dt, b_dt, out.dtype)
        assert_close(out, expected)
    assert kn.promote_types(kn.int32, kn.float16) == kn.float16  # kiln's (and MLX's) rule


def test_where_clip_and_casts(rng, device):
    x = random_array(rng, (6, 7))
    cond = x > 0
    assert_close(kn.where(cond, x, 0.0, stream=device), np.where(cond, x, 0).astype(np.float32), dtype=kn.float32)
    assert_close(kn.where(kn.array(cond), 1, x), np.where(cond, 1, x).astype(np.float32))
    assert_close(kn.clip(x, -1.0, 0.5), np.clip(x, -1.0, 0.5), dtype=kn.float32)
    assert_close(kn.clip(x, lo=0.0), np.clip(x, 0.0, None))
    assert_close(kn.clip(x, hi=kn.array(x[0])), np.minimum(x, x[0]))
    assert_close(kn.view(kn.array(x), kn.int32), x.view(np.int32), dtype=kn.int32)
    assert_close(kn.view(kn.array(x), kn.uint8), x.view(np.uint8), dtype=kn.uint8)
    t = kn.transpose(kn.array(x))
    assert_close(kn.contiguous(t), x.T)
    assert_close(kn.copy(t), x.T)
