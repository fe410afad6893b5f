// Primitives of the fused fast ops (kiln/fast.h). Their inputs are row-contiguous and share the
// output's floating dtype (the front ends cast and copy as needed), so each kernel is one pass
// over rows of the last axis, computed in float32 for the 16-bit floats.
#pragma once

#include "kiln/primitive.h"
#include "kiln/types.h"

namespace kiln {

// y = x / sqrt(mean(x^2) + eps) [* weight] over the last axis. Inputs: x [, weight of shape (D,)].
class RMSNorm : public Primitive {
 public:
  explicit RMSNorm(float eps) : eps(eps) {}
  const char* name() const override { return "rms_norm"; }
  float eps;
};

// y = (x - mean) / sqrt(var + eps) [* weight] [+ bias] over the last axis.
// Inputs: x [, weight] [, bias], each of shape (D,), present as the flags say.
class LayerNorm : public Primitive {
 public:
  LayerNorm(float eps, bool has_weight, bool has_bias) : eps(eps), has_weight(has_weight), has_bias(has_bias) {}
  const char* name() const override { return "layer_norm"; }
  float eps;
  bool has_weight;
  bool has_bias;
};

// Rotary embedding of x (..., L, D): the first `dims` features of the row at position
// offset + l (l along axis -2) rotate by theta_i = (offset + l) * inv_freq_i, the rest pass
// through. traditional pairs (2i, 2i + 1), otherwise (i, i + dims / 2). Inputs: x [, freqs
// (dims / 2,) float32, inv_freq_i = scale / freqs_i] [, an int32 scalar added to offset];
// without freqs inv_freq_i = scale * base^(-2i / dims).
class RoPE : public Primitive {
 public:
  RoPE(int dims, bool traditional, float base, float scale, int offset, bool has_freqs, bool has_offset_array = false)
      : dims(dims),
        traditional(traditional),
        base(base),
        scale(scale),
        offset(offset),
        has_freqs(has_freqs),
        has_offset_array(has_offset_array) {}
  const char* name() const override { return "rope"; }
  int dims;
  bool traditional;
  float base;
  float scale;
  int offset;
  bool has_freqs;
  bool has_offset_array;
};

// silu(gate) * up = gate * sigmoid(gate) * up; inputs of one shape, or (halves) one input
// (..., 2n) holding gate in [..., :n] and up in [..., n:], both row-contiguous.
class SiluMul : public Primitive {
 public:
  explicit SiluMul(bool halves = false) : halves(halves) {}
  const char* name() const override { return "silu_mul"; }
  bool halves;
};

namespace fast_math {
// The rotary inverse frequency of pair i without explicit freqs; both backends use this so that
// they compute the same angles.
KILN_HD float rope_inv_freq(int i, int dims, float log2_base, float scale) {
  return scale * exp2f(-log2_base * (2.0f * static_cast<float>(i) / static_cast<float>(dims)));
}
}  // namespace fast_math

}  // namespace kiln
