// Fused scaled dot-product attention: softmax(q k^T * scale + mask) v in one kernel per backend,
// never materializing the (Lq, Lk) score matrix.
#pragma once

#include <optional>

#include "kiln/array.h"

namespace kiln::fast {

// q (B, Hq, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv) -> (B, Hq, Lq, Dv) of q's dtype
// (float16, bfloat16 or float32; q, k and v share it; accumulated in float32).
// Grouped-query and multi-query attention: Hq is a multiple of Hkv and query head h reads kv head
// h / (Hq / Hkv); K and V are never repeated in memory.
// mask, broadcastable to (B, Hq, Lq, Lk), is boolean (true = attend) or floating (added to the
// scores; cast to q's dtype). causal puts query i at absolute position Lk - Lq + i (queries at the
// end of a longer cache) and lets it see keys j <= that position; it needs Lq <= Lk.
// A query row that sees no key (all masked out, a -inf additive mask, or Lk = 0) gives zeros,
// not NaN. Inputs may be strided views, e.g. (B, L, H, D) transposed to (B, H, L, D): the kernels
// read them in place.
array scaled_dot_product_attention(const array& q, const array& k, const array& v, float scale,
                                   const std::optional<array>& mask = {}, bool causal = false, StreamOrDevice s = {});

}  // namespace kiln::fast
