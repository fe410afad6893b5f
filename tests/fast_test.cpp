// The fused fast ops (rms_norm, layer_norm, rope, silu_mul, llama3_rope_freqs) against float64
// references computed here, on every device, for float32 and the 16-bit floats, contiguous or
// not, with the error paths of their front ends.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <sstream>

#include "kiln/backend/kernels.h"
#include "kiln/primitive.h"
#include "test_utils.h"

using namespace kiln;

namespace {

const std::vector<Dtype>& dtypes() {
  static std::vector<Dtype> d{float32, float16, bfloat16};
  return d;
}

std::string describe(const char* op, Device d, Dtype t, const Shape& shape, const std::string& extra = "") {
  std::ostringstream os;
  os << op << " on " << test::device_name(d) << " dtype " << t << " shape (";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ") " << extra;
  return os.str();
}

using Values = std::optional<std::vector<double>>;

std::vector<double> ref_rms_norm(const std::vector<double>& x, int64_t D, const Values& w, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; D > 0 && r < x.size() / D; ++r) {
    long double ss = 0;
    for (int64_t k = 0; k < D; ++k) ss += x[r * D + k] * x[r * D + k];
    double inv = 1 / std::sqrt(static_cast<double>(ss / D) + eps);
    for (int64_t k = 0; k < D; ++k) y[r * D + k] = x[r * D + k] * inv * (w ? (*w)[k] : 1.0);
  }
  return y;
}

std::vector<double> ref_layer_norm(const std::vector<double>& x, int64_t D, const Values& w, const Values& b,
                                   double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; D > 0 && r < x.size() / D; ++r) {
    long double s = 0, sq = 0;
    for (int64_t k = 0; k < D; ++k) s += x[r * D + k];
    double mean = static_cast<double>(s / D);
    for (int64_t k = 0; k < D; ++k) sq += (x[r * D + k] - mean) * (x[r * D + k] - mean);
    double inv = 1 / std::sqrt(static_cast<double>(sq / D) + eps);
    for (int64_t k = 0; k < D; ++k) {
      y[r * D + k] = (x[r * D + k] - mean) * inv * (w ? (*w)[k] : 1.0) + (b ? (*b)[k] : 0.0);
    }
  }
  return y;
}

// x of shape (..., L, D) row-major; inv_freq[i] already includes the scale.
std::vector<double> ref_rope(const std::vector<double>& x, int64_t L, int64_t D, int dims, bool traditional,
                             const std::vector<double>& inv_freq, int offset) {
  std::vector<double> y = x;
  const int half = dims / 2;
  for (size_t r = 0; r < x.size() / D; ++r) {
    double pos = offset + static_cast<double>(r % L);
    for (int i = 0; i < half; ++i) {
      int64_t i0 = traditional ? 2 * i : i, i1 = traditional ? i0 + 1 : i0 + half;
      double th = pos * inv_freq[i], c = std::cos(th), s = std::sin(th);
      double x0 = x[r * D + i0], x1 = x[r * D + i1];
      y[r * D + i0] = x0 * c - x1 * s;
      y[r * D + i1] = x0 * s + x1 * c;
    }
  }
  return y;
}

std::vector<double> base_inv_freq(int dims, double base, double scale) {
  std::vector<double> f(dims / 2);
  for (int i = 0; i < dims / 2; ++i) f[i] = scale * std::pow(base, -2.0 * i / dims);
  return f;
}

// HF transformers' _compute_llama3_parameters, written out as it is there (torch.where style).
std::vector<double> ref_llama3_inv_freq(int dims, double base, double factor, double low, double high, double old_len) {
  std::vector<double> r(dims / 2);
  const double pi = 3.14159265358979323846;
  for (int i = 0; i < dims / 2; ++i) {
    double inv_freq = 1.0 / std::pow(base, static_cast<double>(2 * i) / dims);
    double low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
    double wavelen = 2 * pi / inv_freq;
    double inv_freq_llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    double smooth_factor = (old_len / wavelen - low) / (high - low);
    double smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
    bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    r[i] = is_medium ? smoothed : inv_freq_llama;
  }
  return r;
}

double silu_mul_ref(double g, double u) { return g / (1 + std::exp(-g)) * u; }

// Transposed (non-contiguous) view holding a fresh random array of `shape` with its last two axes
// swapped in memory, plus its logical values.
std::pair<array, std::vector<double>> transposed_random(const Shape& shape, Dtype t, double lo = -2, double hi = 2) {
  Shape swapped = shape;
  std::swap(swapped[swapped.size() - 1], swapped[swapped.size() - 2]);
  auto [a, av] = test::random_array(swapped, t, lo, hi);
  int n = static_cast<int>(shape.size());
  array x = swapaxes(a, n - 1, n - 2);
  return {x, test::to_doubles(x)};
}

const std::vector<Shape>& norm_shapes() {
  // Last dims: 1, odd, under and over a warp's vector width, exactly 1024 (warp path), 1030
  // (block path, scalar loads), 4096 (block path, vector loads); an empty array.
  static std::vector<Shape> s{{7}, {5, 1}, {3, 33}, {2, 3, 64}, {6, 1024}, {3, 1030}, {4, 4096}, {0, 16}, {3, 0}};
  return s;
}

}  // namespace

TEST(Fast, RMSNorm) {
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      for (const Shape& shape : norm_shapes()) {
        for (bool with_w : {false, true}) {
          const int64_t D = shape.back();
          auto [x, xv] = test::random_array(shape, t);
          auto [w, wv] = test::random_array({D}, t, 0.5, 1.5);
          std::string what = describe("rms_norm", d, t, shape, with_w ? "weight" : "");
          array y = fast::rms_norm(x, with_w ? std::optional<array>(w) : std::nullopt, 1e-5f, d);
          EXPECT_STREQ(y.primitive().name(), "rms_norm") << what;  // one fused node
          ASSERT_EQ(y.shape(), shape) << what;
          ASSERT_EQ(y.dtype(), t) << what;
          KILN_EXPECT_CLOSE(test::to_doubles(y), ref_rms_norm(xv, D, with_w ? Values(wv) : std::nullopt, 1e-5), t, what);
        }
      }
      // Non-contiguous rows (transposed and sliced), and a large eps that matters.
      auto [xt, xtv] = transposed_random({40, 96}, t);
      KILN_EXPECT_CLOSE(test::to_doubles(fast::rms_norm(xt, {}, 0.5f, d)), ref_rms_norm(xtv, 96, {}, 0.5), t,
                        describe("rms_norm transposed", d, t, {40, 96}));
      auto [a, av] = test::random_array({8, 70}, t);
      array xs = slice(a, {1, 3}, {8, 67}, {2, 1});
      auto [w, wv] = test::random_array({64}, t);
      KILN_EXPECT_CLOSE(test::to_doubles(fast::rms_norm(xs, w, 1e-6f, d)),
                        ref_rms_norm(test::to_doubles(xs), 64, wv, 1e-6), t, describe("rms_norm sliced", d, t, {4, 64}));
    }
    // The result dtype promotes x with the weight: bfloat16 x, float32 weight -> float32.
    auto [x, xv] = test::random_array({3, 256}, bfloat16);
    auto [w, wv] = test::random_array({256}, float32);
    array y = fast::rms_norm(x, w, 1e-5f, d);
    EXPECT_EQ(y.dtype(), float32);
    KILN_EXPECT_CLOSE(test::to_doubles(y), ref_rms_norm(xv, 256, wv, 1e-5), float32, "rms_norm promoted");
  }
  test::note_gpu_skip();
}

TEST(Fast, LayerNorm) {
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      for (const Shape& shape : norm_shapes()) {
        for (int mode = 0; mode < 4; ++mode) {
          bool with_w = mode & 1, with_b = mode & 2;
          const int64_t D = shape.back();
          // An offset mean checks that the variance does not cancel.
          auto [x, xv] = test::random_array(shape, t, 3, 5);
          auto [w, wv] = test::random_array({D}, t, 0.5, 1.5);
          auto [b, bv] = test::random_array({D}, t);
          std::string what = describe("layer_norm", d, t, shape, std::string(with_w ? "weight " : "") + (with_b ? "bias" : ""));
          array y = fast::layer_norm(x, with_w ? std::optional<array>(w) : std::nullopt,
                                     with_b ? std::optional<array>(b) : std::nullopt, 1e-5f, d);
          EXPECT_STREQ(y.primitive().name(), "layer_norm") << what;
          ASSERT_EQ(y.shape(), shape) << what;
          ASSERT_EQ(y.dtype(), t) << what;
          auto ref = ref_layer_norm(xv, D, with_w ? Values(wv) : std::nullopt, with_b ? Values(bv) : std::nullopt, 1e-5);
          KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
        }
      }
      auto [xt, xtv] = transposed_random({33, 2000}, t);
      auto [b, bv] = test::random_array({2000}, t);
      KILN_EXPECT_CLOSE(test::to_doubles(fast::layer_norm(xt, {}, b, 1e-5f, d)),
                        ref_layer_norm(xtv, 2000, {}, bv, 1e-5), t, describe("layer_norm transposed", d, t, {33, 2000}));
    }
    // float16 x with float32 weight and bias promotes to float32.
    auto [x, xv] = test::random_array({5, 48}, float16);
    auto [w, wv] = test::random_array({48}, float32);
    auto [b, bv] = test::random_array({48}, float32);
    array y = fast::layer_norm(x, w, b, 1e-5f, d);
    EXPECT_EQ(y.dtype(), float32);
    KILN_EXPECT_CLOSE(test::to_doubles(y), ref_layer_norm(xv, 48, wv, bv, 1e-5), float32, "layer_norm promoted");
  }
  test::note_gpu_skip();
}

TEST(Fast, RoPE) {
  struct Case {
    Shape shape;
    int dims;
    int offset;
    float base;
    float scale;
  };
  std::vector<Case> cases{
      {{2, 3, 7, 64}, 64, 0, 10000.f, 1.f},   // (batch, heads, seq, head_dim)
      {{1, 4, 5, 128}, 128, 37, 500000.f, 1.f},
      {{3, 9, 32}, 16, 3, 10000.f, 0.5f},     // dims < head_dim: the rest passes through
      {{4, 10}, 8, 11, 10000.f, 1.f},          // odd pass-through width
      {{1, 1, 2}, 2, 100, 10.f, 2.f},
      {{2, 0, 64}, 64, 0, 10000.f, 1.f},       // no positions
  };
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      for (const Case& c : cases) {
        for (bool traditional : {false, true}) {
          const int64_t L = c.shape[c.shape.size() - 2], D = c.shape.back();
          auto [x, xv] = test::random_array(c.shape, t);
          std::ostringstream extra;
          extra << "dims " << c.dims << " offset " << c.offset << " base " << c.base << " scale " << c.scale
                << (traditional ? " traditional" : "");
          std::string what = describe("rope", d, t, c.shape, extra.str());
          array y = fast::rope(x, c.dims, traditional, c.base, c.scale, c.offset, {}, d);
          EXPECT_STREQ(y.primitive().name(), "rope") << what;
          ASSERT_EQ(y.shape(), c.shape) << what;
          ASSERT_EQ(y.dtype(), t) << what;
          auto ref = ref_rope(xv, L, D, c.dims, traditional, base_inv_freq(c.dims, c.base, c.scale), c.offset);
          KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
          // Explicit freqs: theta = position * scale / freqs[i].
          auto [f, fv] = test::random_array({c.dims / 2}, float32, 1, 50);
          std::vector<double> inv(fv.size());
          for (size_t i = 0; i < fv.size(); ++i) inv[i] = c.scale / fv[i];
          array yf = fast::rope(x, c.dims, traditional, std::nullopt, c.scale, c.offset, f, d);
          KILN_EXPECT_CLOSE(test::to_doubles(yf), ref_rope(xv, L, D, c.dims, traditional, inv, c.offset), t,
                            what + " freqs");
        }
      }
      // Llama's layout: (batch, seq, heads, head_dim) transposed to (batch, heads, seq, head_dim).
      auto [a, av] = test::random_array({2, 6, 4, 64}, t);
      array xt = transpose(a, {0, 2, 1, 3});
      for (bool traditional : {false, true}) {
        KILN_EXPECT_CLOSE(test::to_doubles(fast::rope(xt, 64, traditional, 10000.f, 1.f, 5, {}, d)),
                          ref_rope(test::to_doubles(xt), 6, 64, 64, traditional, base_inv_freq(64, 10000, 1), 5), t,
                          describe("rope transposed", d, t, {2, 4, 6, 64}));
      }
      // Features strided too (the last axis is not contiguous), with dims < D passing some through.
      auto [b, bv] = test::random_array({3, 24, 5}, t);
      array xs = transpose(b, {0, 2, 1});  // (3, 5, 24), feature stride 5
      for (bool traditional : {false, true}) {
        KILN_EXPECT_CLOSE(test::to_doubles(fast::rope(xs, 16, traditional, 500.f, 0.5f, 3, {}, d)),
                          ref_rope(test::to_doubles(xs), 5, 24, 16, traditional, base_inv_freq(16, 500, 0.5), 3), t,
                          describe("rope strided features", d, t, {3, 5, 24}));
      }
    }
  }
  test::note_gpu_skip();
}

TEST(Fast, Llama3RopeFreqs) {
  const int dims = 128;
  array f = fast::llama3_rope_freqs(dims, 500000.f, 8.f, 1.f, 4.f, 8192);
  ASSERT_EQ(f.shape(), (Shape{dims / 2}));
  ASSERT_EQ(f.dtype(), float32);
  auto inv = ref_llama3_inv_freq(dims, 500000, 8, 1, 4, 8192);
  auto got = test::to_doubles(f);
  int low = 0, high = 0, medium = 0;
  for (int i = 0; i < dims / 2; ++i) {
    double want = 1 / inv[i];
    EXPECT_NEAR(got[i], want, 2e-7 * want) << "pair " << i;
    double wavelen = 2 * M_PI * std::pow(500000.0, 2.0 * i / dims);
    (wavelen > 8192 ? low : wavelen < 2048 ? high : medium)++;
  }
  EXPECT_GT(low, 0);  // all three bands are exercised
  EXPECT_GT(high, 0);
  EXPECT_GT(medium, 0);
  // Used as rope's freqs, on every device.
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      auto [x, xv] = test::random_array({1, 2, 9, dims}, t);
      array y = fast::rope(x, dims, false, std::nullopt, 1.f, 20, f, d);
      KILN_EXPECT_CLOSE(test::to_doubles(y), ref_rope(xv, 9, dims, dims, false, inv, 20), t,
                        describe("rope llama3", d, t, {1, 2, 9, dims}));
    }
  }
  test::note_gpu_skip();
}

TEST(Fast, SiluMul) {
  std::vector<std::pair<Shape, Shape>> cases{{{7}, {7}},           {{3, 1000}, {3, 1000}}, {{4, 1}, {4, 6}},
                                             {{}, {}},             {{0, 5}, {0, 5}},       {{2, 3, 4099}, {2, 3, 4099}},
                                             {{5}, {3, 5}}};
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      for (auto& [gs, us] : cases) {
        auto [g, gv] = test::random_array(gs, t, -6, 6);
        auto [u, uv] = test::random_array(us, t);
        Shape shape = broadcast_shapes(gs, us);
        std::string what = describe("silu_mul", d, t, shape);
        array y = fast::silu_mul(g, u, d);
        EXPECT_STREQ(y.primitive().name(), "silu_mul") << what;
        ASSERT_EQ(y.shape(), shape) << what;
        ASSERT_EQ(y.dtype(), t) << what;
        auto gb = test::to_doubles(broadcast_to(g, shape, Device(Device::cpu)));
        auto ub = test::to_doubles(broadcast_to(u, shape, Device(Device::cpu)));
        std::vector<double> ref(gb.size());
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu_mul_ref(gb[i], ub[i]);
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
      }
      // Non-contiguous inputs, and an input sliced to an offset that breaks 16-byte alignment.
      auto [g, gv] = transposed_random({30, 50}, t, -6, 6);
      auto [a, av] = test::random_array({30, 51}, t);
      array u = slice(a, {0, 1}, {30, 51});
      auto uv = test::to_doubles(u);
      std::vector<double> ref(gv.size());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu_mul_ref(gv[i], uv[i]);
      KILN_EXPECT_CLOSE(test::to_doubles(fast::silu_mul(g, u, d)), ref, t, describe("silu_mul strided", d, t, {30, 50}));
    }
    // Mixed dtypes promote: bfloat16 gate, float32 up -> float32.
    auto [g, gv] = test::random_array({64}, bfloat16, -6, 6);
    auto [u, uv] = test::random_array({64}, float32);
    array y = fast::silu_mul(g, u, d);
    EXPECT_EQ(y.dtype(), float32);
    std::vector<double> ref(64);
    for (size_t i = 0; i < 64; ++i) ref[i] = silu_mul_ref(gv[i], uv[i]);
    KILN_EXPECT_CLOSE(test::to_doubles(y), ref, float32, "silu_mul promoted");
  }
  test::note_gpu_skip();
}

// The halves form: one (..., 2n) input, gate then up; the vector path (n a multiple of 8), the
// scalar path (odd n), and a strided input.
TEST(Fast, SiluMulHalves) {
  for (Device d : test::devices()) {
    for (Dtype t : dtypes()) {
      for (Shape shape : {Shape{2}, Shape{3, 16}, Shape{2, 5, 14}, Shape{4, 2 * 4099}, Shape{13, 2 * 5501}, Shape{0, 6}}) {
        auto [x, xv] = test::random_array(shape, t, -6, 6);
        const int64_t n = shape.back() / 2, rows = n ? static_cast<int64_t>(xv.size()) / (2 * n) : 0;
        std::vector<double> ref;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < n; ++c) ref.push_back(silu_mul_ref(xv[r * 2 * n + c], xv[r * 2 * n + n + c]));
        }
        std::string what = describe("silu_mul halves", d, t, shape);
        array y = fast::silu_mul(x, d);
        EXPECT_STREQ(y.primitive().name(), "silu_mul") << what;
        Shape want = shape;
        want.back() = n;
        ASSERT_EQ(y.shape(), want) << what;
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
      }
      auto [x, xv] = transposed_random({40, 30}, t, -6, 6);  // (40, 30) with strides (1, 40)
      std::vector<double> ref;
      for (int64_t r = 0; r < 40; ++r) {
        for (int64_t c = 0; c < 15; ++c) ref.push_back(silu_mul_ref(xv[r * 30 + c], xv[r * 30 + 15 + c]));
      }
      KILN_EXPECT_CLOSE(test::to_doubles(fast::silu_mul(x, d)), ref, t, describe("silu_mul halves strided", d, t, {40, 30}));
    }
    EXPECT_THROW(fast::silu_mul(ones({3, 5}), d), ValueError);
    EXPECT_THROW(fast::silu_mul(ones({4}, int32), d), TypeError);
  }
  test::note_gpu_skip();
}

// Each fused op evaluated on the GPU runs there alone: no CPU kernel, no fallback.
TEST(Fast, GpuPathRunsNoCpuKernels) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    GTEST_SKIP() << "no GPU present";
  }
  Device gpu(Device::gpu);
  auto [x, xv] = test::random_array({2, 4, 64}, bfloat16);
  auto [w, wv] = test::random_array({64}, float32);
  array f = fast::llama3_rope_freqs(64, 500000.f, 8.f, 1.f, 4.f, 8192);
  eval(x, w, f);
  size_t cpu_before = kernel_launches(Backend::cpu), gpu_before = kernel_launches(Backend::gpu);
  std::vector<array> outs{fast::rms_norm(x, w, 1e-5f, gpu), fast::layer_norm(x, w, w, 1e-5f, gpu),
                          fast::rope(x, 64, false, 10000.f, 1.f, 3, {}, gpu),
                          fast::rope(x, 32, true, std::nullopt, 1.f, 3, slice(f, {0}, {16}), gpu),
                          fast::silu_mul(x, x, gpu)};
  eval(outs);
  EXPECT_EQ(kernel_launches(Backend::cpu), cpu_before);
  EXPECT_GE(kernel_launches(Backend::gpu), gpu_before + outs.size());
}

TEST(Fast, Errors) {
  array x = zeros({2, 8}, float32);
  array w = ones({8}, float32);
  // rms_norm
  KILN_EXPECT_THROW_MSG(fast::rms_norm(array(1.f), {}, 1e-5f), ValueError, "[rms_norm]");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(zeros({2, 8}, int32), {}, 1e-5f), TypeError, "[rms_norm]");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, ones({7}, float32), 1e-5f), ValueError, "[rms_norm] weight must have shape (8,)");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, ones({1, 8}, float32), 1e-5f), ValueError, "[rms_norm]");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, ones({8}, int32), 1e-5f), TypeError, "[rms_norm]");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, w, 0.f), ValueError, "[rms_norm] eps");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, w, -1.f), ValueError, "[rms_norm] eps");
  KILN_EXPECT_THROW_MSG(fast::rms_norm(x, w, NAN), ValueError, "[rms_norm] eps");
  // layer_norm
  KILN_EXPECT_THROW_MSG(fast::layer_norm(array(1.f), {}, {}, 1e-5f), ValueError, "[layer_norm]");
  KILN_EXPECT_THROW_MSG(fast::layer_norm(zeros({2, 8}, int8), {}, {}, 1e-5f), TypeError, "[layer_norm]");
  KILN_EXPECT_THROW_MSG(fast::layer_norm(x, ones({9}, float32), {}, 1e-5f), ValueError, "[layer_norm] weight");
  KILN_EXPECT_THROW_MSG(fast::layer_norm(x, w, ones({4}, float32), 1e-5f), ValueError, "[layer_norm] bias");
  KILN_EXPECT_THROW_MSG(fast::layer_norm(x, w, {}, 0.f), ValueError, "[layer_norm] eps");
  // rope
  array q = zeros({2, 4, 16}, float32);
  KILN_EXPECT_THROW_MSG(fast::rope(zeros({16}, float32), 16, false, 10000.f, 1.f, 0), ValueError, "[rope]");
  KILN_EXPECT_THROW_MSG(fast::rope(zeros({2, 4, 16}, int32), 16, false, 10000.f, 1.f, 0), TypeError, "[rope]");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 15, false, 10000.f, 1.f, 0), ValueError, "[rope] dims");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 18, false, 10000.f, 1.f, 0), ValueError, "[rope] dims");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 0, false, 10000.f, 1.f, 0), ValueError, "[rope] dims");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 16, false, std::nullopt, 1.f, 0), ValueError, "[rope]");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 16, false, 10000.f, 1.f, 0, ones({8}, float32)), ValueError, "[rope]");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 16, false, std::nullopt, 1.f, 0, ones({16}, float32)), ValueError,
                        "[rope] freqs must have shape (8,)");
  KILN_EXPECT_THROW_MSG(fast::rope(q, 16, false, -1.f, 1.f, 0), ValueError, "[rope] base");
  // llama3_rope_freqs
  KILN_EXPECT_THROW_MSG(fast::llama3_rope_freqs(127, 500000.f, 8.f, 1.f, 4.f, 8192), ValueError, "[llama3_rope_freqs]");
  KILN_EXPECT_THROW_MSG(fast::llama3_rope_freqs(128, 500000.f, 8.f, 4.f, 4.f, 8192), ValueError, "[llama3_rope_freqs]");
  KILN_EXPECT_THROW_MSG(fast::llama3_rope_freqs(128, 500000.f, 0.f, 1.f, 4.f, 8192), ValueError, "[llama3_rope_freqs]");
  KILN_EXPECT_THROW_MSG(fast::llama3_rope_freqs(128, 500000.f, 8.f, 1.f, 4.f, 0), ValueError, "[llama3_rope_freqs]");
  // silu_mul
  KILN_EXPECT_THROW_MSG(fast::silu_mul(zeros({4}, int32), zeros({4}, int32)), TypeError, "[silu_mul]");
  KILN_EXPECT_THROW_MSG(fast::silu_mul(zeros({4}, complex64), zeros({4}, float32)), TypeError, "[silu_mul]");
  KILN_EXPECT_THROW_MSG(fast::silu_mul(zeros({4}, float32), zeros({5}, float32)), ValueError, "[silu_mul]");
}
