// Multi-head attention with the parameters of PyTorch's nn.MultiheadAttention (in_proj_weight
// (3E, E) holding the query, key and value projections in that order, in_proj_bias (3E,),
// out_proj.weight (E, E), out_proj.bias (E,)), so its state dicts load by name, and batch_first
// semantics: inputs (B, L, E), or (L, E) unbatched.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "kiln/array.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

// Not modelled: kdim/vdim different from embed_dim, add_bias_kv, add_zero_attn, attention
// dropout, and returning the attention weights (the fused kernel never forms them).
class MultiHeadAttention : public Module {
 public:
  // embed_dim must be a positive multiple of num_heads (ValueError). Initialised as PyTorch does:
  // in_proj_weight Xavier-uniform, biases zero, out_proj.weight as a Linear's.
  MultiHeadAttention(int64_t embed_dim, int64_t num_heads, bool bias = true, Dtype dtype = float32);

  // softmax(q k^T / sqrt(head_dim) + masks) v per head, with q, k and v the projections of
  // query (B, Lq, E), key and value (B, Lk, E); the heads' outputs are joined and projected by
  // out_proj: -> (B, Lq, E). The masks follow nn.MultiheadAttention: a boolean mask is true where
  // attention is NOT allowed (the opposite of fast::scaled_dot_product_attention's), a floating
  // mask is added to the scores.
  //  - attn_mask: (Lq, Lk), or (B * num_heads, Lq, Lk) per batch entry and head ((num_heads, Lq,
  //    Lk) unbatched).
  //  - key_padding_mask: (B, Lk) ((Lk,) unbatched), true (or -inf) at padding keys.
  //  - causal: query i sees keys j <= Lk - Lq + i (queries at the end of the keys; the usual
  //    lower triangle when Lq = Lk); it needs Lq <= Lk. Unlike PyTorch's is_causal it is applied,
  //    not a hint about attn_mask.
  // A query that sees no key gives zeros (PyTorch gives NaN). float16, bfloat16 and float32 run
  // fast::scaled_dot_product_attention; float64 (and head sizes beyond the fused kernel's) run
  // the same computation as separate operations.
  array operator()(const array& query, const array& key, const array& value,
                   const std::optional<array>& attn_mask = {}, bool causal = false,
                   const std::optional<array>& key_padding_mask = {}, StreamOrDevice s = {}) const;
  // Self-attention: (*this)(x, x, x).
  array forward(const array& x) const override { return (*this)(x, x, x); }

  int64_t embed_dim() const { return embed_; }
  int64_t num_heads() const { return heads_; }

 private:
  int64_t embed_, heads_;
  std::shared_ptr<Linear> out_proj_;
};

}  // namespace kiln::nn
