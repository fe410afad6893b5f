"""Multi-head attention with PyTorch's parameters (in_proj_weight, in_proj_bias, out_proj) and call."""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple

from .. import _core as kn
from .init import xavier_uniform
from .layers import Linear
from .module import Module


def _additive(mask: Any, dtype: kn.Dtype, what: str) -> kn.array:
    """A mask as the float added to the scores: a bool mask's True (as in PyTorch) is a position that may
    not be attended, -inf; a float mask is added as it is."""
    m = mask if isinstance(mask, kn.array) else kn.array(mask)
    if m.dtype == kn.bool_:
        return kn.where(m, float("-inf"), 0.0).astype(dtype)
    if not kn.is_floating(m.dtype):
        raise TypeError(f"[MultiHeadAttention] {what} must be bool or floating, not {m.dtype}")
    return m.astype(dtype)


class MultiHeadAttention(Module):
    """PyTorch's nn.MultiheadAttention: out_proj(attention(q W_q, k W_k, v W_v)) over num_heads heads.

    Parameters as PyTorch names them, so its state dicts load: in_proj_weight (3E, E) and in_proj_bias (3E,)
    when keys and values have embed_dim features, else q_proj_weight (E, E), k_proj_weight (E, kdim) and
    v_proj_weight (E, vdim) beside in_proj_bias; and out_proj (a Linear). Inputs are (L, N, E), or (N, L, E)
    with batch_first, or unbatched (L, E).

    Calling returns (output, weights): weights (N, L, S) averaged over heads, (N, H, L, S) without
    average_attn_weights, or None with need_weights=False, which uses kn.fast.scaled_dot_product_attention
    (in inference mode or without dropout). Masks follow PyTorch: a bool attn_mask (L, S) or
    (N * num_heads, L, S) is True where attending is not allowed, a float one is added to the scores, and
    key_padding_mask (N, S) is True at padding. is_causal without attn_mask applies the causal mask itself
    (PyTorch wants the mask given as well).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: Optional[int] = None, vdim: Optional[int] = None, batch_first: bool = False,
                 dtype: kn.Dtype = kn.float32) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"[MultiHeadAttention] embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"[MultiHeadAttention] dropout must be in [0, 1], not {dropout}")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        init = xavier_uniform()
        if self.kdim == embed_dim and self.vdim == embed_dim:
            self.in_proj_weight = init(kn.zeros((3 * embed_dim, embed_dim), dtype))
        else:
            self.q_proj_weight = init(kn.zeros((embed_dim, embed_dim), dtype))
            self.k_proj_weight = init(kn.zeros((embed_dim, self.kdim), dtype))
            self.v_proj_weight = init(kn.zeros((embed_dim, self.vdim), dtype))
        self.in_proj_bias = kn.zeros((3 * embed_dim,), dtype) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            self.out_proj.bias = kn.zeros((embed_dim,), dtype)

    def _projections(self) -> Tuple[kn.array, kn.array, kn.array]:
        if "in_proj_weight" in vars(self):
            return tuple(kn.split(self.in_proj_weight, 3, axis=0))  # type: ignore[return-value]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _heads(self, x: kn.array, w: kn.array, b: Optional[kn.array]) -> kn.array:
        """(N, L, in) -> (N, H, L, head_dim)."""
        y = kn.matmul(x, w.T)
        if b is not None:
            y = y + b
        n, length = x.shape[0], x.shape[1]
        return kn.transpose(kn.reshape(y, (n, length, self.num_heads, -1)), (0, 2, 1, 3))

    def __call__(self, query: kn.array, key: Optional[kn.array] = None, value: Optional[kn.array] = None,
                 key_padding_mask: Optional[Any] = None, need_weights: bool = True, attn_mask: Optional[Any] = None,
                 average_attn_weights: bool = True,
                 is_causal: bool = False) -> Tuple[kn.array, Optional[kn.array]]:
        key = query if key is None else key
        value = key if value is None else value
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (kn.expand_dims(t, 0) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (kn.swapaxes(t, 0, 1) for t in (query, key, value))
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(f"[MultiHeadAttention] expected query, key and value with {self.embed_dim}, {self.kdim} "
                             f"and {self.vdim} features, got shapes {tuple(query.shape)}, {tuple(key.shape)} and "
                             f"{tuple(value.shape)}")
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
        wq, wk, wv = self._projections()
        bq = bk = bv = None
        if self.in_proj_bias is not None:
            bq, bk, bv = kn.split(self.in_proj_bias, 3)
        q, k, v = self._heads(query, wq, bq), self._heads(key, wk, bk), self._heads(value, wv, bv)

        mask = self._mask(attn_mask, key_padding_mask, is_causal, n, length, source, q.dtype, unbatched)
        scale = 1.0 / math.sqrt(self.embed_dim // self.num_heads)
        dropping = self.training and self.dropout > 0
        weights = None
        if need_weights or dropping:
            scores = kn.matmul(q, kn.swapaxes(k, -1, -2)) * scale
            if mask is not None:
                scores = scores + mask
            probs = kn.softmax(scores, axis=-1)
            weights = probs
            if dropping:
                keep = kn.random.bernoulli(1.0 - self.dropout, probs.shape)
                probs = kn.where(keep, probs * (1.0 / (1.0 - self.dropout)), kn.zeros_like(probs))
            out = kn.matmul(probs, v)
        else:
            out = kn.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        out = kn.reshape(kn.transpose(out, (0, 2, 1, 3)), (n, length, self.embed_dim))
        out = self.out_proj(out)
        if unbatched:
            out = kn.squeeze(out, 0)
        elif not self.batch_first:
            out = kn.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        assert weights is not None
        if average_attn_weights:
            weights = kn.mean(weights, axis=1)
        return out, kn.squeeze(weights, 0) if unbatched else weights

    def _mask(self, attn_mask: Optional[Any], key_padding_mask: Optional[Any], is_causal: bool, n: int,
              length: int, source: int, dtype: kn.Dtype, unbatched: bool) -> Optional[kn.array]:
        """The additive mask, broadcastable to (N, H, L, S)."""
        mask = None
        if attn_mask is not None:
            m = _additive(attn_mask, dtype, "attn_mask")
            if m.ndim == 3:  # (N * H, L, S)
                m = kn.reshape(m, (n, self.num_heads, length, source))
            elif m.ndim != 2:
                raise ValueError(f"[MultiHeadAttention] attn_mask must be (L, S) or (N * num_heads, L, S), got "
                                 f"shape {tuple(m.shape)}")
            mask = m
        if is_causal and attn_mask is None:
            mask = kn.where(kn.tri(length, source, 0, kn.bool_), 0.0, float("-inf")).astype(dtype)
        if key_padding_mask is not None:
            m = _additive(key_padding_mask, dtype, "key_padding_mask")
            if unbatched:
                m = kn.expand_dims(m, 0)
            if tuple(m.shape) != (n, source):
                raise ValueError(f"[MultiHeadAttention] key_padding_mask must be (N, S) = {(n, source)}, got shape "
                                 f"{tuple(m.shape)}")
            m = kn.reshape(m, (n, 1, 1, source))
            mask = m if mask is None else mask + m
        return mask

    def _extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"
