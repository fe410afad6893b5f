"""Initializers: each returns a function from an array to a new random array of its shape and dtype.

    layer.weight = kn.nn.init.xavier_uniform()(layer.weight)

Fans count kiln's layouts: a linear weight is (out, in), a convolution weight (C_out, *kernel, C_in), so
fan_in = C_in * kernel size and fan_out = C_out * kernel size.
"""
from __future__ import annotations

import math
from typing import Callable, Tuple

from .. import _core as kn

Initializer = Callable[[kn.array], kn.array]


def fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape."""
    if len(shape) < 2:
        raise ValueError(f"[init] fans need a weight of at least 2 dimensions, not shape {tuple(shape)}")
    receptive = math.prod(shape[1:-1])
    return shape[-1] * receptive, shape[0] * receptive


def _uniform(a: kn.array, bound: float) -> kn.array:
    return kn.random.uniform(-bound, bound, a.shape, a.dtype)


def _normal(a: kn.array, mean: float, std: float) -> kn.array:
    return kn.random.normal(a.shape, a.dtype, loc=mean, scale=std)


def constant(value: float) -> Initializer:
    return lambda a: kn.full(a.shape, value, a.dtype)


def uniform(low: float = 0.0, high: float = 1.0) -> Initializer:
    return lambda a: kn.random.uniform(low, high, a.shape, a.dtype)


def normal(mean: float = 0.0, std: float = 1.0) -> Initializer:
    return lambda a: _normal(a, mean, std)


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """Uniform in +-gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio)."""
    def init(a: kn.array) -> kn.array:
        fan_in, fan_out = fans(a.shape)
        return _uniform(a, gain * math.sqrt(6.0 / (fan_in + fan_out)))
    return init


def xavier_normal(gain: float = 1.0) -> Initializer:
    """Normal with std gain * sqrt(2 / (fan_in + fan_out))."""
    def init(a: kn.array) -> kn.array:
        fan_in, fan_out = fans(a.shape)
        return _normal(a, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
    return init


def kaiming_uniform(gain: float = math.sqrt(2.0), mode: str = "fan_in") -> Initializer:
    """Uniform in +-gain * sqrt(3 / fan) (He et al.); gain sqrt(2) suits ReLU."""
    def init(a: kn.array) -> kn.array:
        return _uniform(a, gain * math.sqrt(3.0 / _fan(a.shape, mode)))
    return init


def kaiming_normal(gain: float = math.sqrt(2.0), mode: str = "fan_in") -> Initializer:
    """Normal with std gain / sqrt(fan)."""
    def init(a: kn.array) -> kn.array:
        return _normal(a, 0.0, gain / math.sqrt(_fan(a.shape, mode)))
    return init


def _fan(shape: Tuple[int, ...], mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"[init] mode must be 'fan_in' or 'fan_out', not {mode!r}")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def default_uniform(shape: Tuple[int, ...], fan_in: int, dtype: kn.Dtype) -> kn.array:
    """PyTorch's default for linear and convolution weights and biases: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return kn.random.uniform(-bound, bound, shape, dtype)
