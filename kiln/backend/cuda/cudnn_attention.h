// cuDNN's fused attention (flash attention) behind the CUDA attention kernel's prefill path
// (kiln/backend/cuda/attention.cu).
#pragma once

#include "kiln/array.h"
#include "kiln/primitives_attention.h"

namespace kiln::cuda {

// Runs the node on cuDNN's SDPA into out_ptr and returns true, or returns false (having done
// nothing) when this build has no cuDNN, the case is not one cuDNN takes (masks, float32,
// fewer than kCudnnAttentionMinQueries query rows, ...) or cuDNN has no plan for it.
bool cudnn_attention(const ScaledDotProductAttention& p, const array& q, const array& k, const array& v,
                     const array& out, const void* q_ptr, const void* k_ptr, const void* v_ptr, void* out_ptr);

// Shorter prefills keep kiln's own kernel: a cuDNN plan is built per shape, which costs more
// than a short prompt's attention.
inline constexpr int64_t kCudnnAttentionMinQueries = 512;

}  // namespace kiln::cuda
