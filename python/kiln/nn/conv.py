"""Convolutions and pooling, channels-last as kiln's ops: inputs (N, L, C) and (N, H, W, C) (an input
without the batch axis is taken as one sample). Convolution weights are (C_out, *kernel, C_in / groups);
load_weights moves PyTorch's (C_out, C_in / groups, *kernel) into that layout."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

from .. import _core as kn
from .init import default_uniform
from .module import Module

IntOrTuple = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]


def _tuple(value: IntOrTuple, n: int, what: str, layer: str) -> Tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"[{layer}] {what} needs {n} value{'s' if n > 1 else ''}, not {value}")
    return value


def _pair(values: Tuple[int, ...]) -> Tuple[int, int]:
    return values[0], values[1]


class _ConvNd(Module):
    _ndim = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple,
                 padding: Padding, dilation: IntOrTuple, groups: int, bias: bool, dtype: kn.Dtype) -> None:
        super().__init__()
        name, n = type(self).__name__, self._ndim
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"[{name}] in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"[{name}] padding must be 'same', 'valid' or sizes, not '{padding}'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"[{name}] padding='same' needs stride 1, not {self.stride}")
            self.padding: Union[str, Tuple[int, ...]] = padding
        else:
            self.padding = _tuple(padding, n, "padding", name)
        fan_in = in_channels // groups
        for k in self.kernel_size:
            fan_in *= k
        self.weight = default_uniform((out_channels, *self.kernel_size, in_channels // groups), fan_in, dtype)
        self.bias = default_uniform((out_channels,), fan_in, dtype) if bias else None

    def _padding_lo_hi(self) -> Tuple[List[int], List[int]]:
        """Padding before and after each axis for 'valid' and 'same'."""
        if self.padding == "same":  # PyTorch puts the odd element of padding after
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            lo = [t // 2 for t in total]
            return lo, [t - l for t, l in zip(total, lo)]
        return [0] * self._ndim, [0] * self._ndim

    def __call__(self, x: kn.array) -> kn.array:
        unbatched = x.ndim == self._ndim + 1
        if unbatched:
            x = kn.expand_dims(x, 0)
        if isinstance(self.padding, str):
            lo, hi = self._padding_lo_hi()
            y = kn.conv_general(x, self.weight, stride=list(self.stride), padding_lo=lo, padding_hi=hi,
                                kernel_dilation=list(self.dilation), groups=self.groups)
        else:
            y = self._conv(x, self.padding)
        if self.bias is not None:
            y = y + self.bias
        return kn.squeeze(y, 0) if unbatched else y

    def _conv(self, x: kn.array, padding: Tuple[int, ...]) -> kn.array:
        raise NotImplementedError

    def _from_torch(self, name: str, value: kn.array) -> kn.array:
        # PyTorch's (C_out, C_in / groups, *kernel) -> (C_out, *kernel, C_in / groups)
        if name == "weight" and value.ndim == self._ndim + 2:
            return kn.contiguous(kn.moveaxis(value, 1, -1))
        return value

    def _extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}")
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + f", bias={self.bias is not None}"


class Conv1d(_ConvNd):
    """PyTorch's Conv1d over (N, L, C_in) -> (N, L', C_out); weight (C_out, k, C_in / groups), bias (C_out,).
    padding is a size, 'valid' (none) or 'same' (stride 1)."""

    _ndim = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype)

    def _conv(self, x: kn.array, padding: Tuple[int, ...]) -> kn.array:
        return kn.conv1d(x, self.weight, stride=self.stride[0], padding=padding[0], dilation=self.dilation[0],
                         groups=self.groups)


class Conv2d(_ConvNd):
    """PyTorch's Conv2d over (N, H, W, C_in) -> (N, H', W', C_out); weight (C_out, kH, kW, C_in / groups),
    bias (C_out,). padding is a size, a (height, width) pair, 'valid' (none) or 'same' (stride 1)."""

    _ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype)

    def _conv(self, x: kn.array, padding: Tuple[int, ...]) -> kn.array:
        return kn.conv2d(x, self.weight, stride=_pair(self.stride), padding=_pair(padding),
                         dilation=_pair(self.dilation), groups=self.groups)


class _PoolNd(Module):
    _ndim = 0

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple], padding: IntOrTuple) -> None:
        super().__init__()
        name, n = type(self).__name__, self._ndim
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else _tuple(stride, n, "stride", name)
        self.padding = _tuple(padding, n, "padding", name)

    def __call__(self, x: kn.array) -> kn.array:
        unbatched = x.ndim == self._ndim + 1
        y = self._pool(kn.expand_dims(x, 0) if unbatched else x)
        return kn.squeeze(y, 0) if unbatched else y

    def _pool(self, x: kn.array) -> kn.array:
        raise NotImplementedError

    def _extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPoolNd(_PoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1) -> None:
        super().__init__(kernel_size, stride, padding)
        self.dilation = _tuple(dilation, self._ndim, "dilation", type(self).__name__)

    def _pool(self, x: kn.array) -> kn.array:
        return kn.max_pool(x, list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                           dilation=list(self.dilation))


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def _pool(self, x: kn.array) -> kn.array:
        return kn.avg_pool(x, list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                           count_include_pad=self.count_include_pad)


class MaxPool1d(_MaxPoolNd):
    """Max pooling over L of (N, L, C), padding with -inf; stride defaults to kernel_size."""
    _ndim = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over H and W of (N, H, W, C), padding with -inf; stride defaults to kernel_size."""
    _ndim = 2


class AvgPool1d(_AvgPoolNd):
    """Average pooling over L of (N, L, C); stride defaults to kernel_size."""
    _ndim = 1


class AvgPool2d(_AvgPoolNd):
    """Average pooling over H and W of (N, H, W, C); stride defaults to kernel_size."""
    _ndim = 2


class AdaptiveAvgPool2d(Module):
    """Average pooling of (N, H, W, C) to (N, *output_size, C), as PyTorch's AdaptiveAvgPool2d."""

    def __init__(self, output_size: IntOrTuple) -> None:
        super().__init__()
        self.output_size = _tuple(output_size, 2, "output_size", "AdaptiveAvgPool2d")

    def __call__(self, x: kn.array) -> kn.array:
        return kn.adaptive_avg_pool(x, list(self.output_size))

    def _extra_repr(self) -> str:
        return f"output_size={self.output_size}"
