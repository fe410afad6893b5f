// Fused scaled dot-product attention against a float64 reference written here (the explicit
// softmax(q k^T * scale + mask) v with the grouped-query head mapping), on every device, for
// float32 and the 16-bit floats: MHA, GQA and MQA, decode (Lq = 1 against short and long caches)
// and prefill, causal with and without an offset, bool and additive masks of broadcast shapes,
// rows that see no key, strided inputs, empty shapes, and the front end's error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

enum class Mask { none, boolean, additive };
// contiguous; transposed: (B, L, H, D) buffers viewed as (B, H, L, D); feature_strided: the last
// axis is not the fastest in memory ((B, H, D, L) buffers with the last two axes swapped).
enum class Layout { contiguous, transposed, feature_strided };

struct Case {
  const char* what;
  int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
  bool causal = false;
  Mask mask = Mask::none;
  Shape mask_shape = {};  // empty: the full (B, Hq, Lq, Lk)
  Layout layout = Layout::contiguous;
  bool masked_row = false;  // force query row 0 to see no key through the mask
  float scale = 0;          // 0: 1 / sqrt(D)
};

std::pair<array, std::vector<double>> make_input(int64_t B, int64_t H, int64_t L, int64_t D, Dtype t, Layout layout) {
  if (layout == Layout::transposed) {
    auto [a, av] = test::random_array({B, L, H, D}, t);
    array x = transpose(a, {0, 2, 1, 3});
    return {x, test::to_doubles(x)};
  }
  if (layout == Layout::feature_strided) {
    auto [a, av] = test::random_array({B, H, D, L}, t);
    array x = swapaxes(a, 2, 3);
    return {x, test::to_doubles(x)};
  }
  return test::random_array({B, H, L, D}, t);
}

// The mask value at (b, h, i, j) of the full shape, with mask_shape broadcast against it.
double mask_at(const std::vector<double>& m, const Shape& ms, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t idx[4] = {b, h, i, j};
  int64_t off = 0;
  const int nd = static_cast<int>(ms.size());
  for (int d = 0; d < nd; ++d) {
    const int64_t full_axis = 4 - nd + d;
    off = off * ms[d] + (ms[d] == 1 ? 0 : idx[full_axis]);
  }
  return m[off];
}

std::vector<double> ref_attention(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                                  const std::vector<double>& v, double scale, const std::vector<double>* mask,
                                  const Shape& ms) {
  std::vector<double> out(c.B * c.Hq * c.Lq * c.Dv, 0.0);
  const int64_t group = c.Hkv > 0 ? c.Hq / c.Hkv : 1;
  std::vector<double> s(c.Lk);
  std::vector<bool> seen(c.Lk);
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.Hq; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < c.Lq; ++i) {
        const double* qi = &q[((b * c.Hq + h) * c.Lq + i) * c.D];
        double mx = -INFINITY;
        for (int64_t j = 0; j < c.Lk; ++j) {
          const double* kj = &k[((b * c.Hkv + hk) * c.Lk + j) * c.D];
          double dot = 0;
          for (int64_t d = 0; d < c.D; ++d) dot += qi[d] * kj[d];
          s[j] = dot * scale;
          seen[j] = !(c.causal && j > c.Lk - c.Lq + i);
          if (mask) {
            double m = mask_at(*mask, ms, b, h, i, j);
            if (c.mask == Mask::boolean) {
              seen[j] = seen[j] && m != 0;
            } else {
              s[j] += m;
            }
          }
          if (s[j] == -INFINITY) seen[j] = false;
          if (seen[j]) mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;  // no key seen: zeros
        double sum = 0;
        double* o = &out[((b * c.Hq + h) * c.Lq + i) * c.Dv];
        for (int64_t j = 0; j < c.Lk; ++j) {
          if (!seen[j]) continue;
          double p = std::exp(s[j] - mx);
          sum += p;
          const double* vj = &v[((b * c.Hkv + hk) * c.Lk + j) * c.Dv];
          for (int64_t d = 0; d < c.Dv; ++d) o[d] += p * vj[d];
        }
        for (int64_t d = 0; d < c.Dv; ++d) o[d] /= sum;
      }
    }
  }
  return out;
}

std::string describe(const Case& c, Device d, Dtype t) {
  std::ostringstream os;
  os << c.what << " on " << test::device_name(d) << " dtype " << t << " B " << c.B << " Hq " << c.Hq << " Hkv "
     << c.Hkv << " Lq " << c.Lq << " Lk " << c.Lk << " D " << c.D << " Dv " << c.Dv << (c.causal ? " causal" : "");
  return os.str();
}

void run_case(const Case& c, Device dev, Dtype t) {
  const std::string what = describe(c, dev, t);
  auto [q, qv] = make_input(c.B, c.Hq, c.Lq, c.D, t, c.layout);
  auto [k, kv] = make_input(c.B, c.Hkv, c.Lk, c.D, t, c.layout);
  auto [v, vv] = make_input(c.B, c.Hkv, c.Lk, c.Dv, t, c.layout);
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  std::optional<array> mask;
  std::vector<double> mvals;
  Shape ms = c.mask_shape.empty() ? Shape{c.B, c.Hq, c.Lq, c.Lk} : c.mask_shape;
  if (c.mask != Mask::none) {
    const Dtype mt = c.mask == Mask::boolean ? bool_ : t;
    mvals = test::random_array(ms, mt, -3, 1).second;
    if (c.mask == Mask::boolean) {
      // Mostly attend, so that rows rarely lose every key by chance.
      for (auto& x : mvals) x = test::uniform_values(1, 0, 1)[0] < 0.8 ? 1.0 : 0.0;
    }
    if (c.masked_row) {
      // Row 0 of every (batch, head) the mask covers sees nothing.
      const int64_t lk = ms.back(), rows = static_cast<int64_t>(mvals.size()) / lk;
      const int64_t lq = ms.size() >= 2 ? ms[ms.size() - 2] : 1;
      for (int64_t r = 0; r < rows; r += lq) {
        for (int64_t j = 0; j < lk; ++j) mvals[r * lk + j] = c.mask == Mask::boolean ? 0.0 : -INFINITY;
      }
    }
    mask = test::from_doubles(mvals, ms, mt);
  }
  array y = fast::scaled_dot_product_attention(q, k, v, static_cast<float>(scale), mask, c.causal, dev);
  ASSERT_EQ(y.shape(), (Shape{c.B, c.Hq, c.Lq, c.Dv})) << what;
  ASSERT_EQ(y.dtype(), t) << what;
  EXPECT_STREQ(y.primitive().name(), "scaled_dot_product_attention") << what;  // one fused node
  std::vector<double> ref = ref_attention(c, qv, kv, vv, scale, mask ? &mvals : nullptr, ms);
  std::vector<double> got = test::to_doubles(y);
  KILN_EXPECT_CLOSE(got, ref, t, what);
  if (c.masked_row && c.Lq > 0) {
    // Rows that see no key are exactly zero.
    for (int64_t d = 0; d < c.Dv; ++d) ASSERT_EQ(got[d], 0.0) << what << " masked row element " << d;
  }
}

void run_cases(const std::vector<Case>& cases) {
  for (Device dev : test::devices()) {
    for (Dtype t : dtypes()) {
      for (const Case& c : cases) run_case(c, dev, t);
    }
  }
  test::note_gpu_skip();
}

}  // namespace

TEST(Attention, HeadGrouping) {
  run_cases({
      {"MHA", 2, 4, 4, 5, 9, 64, 64},
      {"GQA", 2, 8, 2, 7, 33, 128, 128},
      {"MQA", 1, 8, 1, 3, 20, 80, 80},
      {"MQA prefill", 2, 4, 1, 70, 70, 64, 64},
      {"Dv != D", 1, 4, 2, 6, 40, 64, 32},
      {"Dv != D decode", 2, 4, 2, 1, 50, 32, 128},
      {"D not a multiple of the vector width", 1, 2, 1, 9, 17, 36, 20},
      {"D = 1", 1, 2, 2, 3, 5, 1, 1},
      {"scale 0.7", 1, 2, 1, 4, 12, 64, 64, false, Mask::none, {}, Layout::contiguous, false, 0.7f},
  });
}

TEST(Attention, Decode) {
  std::vector<Case> cases;
  for (int64_t lk : {1, 7, 300, 4100, 20000}) {
    cases.push_back({"decode GQA", 2, 8, 2, 1, lk, 128, 128});
    cases.push_back({"decode MQA", 1, 8, 1, 1, lk, 64, 64});
  }
  cases.push_back({"decode D 80", 2, 4, 4, 1, 300, 80, 80});
  cases.push_back({"decode D 256", 1, 4, 1, 1, 600, 256, 256});
  cases.push_back({"decode Lq 4", 1, 8, 2, 4, 500, 128, 128});
  cases.push_back({"decode Lq 4 causal", 1, 8, 2, 4, 500, 128, 128, true});
  cases.push_back({"decode many heads a group", 1, 32, 1, 2, 200, 64, 64, true});
  cases.push_back({"decode D not a multiple of the vector width", 1, 4, 2, 2, 50, 36, 20});
  cases.push_back({"decode D = 1", 1, 2, 1, 1, 70, 1, 1});
  run_cases(cases);
}

TEST(Attention, Prefill) {
  run_cases({
      {"prefill", 2, 4, 2, 130, 130, 64, 64},
      {"prefill causal", 2, 4, 2, 130, 130, 64, 64, true},
      {"prefill causal D 128", 1, 4, 4, 130, 130, 128, 128, true},
      {"prefill D 80", 1, 2, 1, 130, 130, 80, 80, true},
      {"prefill D 256", 1, 2, 1, 70, 90, 256, 256, true},
      {"causal offset", 2, 4, 2, 5, 70, 64, 64, true},
      {"causal offset long", 1, 4, 2, 70, 200, 128, 128, true},
      {"causal Lq = Lk = 1", 1, 2, 1, 1, 1, 64, 64, true},
  });
}

// Long prefills (>= 512 query rows), which the GPU runs on cuDNN's fused attention where it has it.
TEST(Attention, LongPrefill) {
  run_cases({
      {"long prefill causal GQA", 1, 4, 2, 600, 600, 128, 128, true},
      {"long prefill causal offset MQA", 1, 4, 1, 520, 900, 64, 64, true},
      {"long prefill no mask", 1, 2, 2, 512, 700, 128, 128},
      {"long prefill (B, L, H, D) buffers", 2, 4, 2, 512, 512, 128, 128, true, Mask::none, {}, Layout::transposed},
  });
}

TEST(Attention, Masks) {
  run_cases({
      {"bool mask full", 2, 4, 2, 6, 40, 64, 64, false, Mask::boolean},
      {"bool mask (1, 1, Lq, Lk)", 2, 4, 2, 70, 100, 64, 64, false, Mask::boolean, {1, 1, 70, 100}},
      {"bool mask (B, 1, 1, Lk) decode", 2, 8, 2, 1, 300, 128, 128, false, Mask::boolean, {2, 1, 1, 300}},
      {"additive mask (1, 1, Lq, Lk)", 2, 4, 2, 70, 100, 64, 64, false, Mask::additive, {1, 1, 70, 100}},
      {"additive mask (Lq, Lk) causal", 1, 4, 1, 20, 50, 64, 64, true, Mask::additive, {20, 50}},
      {"additive mask (Lk,) decode", 2, 8, 2, 1, 300, 64, 64, false, Mask::additive, {300}},
      {"additive mask full decode", 2, 4, 2, 3, 77, 128, 128, false, Mask::additive},
      {"bool mask, causal, decode", 1, 8, 2, 2, 100, 64, 64, true, Mask::boolean, {1, 1, 2, 100}},
  });
}

TEST(Attention, FullyMaskedRows) {
  run_cases({
      {"bool masked row", 2, 4, 2, 6, 40, 64, 64, false, Mask::boolean, {}, Layout::contiguous, true},
      {"bool masked row prefill", 1, 4, 2, 70, 90, 64, 64, false, Mask::boolean, {1, 1, 70, 90}, Layout::contiguous,
       true},
      {"additive -inf row", 2, 4, 2, 6, 40, 64, 64, false, Mask::additive, {1, 4, 6, 40}, Layout::contiguous, true},
      {"bool masked row decode", 1, 8, 2, 1, 300, 128, 128, false, Mask::boolean, {1, 1, 1, 300},
       Layout::contiguous, true},
      {"additive -inf row decode", 1, 8, 2, 1, 300, 128, 128, false, Mask::additive, {}, Layout::contiguous, true},
      {"no keys", 1, 2, 1, 3, 0, 64, 64},
  });
}

TEST(Attention, StridedInputs) {
  run_cases({
      {"transposed", 2, 4, 2, 9, 33, 64, 64, false, Mask::none, {}, Layout::transposed},
      {"transposed prefill causal", 2, 8, 2, 130, 130, 128, 128, true, Mask::none, {}, Layout::transposed},
      {"transposed decode", 2, 8, 2, 1, 300, 128, 128, false, Mask::none, {}, Layout::transposed},
      {"transposed decode D 80", 2, 4, 1, 1, 100, 80, 80, false, Mask::none, {}, Layout::transposed},
      {"feature strided", 1, 4, 2, 7, 40, 64, 64, true, Mask::none, {}, Layout::feature_strided},
      {"feature strided decode", 1, 4, 2, 1, 40, 64, 64, false, Mask::none, {}, Layout::feature_strided},
  });
}

TEST(Attention, Empty) {
  run_cases({
      {"B 0", 0, 4, 2, 3, 5, 64, 64},
      {"Lq 0", 1, 4, 2, 0, 5, 64, 64},
      {"Lq 0 causal", 1, 4, 2, 0, 5, 64, 64, true},
      {"Dv 0", 1, 2, 1, 3, 5, 64, 0},
      {"heads 0", 1, 0, 0, 3, 5, 64, 64},
  });
}

TEST(Attention, Errors) {
  const char* op = "[scaled_dot_product_attention]";
  array q = zeros({1, 4, 3, 64}, float32), k = zeros({1, 2, 5, 64}, float32), v = zeros({1, 2, 5, 64}, float32);
  namespace f = fast;
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(zeros({4, 3, 64}), k, v, 1.f), ValueError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, zeros({2, 5, 64}), v, 1.f), ValueError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(astype(q, int32), astype(k, int32), astype(v, int32), 1.f),
                        TypeError, op);
  KILN_EXPECT_THROW_MSG(
      f::scaled_dot_product_attention(astype(q, float64), astype(k, float64), astype(v, float64), 1.f), TypeError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, astype(k, float16), v, 1.f), TypeError, op);
  // Heads not a multiple, head dims, batch and sequence mismatches.
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(zeros({1, 6, 3, 64}), zeros({1, 4, 5, 64}),
                                                        zeros({1, 4, 5, 64}), 1.f),
                        ValueError, "multiple");
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, zeros({1, 2, 5, 32}), v, 1.f), ValueError, "head_dim");
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, zeros({2, 2, 5, 64}), zeros({2, 2, 5, 64}), 1.f),
                        ValueError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, zeros({1, 2, 6, 64}), 1.f), ValueError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, zeros({1, 1, 5, 64}), 1.f), ValueError, op);
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(zeros({1, 1, 1, 300}), zeros({1, 1, 2, 300}),
                                                        zeros({1, 1, 2, 300}), 1.f),
                        ValueError, "at most 256");
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, v, INFINITY), ValueError, "scale");
  // Masks: shape that does not broadcast, too many axes, integer dtype.
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, v, 1.f, zeros({4, 5}, bool_)), ValueError, "mask");
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, v, 1.f, zeros({1, 1, 1, 3, 5}, bool_)), ValueError,
                        "mask");
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(q, k, v, 1.f, zeros({3, 5}, int32)), TypeError, "mask");
  // Causal with more queries than keys.
  KILN_EXPECT_THROW_MSG(f::scaled_dot_product_attention(zeros({1, 4, 6, 64}), k, v, 1.f, {}, true), ValueError,
                        "causal");
}

TEST(Attention, MaskDtypeIsCast) {
  // A float32 additive mask on float16 inputs is cast to float16.
  for (Device dev : test::devices()) {
    auto [q, qv] = test::random_array({1, 2, 3, 64}, float16);
    auto [k, kv] = test::random_array({1, 2, 10, 64}, float16);
    auto [v, vv] = test::random_array({1, 2, 10, 64}, float16);
    auto [m, mv] = test::random_array({3, 10}, float16);  // exact in float16 too
    array y = fast::scaled_dot_product_attention(q, k, v, 0.125f, astype(m, float32), false, dev);
    Case c{"cast mask", 1, 2, 2, 3, 10, 64, 64, false, Mask::additive, {3, 10}};
    KILN_EXPECT_CLOSE(test::to_doubles(y), ref_attention(c, qv, kv, vv, 0.125, &mv, {3, 10}), float16,
                      "cast mask on " + test::device_name(dev));
  }
}

// On the GPU both paths (decode and prefill) run GPU kernels only.
TEST(Attention, GpuPathRunsNoCpuKernel) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    GTEST_SKIP() << "no GPU present";
  }
  Device gpu(Device::gpu);
  for (int64_t lq : {1, 100}) {
    auto [q, qv] = test::random_array({1, 4, lq, 64}, float16);
    auto [k, kv] = test::random_array({1, 2, 100, 64}, float16);
    auto [v, vv] = test::random_array({1, 2, 100, 64}, float16);
    array mask = zeros({lq, 100}, bool_);
    eval({q, k, v, mask});
    const size_t before = kernel_launches(Backend::cpu);
    array y = fast::scaled_dot_product_attention(q, k, v, 0.125f, mask, true, gpu);
    eval({y});
    EXPECT_EQ(kernel_launches(Backend::cpu), before) << "Lq " << lq << ": the GPU path ran a CPU kernel";
  }
}
