"""Linear, Embedding, Dropout and Identity, with PyTorch's parameter names, shapes and default
initialization."""
from __future__ import annotations

from typing import Any, Optional

from .. import _core as kn
from .init import default_uniform
from .module import Module


class Identity(Module):
    """Returns its input."""

    def __call__(self, x: Any) -> Any:
        return x


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = default_uniform((out_features, in_features), in_features, dtype)
        self.bias = default_uniform((out_features,), in_features, dtype) if bias else None

    def __call__(self, x: kn.array) -> kn.array:
        y = kn.matmul(x, self.weight.T)
        return y if self.bias is None else y + self.bias

    def _extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer ids of any shape -> (*ids.shape, embedding_dim); weight
    (num_embeddings, embedding_dim), standard normal (the padding_idx row zero)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        weight = kn.random.normal((num_embeddings, embedding_dim), dtype)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise IndexError(f"[Embedding] padding_idx {padding_idx} is out of range for {num_embeddings} "
                                 "embeddings")
            padding_idx %= num_embeddings
            weight[padding_idx] = 0
        self.padding_idx = padding_idx
        self.weight = weight

    def __call__(self, ids: Any) -> kn.array:
        return kn.take(self.weight, ids, axis=0)

    def as_linear(self, x: kn.array) -> kn.array:
        """x (..., embedding_dim) @ weight.T: the output head of models that tie it to the embedding."""
        return kn.matmul(x, self.weight.T)

    def _extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """In training mode, zeroes each element with probability p and scales the rest by 1 / (1 - p);
    in inference mode, returns its input."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"[Dropout] p must be in [0, 1], not {p}")
        self.p = p

    def __call__(self, x: kn.array) -> kn.array:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return kn.zeros_like(x)
        keep = kn.random.bernoulli(1.0 - self.p, x.shape)
        return kn.where(keep, x * (1.0 / (1.0 - self.p)), kn.zeros_like(x))

    def _extra_repr(self) -> str:
        return f"p={self.p}"
