// What the CUDA attention kernels share (attention.cu: SIMT decode and prefill;
// attention_decode.cu and attention_prefill.cu: the tensor-core decode and prefill): the
// parameter block and the masking rule.
#pragma once

#include <cuda_runtime.h>

#include "kiln/array.h"
#include "kiln/backend/cuda/utils.cuh"
#include "kiln/primitives_attention.h"

namespace kiln::cuda {

constexpr int kMaxD = static_cast<int>(kMaxAttentionHeadDim);

enum MaskKind : int { kNoMask = 0, kBoolMask = 1, kAddMask = 2 };

// Everything a kernel needs to know, by value. Strides are in elements, (batch, head, seq, feature).
template <class T>
struct AttnParams {
  const T* q;
  const T* k;
  const T* v;
  const void* mask;  // bool or T, shape (B, Hq, Lq, Lk)
  T* out;            // (B, Hq, Lq, Dv) row-contiguous
  int64_t qs[4], ks[4], vs[4], ms[4];
  int B, Hq, Hkv, Lq, Lk, D, Dv, group;
  float scale;
  bool causal;
  int mask_kind;
  bool vec_k, vec_v;  // K / V rows may be read as aligned 16-byte vectors
};

// Scale and mask applied to a raw dot product of query (b, h, i) with key j; -inf when the key is
// not seen (causal, bool mask false, or an additive -inf).
template <class T>
__device__ __forceinline__ float masked_score(const AttnParams<T>& p, float dot, int b, int h, int i, int j) {
  if (p.causal && j > p.Lk - p.Lq + i) return -INFINITY;
  float s = dot * p.scale;
  if (p.mask_kind != kNoMask) {
    const int64_t o = b * p.ms[0] + h * p.ms[1] + i * p.ms[2] + j * p.ms[3];
    if (p.mask_kind == kBoolMask) {
      if (!static_cast<const bool*>(p.mask)[o]) return -INFINITY;
    } else {
      s += static_cast<float>(static_cast<const T*>(p.mask)[o]);
    }
  }
  return s;
}

// Q rows may be read as aligned 16-byte vectors (unit feature stride, rows 8 elements apart).
template <class T>
bool q_vec_ok(const AttnParams<T>& p) {
  return p.qs[3] == 1 && p.qs[0] % 8 == 0 && p.qs[1] % 8 == 0 && p.qs[2] % 8 == 0 && aligned16(p.q);
}

// The tensor-core decode (attention_decode.cu). Returns false, launching nothing, for the cases
// it does not handle (then the SIMT decode kernel runs).
template <class T>
bool launch_decode_mma(const AttnParams<T>& p, const array& out);

// The tensor-core prefill (attention_prefill.cu). Returns false, launching nothing, for the
// cases it does not handle (then the SIMT kernel runs).
template <class T>
bool launch_prefill_mma(const AttnParams<T>& p, const array& out);

}  // namespace kiln::cuda
