// CPU kernels of conv and im2col (kiln/primitives_conv.h). conv gathers a block of output rows'
// receptive fields (im2col, converted to the accumulation type), multiplies them by the weight
// with OpenBLAS per group, and applies the epilogue (bias, residual, activation) as it stores.
// Depthwise convolutions (one filter per channel) run a direct loop over output pixels and taps
// with the channels innermost (contiguous in input, weight and output); other grouped ones with a
// few channels per group use a direct loop over the gathered rows instead of GEMMs that would
// have one column each. im2col dispatches on the element size only.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kiln/backend/common/bytes.h"
#include "kiln/backend/common/im2col.h"
#include "kiln/backend/cpu/blas.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/memory.h"
#include "kiln/primitives_conv.h"

namespace kiln::cpu {

namespace {

// Rows of im2col gathered at a time: bounds the scratch to about 8 Mi elements.
constexpr int64_t kScratchElements = int64_t{1} << 23;

void gemm_nt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
  blas::gemm(false, true, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
void gemm_nt(int m, int n, int k, const double* a, int lda, const double* b, int ldb, double* c, int ldc) {
  blas::gemm(false, true, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}

template <class Acc>
Acc activate(Acc v, ConvActivation act) {
  if (act == ConvActivation::none) return v;
  v = v > Acc(0) ? v : Acc(0);
  return act == ConvActivation::relu6 && v > Acc(6) ? Acc(6) : v;
}

// im2col of output rows [r0, r0 + rows) into cols, converted to Acc: Cg elements per
// (row, group, tap), zeros where a tap reads padding.
template <class T, class Acc>
void gather_rows(const conv::Im2ColGeometry& g, const T* src, int64_t r0, int64_t rows, int64_t taps, Acc* cols) {
  parallel_for(rows * g.G * taps, std::max<int64_t>(1, 4096 / g.Cg), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t s = g.source_row(r0 * g.G * taps + i);
      Acc* d = cols + i * g.Cg;
      if (s < 0) {
        std::fill(d, d + g.Cg, Acc(0));
      } else {
        for (int64_t c = 0; c < g.Cg; ++c) d[c] = static_cast<Acc>(src[s + c]);
      }
    }
  });
}

// Grouped convolutions with a few channels per group: a dot product per output element over the
// gathered rows (GEMMs of one or two columns would waste their setup).
template <class Acc>
void grouped_direct(const conv::Im2ColGeometry& g, const Acc* cols, const Acc* wf, Acc* acc, int64_t rows,
                    int64_t row_len, int64_t Kg, int64_t Cout) {
  const int64_t Cout_g = Cout / g.G;
  parallel_for(rows, std::max<int64_t>(1, 65536 / (Cout * Kg)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      for (int64_t gi = 0; gi < g.G; ++gi) {
        const Acc* a = cols + r * row_len + gi * Kg;
        for (int64_t m = 0; m < Cout_g; ++m) {
          const Acc* wr = wf + (gi * Cout_g + m) * Kg;
          Acc sum = 0;
          for (int64_t q = 0; q < Kg; ++q) sum += a[q] * wr[q];
          acc[r * Cout + gi * Cout_g + m] = sum;
        }
      }
    }
  });
}

template <class T>
void conv_typed(const Convolution& p, const std::vector<array>& inputs, array& out) {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const array &x = inputs[0], &w = inputs[1];
  const T* bias = p.has_bias ? inputs[2].host_data<T>() : nullptr;
  const T* residual = p.has_residual ? inputs[2 + p.has_bias].host_data<T>() : nullptr;
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const conv::Im2ColGeometry g = conv::conv_geometry(p, x, w, out);
  const int64_t Cout = out.shape().back(), Cout_g = Cout / g.G;
  int64_t taps = 1;
  for (int j = 0; j < g.d; ++j) taps *= g.K[j];
  const int64_t Kg = taps * g.Cg;     // reduction length per group
  const int64_t row_len = g.G * Kg;   // one output position's im2col row
  const int64_t M = out.size() / Cout;
  const T* src = x.host_data<T>();

  // The weight in the accumulation type: float32/float64 weights are read in place, 16-bit ones
  // converted once per call.
  constexpr bool same_type = std::is_same_v<T, Acc>;
  const T* wp = w.host_data<T>();
  std::vector<Acc> converted(same_type ? 0 : static_cast<size_t>(w.size()));
  for (size_t i = 0; i < converted.size(); ++i) converted[i] = static_cast<Acc>(wp[i]);
  const Acc* wf = same_type ? reinterpret_cast<const Acc*>(wp) : converted.data();

  auto epilogue = [&](Acc v, int64_t o, int64_t c) {
    if (bias) v += static_cast<Acc>(bias[c]);
    if (residual) v += static_cast<Acc>(residual[o + c]);
    dst[o + c] = static_cast<T>(activate(v, p.activation));
  };
  if (g.Cg == 1 && Cout == g.G) {
    const int64_t C = Cout;
    std::vector<Acc> wt(static_cast<size_t>(taps * C));  // (taps, C): channels innermost
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t q = 0; q < taps; ++q) wt[q * C + c] = wf[c * taps + q];
    }
    parallel_for(M, std::max<int64_t>(1, 16384 / (C * taps)), [&](int64_t b, int64_t e) {
      std::vector<Acc> sum(static_cast<size_t>(C));
      for (int64_t r = b; r < e; ++r) {
        std::fill(sum.begin(), sum.end(), Acc(0));
        for (int64_t q = 0; q < taps; ++q) {
          const int64_t s = g.source_row(r * g.G * taps + q);  // channel 0 of the tap's pixel
          if (s < 0) continue;
          const T* xp = src + s;
          const Acc* wq = wt.data() + q * C;
          for (int64_t c = 0; c < C; ++c) sum[c] += static_cast<Acc>(xp[c]) * wq[c];
        }
        for (int64_t c = 0; c < C; ++c) epilogue(sum[c], r * C, c);
      }
    });
    return;
  }
  const bool depthwise = g.G > 1 && g.Cg <= 4;
  // A 1x1 convolution with unit stride and no padding reads its input rows as they are; in
  // float32/float64 the products then go straight into the output, the epilogue in place.
  bool pointwise = g.G == 1;
  for (int j = 0; j < g.d; ++j) pointwise &= g.K[j] == 1 && g.stride[j] == 1 && g.pad[j] == 0 && g.S[j] == g.O[j];
  const bool in_place = same_type && !depthwise;
  const int64_t block = std::clamp<int64_t>(kScratchElements / std::max<int64_t>(row_len, 1), 1, M);
  // Scratch from kiln's host cache: reused between calls, never zeroed.
  Buffer cols_buf(pointwise && same_type ? 0 : sizeof(Acc) * static_cast<size_t>(block * row_len));
  Buffer acc_buf(in_place ? 0 : sizeof(Acc) * static_cast<size_t>(block * Cout));
  Acc* cols = pointwise && same_type ? nullptr : static_cast<Acc*>(cols_buf.write_host());
  Acc* acc_base = in_place ? nullptr : static_cast<Acc*>(acc_buf.write_host());
  for (int64_t r0 = 0; r0 < M; r0 += block) {
    const int64_t rows = std::min(block, M - r0);
    Acc* acc = in_place ? reinterpret_cast<Acc*>(dst) + r0 * Cout : acc_base;
    if (pointwise && same_type) {
      gemm_nt(static_cast<int>(rows), static_cast<int>(Cout), static_cast<int>(Kg),
              reinterpret_cast<const Acc*>(src) + r0 * g.C, static_cast<int>(g.C), wf, static_cast<int>(Kg),
              acc, static_cast<int>(Cout));
    } else {
      gather_rows(g, src, r0, rows, taps, cols);
      if (depthwise) {
        grouped_direct(g, cols, wf, acc, rows, row_len, Kg, Cout);
      } else {
        for (int64_t gi = 0; gi < g.G; ++gi) {
          gemm_nt(static_cast<int>(rows), static_cast<int>(Cout_g), static_cast<int>(Kg), cols + gi * Kg,
                  static_cast<int>(row_len), wf + gi * Cout_g * Kg, static_cast<int>(Kg), acc + gi * Cout_g,
                  static_cast<int>(Cout));
        }
      }
    }
    if (in_place && !bias && !residual && p.activation == ConvActivation::none) continue;
    parallel_for(rows, std::max<int64_t>(1, 16384 / Cout), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t o = (r0 + r) * Cout;
        for (int64_t c = 0; c < Cout; ++c) epilogue(acc[r * Cout + c], o, c);
      }
    });
  }
}

void conv_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Convolution&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { conv_typed<T>(p, inputs, out); });
}

void im2col_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Im2Col&>(prim);
  const array& in = inputs[0];
  conv::Im2ColGeometry g = conv::im2col_geometry(p, in, out);
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = allocate<U>(out);
    if (out.size() == 0) return;
    const U* src = in.host_data<U>();
    const int64_t rows = out.size() / g.Cg;
    parallel_for(rows, std::max<int64_t>(1, 4096 / g.Cg), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t s = g.source_row(r);
        U* d = dst + r * g.Cg;
        if (s < 0) {
          std::memset(static_cast<void*>(d), 0, sizeof(U) * g.Cg);
        } else {
          std::memcpy(static_cast<void*>(d), src + s, sizeof(U) * g.Cg);
        }
      }
    });
  });
}

}  // namespace

void register_cpu_conv() {
  register_kernel(Backend::cpu, "conv", conv_kernel);
  register_kernel(Backend::cpu, "im2col", im2col_kernel);
}

}  // namespace kiln::cpu
