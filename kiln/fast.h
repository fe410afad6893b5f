// Fused operations for the hot paths of transformer models: each is one kernel on every backend
// rather than a composition of elementwise ops and reductions.
#pragma once

#include <optional>

#include "kiln/array.h"

namespace kiln::fast {

// x / sqrt(mean(x^2, last axis) + eps) * weight. weight has shape (x.shape(-1),) or is absent;
// the result has dtype promote(x, weight) and is accumulated in float32 for 16-bit floats.
array rms_norm(const array& x, const std::optional<array>& weight, float eps, StreamOrDevice s = {});

// (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance); weight and
// bias have shape (x.shape(-1),) or are absent.
array layer_norm(const array& x, const std::optional<array>& weight, const std::optional<array>& bias, float eps,
                 StreamOrDevice s = {});

// Rotary position embedding of x (..., seq, head_dim), positions offset + 0 .. seq - 1 along axis
// -2. The first `dims` (even) features rotate, the rest pass through: traditional rotates pairs
// (x[2i], x[2i + 1]), otherwise (x[i], x[i + dims / 2]) as Llama/HF do. The angle of pair i is
// position * scale * base^(-2i / dims), or position * scale / freqs[i] when freqs (dims / 2,) is
// given instead of base (MLX's convention; see llama3_rope_freqs). Exactly one of base and freqs.
array rope(const array& x, int dims, bool traditional, std::optional<float> base, float scale, int offset,
           const std::optional<array>& freqs = {}, StreamOrDevice s = {});
// The same with the offset an integer scalar array, read when the kernel runs (so that a graph
// replayed for every decoding step, kiln/capture.h, can move the position on).
array rope(const array& x, int dims, bool traditional, std::optional<float> base, float scale, const array& offset,
           const std::optional<array>& freqs = {}, StreamOrDevice s = {});

// The freqs (dims / 2,) float32 for rope that apply Llama 3.1 frequency scaling, as HF
// transformers computes it (rope_type "llama3"): with inv_freq_i = base^(-2i / dims) and
// wavelen = 2 pi / inv_freq, long wavelengths (> original / low_freq_factor) divide inv_freq by
// factor, short ones (< original / high_freq_factor) keep it, the rest interpolate smoothly.
// Returns 1 / inv_freq.
array llama3_rope_freqs(int dims, float base, float factor, float low_freq_factor, float high_freq_factor,
                        int original_max_position_embeddings);

// silu(gate) * up = gate * sigmoid(gate) * up in one pass (the SwiGLU gate of Llama's MLP).
// The inputs broadcast together; the result has their promoted floating dtype.
array silu_mul(const array& gate, const array& up, StreamOrDevice s = {});
// The same of one array (..., 2n) holding gate then up on the last axis, as a fused gate-up
// projection writes them: no slice of it is copied. The result is (..., n).
array silu_mul(const array& gate_up, StreamOrDevice s = {});

}  // namespace kiln::fast
