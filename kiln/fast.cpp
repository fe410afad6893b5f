// Front ends of the fused fast ops: validation, dtype promotion, and contiguous inputs for the
// row kernels (a no-op for inputs that already are).
#include "kiln/fast.h"

#include <cmath>
#include <memory>
#include <vector>

#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_fast.h"

namespace kiln::fast {

namespace {

void check_float(const array& a, const char* op, const char* what) {
  if (!is_floating(a.dtype())) fail<TypeError>("[", op, "] ", what, " must have a floating dtype, got ", a.dtype());
}

void check_eps(float eps, const char* op) {
  if (!(eps > 0)) fail<ValueError>("[", op, "] eps must be positive, got ", eps);
}

// A per-feature parameter (weight, bias) of shape (D,) for rows of length D.
void check_feature(const array& p, int64_t D, const char* op, const char* what) {
  check_float(p, op, what);
  if (p.ndim() != 1 || p.shape(0) != D) {
    fail<ValueError>("[", op, "] ", what, " must have shape ", Shape{D}, " (the last axis of x), got ", p.shape());
  }
}

// The input as a row-contiguous array of dtype t on stream st.
array prepare(const array& a, Dtype t, Stream st) { return contiguous(astype(a, t, st), st); }

}  // namespace

array rms_norm(const array& x, const std::optional<array>& weight, float eps, StreamOrDevice s) {
  const char* op = "rms_norm";
  if (x.ndim() < 1) fail<ValueError>("[rms_norm] x must have at least one axis, got shape ", x.shape());
  check_float(x, op, "x");
  const int64_t D = x.shape().back();
  Dtype t = x.dtype();
  if (weight) {
    check_feature(*weight, D, op, "weight");
    t = promote_types(t, weight->dtype());
  }
  check_eps(eps, op);
  Stream st = to_stream(s);
  std::vector<array> inputs{prepare(x, t, st)};
  if (weight) inputs.push_back(prepare(*weight, t, st));
  return array(x.shape(), t, std::make_shared<RMSNorm>(eps), std::move(inputs), st);
}

array layer_norm(const array& x, const std::optional<array>& weight, const std::optional<array>& bias, float eps,
                 StreamOrDevice s) {
  const char* op = "layer_norm";
  if (x.ndim() < 1) fail<ValueError>("[layer_norm] x must have at least one axis, got shape ", x.shape());
  check_float(x, op, "x");
  const int64_t D = x.shape().back();
  Dtype t = x.dtype();
  if (weight) {
    check_feature(*weight, D, op, "weight");
    t = promote_types(t, weight->dtype());
  }
  if (bias) {
    check_feature(*bias, D, op, "bias");
    t = promote_types(t, bias->dtype());
  }
  check_eps(eps, op);
  Stream st = to_stream(s);
  std::vector<array> inputs{prepare(x, t, st)};
  if (weight) inputs.push_back(prepare(*weight, t, st));
  if (bias) inputs.push_back(prepare(*bias, t, st));
  return array(x.shape(), t, std::make_shared<LayerNorm>(eps, weight.has_value(), bias.has_value()),
               std::move(inputs), st);
}

namespace {

array rope_node(const array& x, int dims, bool traditional, std::optional<float> base, float scale, int offset,
                const std::optional<array>& offset_array, const std::optional<array>& freqs, StreamOrDevice s) {
  const char* op = "rope";
  if (x.ndim() < 2) fail<ValueError>("[rope] x must have shape (..., seq, head_dim), got ", x.shape());
  check_float(x, op, "x");
  const int64_t D = x.shape().back();
  if (dims <= 0 || dims % 2 != 0 || dims > D) {
    fail<ValueError>("[rope] dims must be positive, even and at most the last axis ", D, ", got ", dims);
  }
  if (base.has_value() == freqs.has_value()) {
    fail<ValueError>("[rope] exactly one of base and freqs must be given, got ", base ? "both" : "neither");
  }
  if (base && !(*base > 0)) fail<ValueError>("[rope] base must be positive, got ", *base);
  if (!std::isfinite(scale)) fail<ValueError>("[rope] scale must be finite, got ", scale);
  Stream st = to_stream(s);
  std::vector<array> inputs{x};  // read through its strides
  if (freqs) {
    check_float(*freqs, op, "freqs");
    if (freqs->ndim() != 1 || freqs->shape(0) != dims / 2) {
      fail<ValueError>("[rope] freqs must have shape ", Shape{dims / 2}, " (dims / 2), got ", freqs->shape());
    }
    inputs.push_back(prepare(*freqs, float32, st));
  }
  if (offset_array) {
    if (offset_array->size() != 1 || !is_integer(offset_array->dtype())) {
      fail<ValueError>("[rope] offset must be an integer scalar array, got shape ", offset_array->shape(), " ",
                       offset_array->dtype());
    }
    inputs.push_back(contiguous(reshape(astype(*offset_array, int32, st), {}, st), st));
  }
  return array(x.shape(), x.dtype(),
               std::make_shared<RoPE>(dims, traditional, base.value_or(0.f), scale, offset, freqs.has_value(),
                                      offset_array.has_value()),
               std::move(inputs), st);
}

}  // namespace

array rope(const array& x, int dims, bool traditional, std::optional<float> base, float scale, int offset,
           const std::optional<array>& freqs, StreamOrDevice s) {
  return rope_node(x, dims, traditional, base, scale, offset, std::nullopt, freqs, s);
}

array rope(const array& x, int dims, bool traditional, std::optional<float> base, float scale, const array& offset,
           const std::optional<array>& freqs, StreamOrDevice s) {
  return rope_node(x, dims, traditional, base, scale, 0, offset, freqs, s);
}

array llama3_rope_freqs(int dims, float base, float factor, float low_freq_factor, float high_freq_factor,
                        int original_max_position_embeddings) {
  if (dims <= 0 || dims % 2 != 0) fail<ValueError>("[llama3_rope_freqs] dims must be positive and even, got ", dims);
  if (!(base > 0) || !(factor > 0)) {
    fail<ValueError>("[llama3_rope_freqs] base and factor must be positive, got ", base, " and ", factor);
  }
  if (!(high_freq_factor > low_freq_factor) || !(low_freq_factor > 0)) {
    fail<ValueError>("[llama3_rope_freqs] need 0 < low_freq_factor < high_freq_factor, got ", low_freq_factor, " and ",
                     high_freq_factor);
  }
  if (original_max_position_embeddings <= 0) {
    fail<ValueError>("[llama3_rope_freqs] original_max_position_embeddings must be positive, got ",
                     original_max_position_embeddings);
  }
  // HF's _compute_llama3_parameters, in double and rounded once to float32.
  const double pi = 3.14159265358979323846;
  const double old_len = original_max_position_embeddings;
  const double low_wavelen = old_len / low_freq_factor, high_wavelen = old_len / high_freq_factor;
  std::vector<float> f(dims / 2);
  for (int i = 0; i < dims / 2; ++i) {
    double inv = 1.0 / std::pow(static_cast<double>(base), 2.0 * i / dims);
    double wavelen = 2 * pi / inv;
    if (wavelen > low_wavelen) {
      inv /= factor;
    } else if (!(wavelen < high_wavelen)) {
      double smooth = (old_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      inv = (1 - smooth) * inv / factor + smooth * inv;
    }
    f[i] = static_cast<float>(1.0 / inv);
  }
  return array(f, Shape{dims / 2});
}

array silu_mul(const array& gate, const array& up, StreamOrDevice s) {
  Dtype t = promote_types(gate.dtype(), up.dtype());
  if (!is_floating(t)) {
    fail<TypeError>("[silu_mul] inputs must promote to a floating dtype, got ", gate.dtype(), " and ", up.dtype());
  }
  Shape shape = broadcast_shapes(gate.shape(), up.shape(), "silu_mul");
  Stream st = to_stream(s);
  // Broadcast inputs are copied out by contiguous(): the kernel is a flat pass over both.
  array g = prepare(broadcast_to(gate, shape, st), t, st);
  array u = prepare(broadcast_to(up, shape, st), t, st);
  return array(shape, t, std::make_shared<SiluMul>(), {g, u}, st);
}

array silu_mul(const array& gate_up, StreamOrDevice s) {
  if (!is_floating(gate_up.dtype())) {
    fail<TypeError>("[silu_mul] gate_up must be floating, got ", gate_up.dtype());
  }
  if (gate_up.ndim() < 1 || gate_up.shape().back() % 2 != 0) {
    fail<ValueError>("[silu_mul] gate_up must have an even last axis (gate then up), got shape ", gate_up.shape());
  }
  Shape shape = gate_up.shape();
  shape.back() /= 2;
  Stream st = to_stream(s);
  return array(std::move(shape), gate_up.dtype(), std::make_shared<SiluMul>(true),
               {prepare(gate_up, gate_up.dtype(), st)}, st);
}

}  // namespace kiln::fast
