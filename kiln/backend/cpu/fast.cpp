// CPU kernels of the fused fast ops: rms_norm, layer_norm, rope and silu_mul. The front ends give
// them row-contiguous inputs of the output's dtype; rows run in parallel, each in one pass per
// statistic, accumulated in acc_t<T> (float32 for the 16-bit floats).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_fast.h"

namespace kiln::cpu {

namespace {

// Rows per work item, so that each item touches about kElementwiseGrain elements.
int64_t row_grain(int64_t len) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(len, 1)); }

// Sum of f(x[k]) over a row, with eight independent accumulators (vectorizable, and less
// rounding error than one running sum).
template <class A, class T, class F>
A row_sum(const T* x, int64_t n, F f) {
  A a[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) a[j] += f(static_cast<A>(x[k + j]));
  }
  for (; k < n; ++k) a[0] += f(static_cast<A>(x[k]));
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// ---- rms_norm ----

template <class T>
void rms_norm_typed(const RMSNorm& p, const std::vector<array>& inputs, array& out) {
  using A = acc_t<T>;
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const T* x = inputs[0].host_data<T>();
  const T* w = inputs.size() > 1 ? inputs[1].host_data<T>() : nullptr;
  const int64_t D = out.shape().back(), rows = out.size() / D;
  const A eps = static_cast<A>(p.eps);
  parallel_for(rows, row_grain(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * D;
      T* yr = dst + r * D;
      A ms = row_sum<A>(xr, D, [](A v) { return v * v; }) / static_cast<A>(D);
      A inv = A(1) / std::sqrt(ms + eps);
      if (w) {
        for (int64_t k = 0; k < D; ++k) yr[k] = convert<T>(static_cast<A>(xr[k]) * inv * static_cast<A>(w[k]));
      } else {
        for (int64_t k = 0; k < D; ++k) yr[k] = convert<T>(static_cast<A>(xr[k]) * inv);
      }
    }
  });
}

void rms_norm_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const RMSNorm&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { rms_norm_typed<T>(p, inputs, out); });
}

// ---- layer_norm ----

template <class T>
void layer_norm_typed(const LayerNorm& p, const std::vector<array>& inputs, array& out) {
  using A = acc_t<T>;
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const T* x = inputs[0].host_data<T>();
  size_t next = 1;
  const T* w = p.has_weight ? inputs[next++].host_data<T>() : nullptr;
  const T* bias = p.has_bias ? inputs[next++].host_data<T>() : nullptr;
  const int64_t D = out.shape().back(), rows = out.size() / D;
  const A eps = static_cast<A>(p.eps);
  parallel_for(rows, row_grain(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * D;
      T* yr = dst + r * D;
      // Two passes: the variance of x - mean does not cancel catastrophically as E[x^2] - mean^2 can.
      A mean = row_sum<A>(xr, D, [](A v) { return v; }) / static_cast<A>(D);
      A var = row_sum<A>(xr, D, [mean](A v) { return (v - mean) * (v - mean); }) / static_cast<A>(D);
      A inv = A(1) / std::sqrt(var + eps);
      for (int64_t k = 0; k < D; ++k) {
        A y = (static_cast<A>(xr[k]) - mean) * inv;
        if (w) y *= static_cast<A>(w[k]);
        if (bias) y += static_cast<A>(bias[k]);
        yr[k] = convert<T>(y);
      }
    }
  });
}

void layer_norm_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const LayerNorm&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { layer_norm_typed<T>(p, inputs, out); });
}

// ---- rope ----

template <class T>
void rope_typed(const RoPE& p, const std::vector<array>& inputs, array& out) {
  using A = acc_t<T>;
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const T* x = inputs[0].host_data<T>();
  const int64_t D = out.shape().back(), L = out.shape()[out.ndim() - 2], rows = out.size() / D;
  const int half = p.dims / 2;
  // The angles depend only on (position, pair): one cos/sin table of L x half, in float32 as
  // the CUDA kernel computes them.
  std::vector<float> inv(half);
  if (p.has_freqs) {
    const float* f = inputs[1].host_data<float>();
    for (int i = 0; i < half; ++i) inv[i] = p.scale / f[i];
  } else {
    const float lb = std::log2(p.base);
    for (int i = 0; i < half; ++i) inv[i] = fast_math::rope_inv_freq(i, p.dims, lb, p.scale);
  }
  const int64_t offset =
      p.offset + (p.has_offset_array ? int64_t{inputs[1 + p.has_freqs].host_data<int32_t>()[0]} : int64_t{0});
  std::vector<A> cs(static_cast<size_t>(L) * half), sn(cs.size());
  parallel_for(L, row_grain(half * 16), [&](int64_t b, int64_t e) {
    for (int64_t l = b; l < e; ++l) {
      const float pos = static_cast<float>(offset + l);
      for (int i = 0; i < half; ++i) {
        float theta = pos * inv[i];
        cs[l * half + i] = static_cast<A>(std::cos(theta));
        sn[l * half + i] = static_cast<A>(std::sin(theta));
      }
    }
  });
  const int64_t step = p.traditional ? 2 : 1, partner = p.traditional ? 1 : half;
  // The input is read through its strides: row r is row-major over the axes before the last.
  const array& in = inputs[0];
  const int nd = in.ndim() - 1;
  const int64_t sD = in.strides().back();
  auto row_offset = [&](int64_t r) {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      off += (r % in.shape(d)) * in.strides()[d];
      r /= in.shape(d);
    }
    return off;
  };
  parallel_for(rows, row_grain(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + row_offset(r);
      T* yr = dst + r * D;
      const A* c = cs.data() + (r % L) * half;
      const A* s = sn.data() + (r % L) * half;
      for (int i = 0; i < half; ++i) {
        const int64_t j = i * step;
        A x0 = static_cast<A>(xr[j * sD]), x1 = static_cast<A>(xr[(j + partner) * sD]);
        yr[j] = convert<T>(x0 * c[i] - x1 * s[i]);
        yr[j + partner] = convert<T>(x0 * s[i] + x1 * c[i]);
      }
      for (int64_t k = p.dims; k < D; ++k) yr[k] = xr[k * sD];
    }
  });
}

void rope_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const RoPE&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { rope_typed<T>(p, inputs, out); });
}

// ---- silu_mul ----

template <class T>
T silu_mul_one(T gate, T up) {
  using A = acc_t<T>;
  A v = static_cast<A>(gate);
  return convert<T>(v / (A(1) + std::exp(-v)) * static_cast<A>(up));
}

template <class T>
void silu_mul_typed(const SiluMul& p, const std::vector<array>& inputs, array& out) {
  T* dst = allocate<T>(out);
  if (p.halves) {
    // Row r of gate_up is [gate_r, up_r], each n long.
    const T* x = inputs[0].host_data<T>();
    const int64_t n = out.ndim() ? out.shape().back() : 1;
    if (n == 0) return;
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      // Row and column of b found once, then walked (a division per element cost more than silu).
      int64_t r = b / n, c = b % n;
      for (int64_t i = b; i < e; ++i) {
        const T* row = x + r * 2 * n;
        dst[i] = silu_mul_one(row[c], row[n + c]);
        if (++c == n) {
          c = 0;
          ++r;
        }
      }
    });
    return;
  }
  const T* g = inputs[0].host_data<T>();
  const T* u = inputs[1].host_data<T>();
  parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = silu_mul_one(g[i], u[i]);
  });
}

void silu_mul_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const SiluMul&>(prim);
  KILN_DISPATCH_FLOAT(prim.name(), out.dtype(), { silu_mul_typed<T>(p, inputs, out); });
}

}  // namespace

void register_cpu_fast() {
  register_kernel(Backend::cpu, "rms_norm", rms_norm_kernel);
  register_kernel(Backend::cpu, "layer_norm", layer_norm_kernel);
  register_kernel(Backend::cpu, "rope", rope_kernel);
  register_kernel(Backend::cpu, "silu_mul", silu_mul_kernel);
}

}  // namespace kiln::cpu
