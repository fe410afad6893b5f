"""Activation functions, and modules that apply them, with PyTorch's definitions and names. Functions taking
an axis (softmax, glu) default to the last one, the channel axis of kiln's layouts."""
from __future__ import annotations

import math
from .. import _core as kn
from .module import Module

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(x: kn.array) -> kn.array:
    """max(x, 0)."""
    return kn.maximum(x, 0)


def relu6(x: kn.array) -> kn.array:
    """min(max(x, 0), 6)."""
    return kn.clip(x, 0, 6)


def leaky_relu(x: kn.array, negative_slope: float = 0.01) -> kn.array:
    """x where x >= 0, else negative_slope * x."""
    return kn.where(x >= 0, x, x * negative_slope)


def elu(x: kn.array, alpha: float = 1.0) -> kn.array:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return kn.where(x > 0, x, kn.expm1(x) * alpha)


def celu(x: kn.array, alpha: float = 1.0) -> kn.array:
    """max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)."""
    return kn.maximum(x, 0) + kn.minimum(kn.expm1(x * (1.0 / alpha)) * alpha, 0)


def selu(x: kn.array) -> kn.array:
    """scale * elu(x, alpha) with the self-normalizing constants of Klambauer et al."""
    return elu(x, _SELU_ALPHA) * _SELU_SCALE


def gelu(x: kn.array, approximate: str = "none") -> kn.array:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses
    x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))."""
    if approximate == "none":
        return x * (1 + kn.erf(x * _SQRT_HALF)) * 0.5
    if approximate == "tanh":
        return x * (1 + kn.tanh((x + x * x * x * 0.044715) * _SQRT_2_OVER_PI)) * 0.5
    raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', not {approximate!r}")


def silu(x: kn.array) -> kn.array:
    """x * sigmoid(x) (swish)."""
    return x * kn.sigmoid(x)


def sigmoid(x: kn.array) -> kn.array:
    return kn.sigmoid(x)


def tanh(x: kn.array) -> kn.array:
    return kn.tanh(x)


def softplus(x: kn.array, beta: float = 1.0, threshold: float = 20.0) -> kn.array:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    bx = x * beta
    return kn.where(bx > threshold, x, kn.logaddexp(bx, 0) * (1.0 / beta))


def mish(x: kn.array) -> kn.array:
    """x * tanh(softplus(x))."""
    return x * kn.tanh(softplus(x))


def softsign(x: kn.array) -> kn.array:
    """x / (1 + |x|)."""
    return x / (kn.abs(x) + 1)


def hardtanh(x: kn.array, min_val: float = -1.0, max_val: float = 1.0) -> kn.array:
    """x clipped to [min_val, max_val]."""
    return kn.clip(x, min_val, max_val)


def hardsigmoid(x: kn.array) -> kn.array:
    """relu6(x + 3) / 6."""
    return kn.clip(x + 3, 0, 6) * (1.0 / 6.0)


def hardswish(x: kn.array) -> kn.array:
    """x * relu6(x + 3) / 6."""
    return x * hardsigmoid(x)


def logsigmoid(x: kn.array) -> kn.array:
    """log(sigmoid(x)) = -log(1 + exp(-x)), without overflow."""
    return -kn.logaddexp(-x, 0)


def softmax(x: kn.array, axis: int = -1) -> kn.array:
    return kn.softmax(x, axis=axis)


def log_softmax(x: kn.array, axis: int = -1) -> kn.array:
    return kn.log_softmax(x, axis=axis)


def glu(x: kn.array, axis: int = -1) -> kn.array:
    """a * sigmoid(b) for the halves a, b of x along axis."""
    if x.shape[axis] % 2:
        raise ValueError(f"[glu] axis {axis} of shape {tuple(x.shape)} has an odd length")
    a, b = kn.split(x, 2, axis=axis)
    return a * kn.sigmoid(b)


def prelu(x: kn.array, weight: kn.array) -> kn.array:
    """x where x >= 0, else weight * x; weight is one value or one per channel (the last axis)."""
    return kn.where(x >= 0, x, x * weight)


class _Activation(Module):
    def _extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))


class ReLU(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return relu(x)


class ReLU6(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return relu6(x)


class LeakyReLU(_Activation):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def __call__(self, x: kn.array) -> kn.array:
        return leaky_relu(x, self.negative_slope)


class ELU(_Activation):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def __call__(self, x: kn.array) -> kn.array:
        return elu(x, self.alpha)


class CELU(_Activation):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def __call__(self, x: kn.array) -> kn.array:
        return celu(x, self.alpha)


class SELU(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return selu(x)


class GELU(_Activation):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"[GELU] approximate must be 'none' or 'tanh', not {approximate!r}")
        self.approximate = approximate

    def __call__(self, x: kn.array) -> kn.array:
        return gelu(x, self.approximate)


class SiLU(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return silu(x)


class Sigmoid(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return kn.sigmoid(x)


class Tanh(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return kn.tanh(x)


class Softplus(_Activation):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def __call__(self, x: kn.array) -> kn.array:
        return softplus(x, self.beta, self.threshold)


class Mish(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return mish(x)


class Softsign(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return softsign(x)


class Hardtanh(_Activation):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"[Hardtanh] min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def __call__(self, x: kn.array) -> kn.array:
        return hardtanh(x, self.min_val, self.max_val)


class Hardsigmoid(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return hardsigmoid(x)


class Hardswish(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return hardswish(x)


class LogSigmoid(_Activation):
    def __call__(self, x: kn.array) -> kn.array:
        return logsigmoid(x)


class Softmax(_Activation):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def __call__(self, x: kn.array) -> kn.array:
        return kn.softmax(x, axis=self.axis)


class LogSoftmax(_Activation):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def __call__(self, x: kn.array) -> kn.array:
        return kn.log_softmax(x, axis=self.axis)


class GLU(_Activation):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def __call__(self, x: kn.array) -> kn.array:
        return glu(x, self.axis)


class PReLU(Module):
    """prelu with a learned weight: one value (num_parameters=1) or one per channel (the last axis)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.weight = kn.full((num_parameters,), init, dtype)

    def __call__(self, x: kn.array) -> kn.array:
        return prelu(x, self.weight)

    def _extra_repr(self) -> str:
        return f"num_parameters={self.weight.shape[0]}"


__all__ = [
    "relu", "relu6", "leaky_relu", "elu", "celu", "selu", "gelu", "silu", "sigmoid", "tanh", "softplus", "mish",
    "softsign", "hardtanh", "hardsigmoid", "hardswish", "logsigmoid", "softmax", "log_softmax", "glu", "prelu",
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus", "Mish",
    "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Softmax", "LogSoftmax", "GLU", "PReLU",
]
