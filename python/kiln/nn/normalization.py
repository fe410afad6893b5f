"""Normalization layers, with PyTorch's parameter names. Channels are the last axis, as in kiln's
convolutions: BatchNorm and GroupNorm take (N, ..., C)."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

from .. import _core as kn
from .module import Module


def _shape(normalized_shape: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(d) for d in normalized_shape)


def _check_trailing(x: kn.array, shape: Tuple[int, ...], layer: str) -> None:
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"[{layer}] expected an input ending in {shape}, got shape {tuple(x.shape)}")


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape axes (kn.fast.layer_norm);
    weight ones and bias zeros of normalized_shape (with elementwise_affine; bias=False drops the bias)."""

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = eps
        self.weight = kn.ones(self.normalized_shape, dtype) if elementwise_affine else None
        self.bias = kn.zeros(self.normalized_shape, dtype) if elementwise_affine and bias else None

    def __call__(self, x: kn.array) -> kn.array:
        _check_trailing(x, self.normalized_shape, "LayerNorm")
        if len(self.normalized_shape) == 1:
            return kn.fast.layer_norm(x, self.weight, self.bias, self.eps)
        # Several axes: normalize them flattened into one.
        flat = kn.reshape(x, (*x.shape[:x.ndim - len(self.normalized_shape)], -1))
        w = None if self.weight is None else kn.reshape(self.weight, (-1,))
        b = None if self.bias is None else kn.reshape(self.bias, (-1,))
        return kn.reshape(kn.fast.layer_norm(flat, w, b, self.eps), x.shape)

    def _extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class RMSNorm(Module):
    """x / sqrt(mean(x**2) + eps) * weight over the trailing normalized_shape axes (kn.fast.rms_norm); weight
    ones of normalized_shape (with elementwise_affine)."""

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5, elementwise_affine: bool = True,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = eps
        self.weight = kn.ones(self.normalized_shape, dtype) if elementwise_affine else None

    def __call__(self, x: kn.array) -> kn.array:
        _check_trailing(x, self.normalized_shape, "RMSNorm")
        if len(self.normalized_shape) == 1:
            return kn.fast.rms_norm(x, self.weight, self.eps)
        flat = kn.reshape(x, (*x.shape[:x.ndim - len(self.normalized_shape)], -1))
        w = None if self.weight is None else kn.reshape(self.weight, (-1,))
        return kn.reshape(kn.fast.rms_norm(flat, w, self.eps), x.shape)

    def _extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class GroupNorm(Module):
    """Normalizes each sample over groups of channels: (N, ..., C) with C split into num_groups groups, each
    normalized over its channels and every spatial position; then weight and bias per channel (affine)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"[GroupNorm] num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = kn.ones((num_channels,), dtype) if affine else None
        self.bias = kn.zeros((num_channels,), dtype) if affine else None

    def __call__(self, x: kn.array) -> kn.array:
        if x.ndim < 2 or x.shape[-1] != self.num_channels:
            raise ValueError(f"[GroupNorm] expected (N, ..., {self.num_channels}), got shape {tuple(x.shape)}")
        g = self.num_groups
        grouped = kn.reshape(x, (x.shape[0], -1, g, self.num_channels // g))
        mean = kn.mean(grouped, axis=[1, 3], keepdims=True)
        var = kn.var(grouped, axis=[1, 3], keepdims=True)
        y = kn.reshape((grouped - mean) * kn.rsqrt(var + self.eps), x.shape)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def _extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.weight is not None}"


class BatchNorm(Module):
    """Batch normalization over the last (channel) axis of (N, ..., C), as PyTorch's BatchNorm1d/2d/3d do over
    axis 1. Parameters as PyTorch names them: weight and bias (affine), running_mean, running_var and
    num_batches_tracked (track_running_stats), so state dicts load strictly.

    In training mode (or without running statistics) it normalizes with the batch's mean and biased variance
    and, when tracking, updates the running statistics: running = (1 - momentum) * running + momentum * batch,
    with the unbiased variance (momentum None: the cumulative average). In inference mode it uses the running
    statistics. The updates are lazy arrays like any other: kn.eval(model.parameters()) materializes them."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = kn.ones((num_features,), dtype) if affine else None
        self.bias = kn.zeros((num_features,), dtype) if affine else None
        self.running_mean: Optional[kn.array] = None
        self.running_var: Optional[kn.array] = None
        self.num_batches_tracked: Optional[kn.array] = None
        if track_running_stats:
            self.running_mean = kn.zeros((num_features,), dtype)
            self.running_var = kn.ones((num_features,), dtype)
            self.num_batches_tracked = kn.zeros((), kn.int64)

    def __call__(self, x: kn.array) -> kn.array:
        if x.ndim < 2 or x.shape[-1] != self.num_features:
            raise ValueError(f"[BatchNorm] expected (N, ..., {self.num_features}), got shape {tuple(x.shape)}")
        if self.training or self.running_mean is None or self.running_var is None:
            axes = list(range(x.ndim - 1))
            mean = kn.mean(x, axis=axes)
            var = kn.var(x, axis=axes)
            if self.training and self.running_mean is not None:
                self._track(mean, var, math.prod(x.shape[:-1]))
        else:
            mean, var = self.running_mean, self.running_var
        scale = kn.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        return x * scale + shift

    def _track(self, mean: kn.array, var: kn.array, n: int) -> None:
        if n < 2:
            raise ValueError(f"[BatchNorm] training needs more than one value per channel, got {n}")
        assert self.running_mean is not None and self.running_var is not None and self.num_batches_tracked is not None
        self.num_batches_tracked = self.num_batches_tracked + 1
        dtype = self.running_mean.dtype
        # momentum None: the cumulative average, weighting this batch by 1 / batches seen
        m: Union[float, kn.array] = (1.0 / self.num_batches_tracked.astype(dtype) if self.momentum is None
                                     else self.momentum)
        unbiased = var * (n / (n - 1))
        self.running_mean = self.running_mean * (1 - m) + mean.astype(dtype) * m
        self.running_var = self.running_var * (1 - m) + unbiased.astype(dtype) * m

    def _extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}, "
                f"track_running_stats={self.running_mean is not None}")
