// The primitive of fused attention (kiln/fast_attention.h).
#pragma once

#include "kiln/primitive.h"

namespace kiln {

// The largest head_dim (of q/k and of v) the kernels take: the CUDA kernels keep a row per warp
// in registers.
inline constexpr int64_t kMaxAttentionHeadDim = 256;

// out (B, Hq, Lq, Dv) = softmax(q k^T * scale [+ mask] [causal]) v, rows that see no key are 0.
// Inputs: q (B, Hq, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv) of one floating dtype, any
// strides; with has_mask a fourth input of shape (B, Hq, Lq, Lk) (usually a broadcast view with
// zero strides), bool when mask_is_bool, else of q's dtype. Query i sits at position Lk - Lq + i
// for causal.
class ScaledDotProductAttention : public Primitive {
 public:
  ScaledDotProductAttention(float scale, bool causal, bool has_mask, bool mask_is_bool)
      : scale(scale), causal(causal), has_mask(has_mask), mask_is_bool(mask_is_bool) {}
  const char* name() const override { return "scaled_dot_product_attention"; }
  float scale;
  bool causal;
  bool has_mask;
  bool mask_is_bool;
};

}  // namespace kiln
