"""Python operators against NumPy, with arrays and scalars on either side, and their dtypes."""
import operator

import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array

ARITH = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]
COMPARE = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", ARITH + COMPARE, ids=lambda o: o.__name__)
def test_array_array_broadcasting(rng, op):
    x = random_array(rng, (3, 1, 4), low=0.5, high=2.0)
    y = random_array(rng, (5, 4), low=0.5, high=2.0)
    assert_close(op(kn.array(x), kn.array(y)), op(x, y), rtol=1e-5)


@pytest.mark.parametrize("op", ARITH + COMPARE, ids=lambda o: o.__name__)
def test_scalars_on_either_side_keep_the_dtype(rng, op):
    x = random_array(rng, (4, 3), low=0.5, high=2.0)
    s = float(rng.uniform(0.5, 2.0))
    a = kn.array(x)
    is_cmp = op in COMPARE
    assert_close(op(a, s), op(x, np.float32(s)), rtol=1e-5, dtype=kn.bool_ if is_cmp else kn.float32)
    assert_close(op(s, a), op(np.float32(s), x), rtol=1e-5, dtype=kn.bool_ if is_cmp else kn.float32)
    h = a.astype(kn.float16)
    assert op(h, s).dtype == (kn.bool_ if is_cmp else kn.float16)
    assert op(2, h).dtype == (kn.bool_ if is_cmp else kn.float16)


def test_integer_operators(rng):
    x = random_array(rng, (6, 5), np.int32, low=-50, high=50)
    y = random_array(rng, (6, 5), np.int32, low=1, high=9)
    a, b = kn.array(x), kn.array(y)
    assert_close(a // b, x // y, dtype=kn.int32)
    assert_close(a % b, x % y, dtype=kn.int32)
    assert_close(-a % 7, (-x) % 7, dtype=kn.int32)
    assert_close(100 // b, 100 // y, dtype=kn.int32)
    assert_close(a + 3, x + 3, dtype=kn.int32)
    assert_close(3 - a, 3 - x, dtype=kn.int32)
    assert_close(a & b, x & y)
    assert_close(a | 6, x | 6)
    assert_close(a ^ b, x ^ y)
    assert_close(b << 2, y << 2)
    assert_close(a >> 1, x >> 1)
    assert_close(~a, ~x)
    assert_close(a ** 2, x ** 2, dtype=kn.int32)


def test_float_operators(rng):
    x = random_array(rng, (6, 5), low=-5, high=5)
    y = random_array(rng, (6, 5), low=0.5, high=3)
    a, b = kn.array(x), kn.array(y)
    assert_close(a // b, x // y)
    assert_close(a % b, np.mod(x, y), rtol=1e-5, atol=1e-5)
    assert_close(2.0 ** a, 2.0 ** x, rtol=1e-5)
    assert_close(-a, -x)
    assert_close(+a, x)
    assert_close(abs(a), np.abs(x))


def test_weak_typing_rules():
    i32 = kn.array([1, 2], kn.int32)
    assert (i32 * 2.5).dtype == kn.float32  # a float with an integer array gives float32
    assert (i32 + 1).dtype == kn.int32
    b = kn.array([True, False])
    assert (b + 1).dtype == kn.int32
    assert (b & True).dtype == kn.bool_
    assert_close(~b, np.array([False, True]))
    u8 = kn.array([1, 2], kn.uint8)
    assert (u8 + 255).dtype == kn.uint8
    with pytest.raises(OverflowError, match="out of bounds for uint8"):
        u8 + 256
    with pytest.raises(OverflowError):
        u8 - (-1)
    assert (i32 + 1j).dtype == kn.complex64
    # NumPy scalars are strongly typed.
    assert (kn.array([1.0], kn.float16) + np.float32(1)).dtype == kn.float32


def test_matmul_operator(rng):
    x = random_array(rng, (2, 3, 4))
    y = random_array(rng, (4, 5))
    assert_close(kn.array(x) @ kn.array(y), x @ y, rtol=1e-5, atol=1e-5)
    assert_close(kn.array(x) @ y, x @ y, rtol=1e-5, atol=1e-5)


def test_equality_with_unrelated_objects_is_false():
    a = kn.array([1, 2])
    assert (a == None) is False  # noqa: E711
    assert (a != "x") is True
    with pytest.raises(TypeError):
        hash(a)
