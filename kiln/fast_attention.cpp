// Front end of fused attention: validation, the mask cast and broadcast as a view, and the node.
// q, k and v go to the kernels as they are (any strides), so transposed (B, L, H, D) views cost no
// copy.
#include "kiln/fast_attention.h"

#include <cmath>
#include <memory>
#include <vector>

#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_attention.h"

namespace kiln::fast {

array scaled_dot_product_attention(const array& q, const array& k, const array& v, float scale,
                                   const std::optional<array>& mask, bool causal, StreamOrDevice s) {
  if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4) {
    fail<ValueError>("[scaled_dot_product_attention] q, k and v must have 4 axes (batch, heads, seq, head_dim), got ",
                     q.shape(), ", ", k.shape(), " and ", v.shape());
  }
  const Dtype t = q.dtype();
  if (t != float32 && t != float16 && t != bfloat16) {
    fail<TypeError>("[scaled_dot_product_attention] q must be float32, float16 or bfloat16, got ", t);
  }
  if (k.dtype() != t || v.dtype() != t) {
    fail<TypeError>("[scaled_dot_product_attention] q, k and v must share one dtype, got ", t, ", ", k.dtype(), " and ",
                    v.dtype());
  }
  const int64_t B = q.shape(0), Hq = q.shape(1), Lq = q.shape(2), D = q.shape(3);
  const int64_t Hkv = k.shape(1), Lk = k.shape(2), Dv = v.shape(3);
  if (k.shape(0) != B || v.shape(0) != B) {
    fail<ValueError>("[scaled_dot_product_attention] q, k and v must have the same batch size, got ", q.shape(), ", ",
                     k.shape(), " and ", v.shape());
  }
  if (v.shape(1) != Hkv || v.shape(2) != Lk) {
    fail<ValueError>("[scaled_dot_product_attention] k and v must have the same heads and sequence length, got ",
                     k.shape(), " and ", v.shape());
  }
  if (Hkv == 0 ? Hq != 0 : Hq % Hkv != 0) {
    fail<ValueError>("[scaled_dot_product_attention] query heads ", Hq, " must be a multiple of key/value heads ", Hkv);
  }
  if (k.shape(3) != D) {
    fail<ValueError>("[scaled_dot_product_attention] q and k must have the same head_dim, got ", D, " and ",
                     k.shape(3));
  }
  if (D > kMaxAttentionHeadDim || Dv > kMaxAttentionHeadDim) {
    fail<ValueError>("[scaled_dot_product_attention] head_dim must be at most ", kMaxAttentionHeadDim, ", got ", D,
                     " (q, k) and ", Dv, " (v)");
  }
  if (!std::isfinite(scale)) fail<ValueError>("[scaled_dot_product_attention] scale must be finite, got ", scale);
  if (causal && Lq > Lk) {
    fail<ValueError>("[scaled_dot_product_attention] causal attention needs Lq <= Lk (queries at the end of the keys), ",
                     "got Lq ", Lq, " and Lk ", Lk);
  }
  Stream st = to_stream(s);
  std::vector<array> inputs{q, k, v};
  bool mask_is_bool = false;
  if (mask) {
    const Shape full{B, Hq, Lq, Lk};
    const Shape& ms = mask->shape();
    bool fits = mask->ndim() <= 4;
    for (int i = 1; fits && i <= mask->ndim(); ++i) {
      int64_t m = ms[ms.size() - i], f = full[4 - i];
      if (m != f && m != 1) fits = false;
    }
    if (!fits) {
      fail<ValueError>("[scaled_dot_product_attention] mask of shape ", ms, " does not broadcast to ", full,
                       " (batch, query heads, Lq, Lk)");
    }
    mask_is_bool = mask->dtype() == bool_;
    if (!mask_is_bool && !is_floating(mask->dtype())) {
      fail<TypeError>("[scaled_dot_product_attention] mask must be bool or floating, got ", mask->dtype());
    }
    // Cast before broadcasting, so that only the mask's own elements are converted; the broadcast
    // is a zero-stride view the kernels read in place.
    array m = mask_is_bool ? *mask : astype(*mask, t, st);
    inputs.push_back(broadcast_to(m, full, st));
  }
  return array(Shape{B, Hq, Lq, Dv}, t,
               std::make_shared<ScaledDotProductAttention>(scale, causal, mask.has_value(), mask_is_bool),
               std::move(inputs), st);
}

}  // namespace kiln::fast
