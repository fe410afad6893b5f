// kiln.fast: fused operations for transformer models (kiln/fast.h, kiln/fast_attention.h).
#include "common.h"

namespace kiln_py {

void init_fast(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("fast", "Fused operations for the hot paths of transformer models.");
  m.def(
      "rms_norm",
      [](const ArrayLike& x, std::optional<ArrayLike> weight, float eps, StreamOrDevice s) {
        return kiln::fast::rms_norm(to_array(x), to_array(weight), eps, s);
      },
      "x"_a, "weight"_a.none(), "eps"_a, nb::kw_only(), "stream"_a = nb::none(),
      "x / sqrt(mean(x**2, last axis) + eps) * weight (weight may be None).");
  m.def(
      "layer_norm",
      [](const ArrayLike& x, std::optional<ArrayLike> weight, std::optional<ArrayLike> bias, float eps,
         StreamOrDevice s) { return kiln::fast::layer_norm(to_array(x), to_array(weight), to_array(bias), eps, s); },
      "x"_a, "weight"_a.none(), "bias"_a.none(), "eps"_a, nb::kw_only(), "stream"_a = nb::none(),
      "(x - mean) / sqrt(var + eps) * weight + bias over the last axis (weight and bias may be None).");
  m.def(
      "rope",
      [](const ArrayLike& x, int dims, bool traditional, std::optional<float> base, float scale, int offset,
         std::optional<ArrayLike> freqs, StreamOrDevice s) {
        return kiln::fast::rope(to_array(x), dims, traditional, base, scale, offset, to_array(freqs), s);
      },
      "x"_a, "dims"_a, nb::kw_only(), "traditional"_a, "base"_a.none(), "scale"_a, "offset"_a,
      "freqs"_a = nb::none(), "stream"_a = nb::none(),
      "Rotary position embedding of x (..., seq, head_dim) at positions offset.. ; exactly one of base and freqs.");
  m.def("llama3_rope_freqs", &kiln::fast::llama3_rope_freqs, "dims"_a, "base"_a, "factor"_a, "low_freq_factor"_a,
        "high_freq_factor"_a, "original_max_position_embeddings"_a,
        "The rope freqs (dims / 2,) of Llama 3.1's frequency scaling.");
  m.def(
      "silu_mul",
      [](const ArrayLike& gate, std::optional<ArrayLike> up, StreamOrDevice s) {
        if (!up) return kiln::fast::silu_mul(to_array(gate), s);
        return kiln::fast::silu_mul(to_array(gate), to_array(*up), s);
      },
      "gate"_a, "up"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "silu(gate) * up in one pass. Without up, gate holds gate then up on its last axis (..., 2n) and the "
      "result is (..., n).");
  m.def(
      "scaled_dot_product_attention",
      [](const ArrayLike& q, const ArrayLike& k, const ArrayLike& v, float scale, std::optional<ArrayLike> mask,
         bool causal, StreamOrDevice s) {
        return kiln::fast::scaled_dot_product_attention(to_array(q), to_array(k), to_array(v), scale, to_array(mask),
                                                        causal, s);
      },
      "q"_a, "k"_a, "v"_a, nb::kw_only(), "scale"_a, "mask"_a = nb::none(), "causal"_a = false,
      "stream"_a = nb::none(),
      "softmax(q @ k.T * scale + mask) @ v in one kernel; q (B, Hq, Lq, D), k and v (B, Hkv, Lk, D).");
}

}  // namespace kiln_py
