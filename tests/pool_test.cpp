// The fused pooling primitive (max_pool, avg_pool, adaptive_avg_pool in kiln/ops_conv.h) against a
// float64 reference written here from PyTorch's definition, channels-last, on fresh random
// inputs, 1 to 3 spatial axes, on every device; and the graphs the front ends build.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "kiln/kiln.h"
#include "kiln/primitive.h"
#include "test_utils.h"

namespace kiln {
namespace {

struct PoolCase {
  Shape x;  // (N, *S, C)
  std::vector<int> k, s, p, dil;
};

std::string describe(const char* op, Device d, Dtype t, const PoolCase& c) {
  std::ostringstream os;
  os << op << " on " << test::device_name(d) << " " << t << " x" << c.x << " kernel";
  for (int v : c.k) os << " " << v;
  os << " stride";
  for (int v : c.s) os << " " << v;
  os << " padding";
  for (int v : c.p) os << " " << v;
  os << " dilation";
  for (int v : c.dil) os << " " << v;
  return os.str();
}

// Pooling of x by the definition: window taps at o * s + q * dil - p, those outside the input left
// out. Max lets NaN win and gives `empty` for a window of padding only; avg divides by the
// kernel's size or, without include_pad, by the count of real inputs.
std::vector<double> ref_pool(const std::vector<double>& x, const PoolCase& c, bool is_max, bool include_pad,
                             double empty, Shape& os) {
  const int d = static_cast<int>(c.k.size());
  const int64_t N = c.x[0], C = c.x.back();
  os = {N};
  int64_t taps = 1;
  for (int j = 0; j < d; ++j) {
    os.push_back((c.x[1 + j] + 2 * c.p[j] - c.dil[j] * (c.k[j] - 1) - 1) / c.s[j] + 1);
    taps *= c.k[j];
  }
  os.push_back(C);
  const int64_t P = shape_size(os) / (N * C);
  std::vector<double> out(shape_size(os));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t r = 0; r < P; ++r) {
      std::vector<int64_t> o(d);
      for (int64_t j = d - 1, rem = r; j >= 0; --j) {
        o[j] = rem % os[1 + j];
        rem /= os[1 + j];
      }
      for (int64_t ch = 0; ch < C; ++ch) {
        double mx = empty, sum = 0;
        bool any = false;
        int64_t real = 0;
        for (int64_t t = 0; t < taps; ++t) {
          int64_t off = n, rem = t;
          std::vector<int64_t> q(d);
          for (int j = d - 1; j >= 0; --j) {
            q[j] = rem % c.k[j];
            rem /= c.k[j];
          }
          bool inside = true;
          for (int j = 0; j < d; ++j) {
            int64_t pos = o[j] * c.s[j] + q[j] * c.dil[j] - c.p[j];
            inside &= pos >= 0 && pos < c.x[1 + j];
            off = off * c.x[1 + j] + pos;
          }
          if (!inside) continue;
          double v = x[off * C + ch];
          mx = !any || std::isnan(v) || (!std::isnan(mx) && v > mx) ? v : mx;
          any = true;
          sum += v;
          ++real;
        }
        out[(n * P + r) * C + ch] = is_max ? mx : sum / static_cast<double>(include_pad ? taps : real);
      }
    }
  }
  return out;
}

// 1-D, 2-D and 3-D: padding of half the kernel, strides beyond the kernel, windows that leave the
// end of the input uncovered, dilations; 1, 3 and 64 channels.
const std::vector<PoolCase>& cases() {
  static std::vector<PoolCase> c{
      {{2, 11, 3}, {3}, {2}, {1}, {1}},
      {{1, 10, 64}, {2}, {3}, {0}, {1}},
      {{3, 9, 1}, {3}, {1}, {1}, {2}},
      {{2, 9, 8, 3}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},  // ResNet's stem, small
      {{1, 7, 10, 64}, {2, 3}, {3, 4}, {1, 1}, {1, 1}},
      {{2, 8, 7, 1}, {3, 2}, {1, 2}, {0, 1}, {2, 1}},
      {{1, 6, 6, 5}, {4, 4}, {2, 2}, {2, 2}, {1, 1}},
      {{2, 5, 6, 7, 3}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}},
      {{1, 4, 5, 6, 64}, {2, 3, 2}, {2, 1, 3}, {1, 0, 1}, {1, 2, 1}},
      {{1, 3, 4, 5, 8}, {1, 2, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}},
  };
  return c;
}

bool dilated(const PoolCase& c) {
  for (int v : c.dil)
    if (v != 1) return true;
  return false;
}

TEST(Pool, MaxMatchesTheDefinition) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, float64, float16, bfloat16, int32, uint8, bool_}) {
      for (const PoolCase& c : cases()) {
        auto [x, xv] = test::random_array(c.x, t, -100, 100);
        Shape os;
        auto ref = ref_pool(xv, c, true, true, -INFINITY, os);
        array y = max_pool(copy(x, d), c.k, c.s, c.p, c.dil);
        const std::string what = describe("max_pool", d, t, c);
        ASSERT_EQ(y.shape(), os) << what;
        EXPECT_EQ(y.dtype(), t) << what;
        // A max picks one of its inputs: exact in every dtype.
        EXPECT_EQ(test::relative_error(test::to_doubles(y), ref), 0.0) << what;
      }
    }
  }
  test::note_gpu_skip();
}

TEST(Pool, AvgMatchesTheDefinition) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, float64, float16, bfloat16}) {
      for (const PoolCase& c : cases()) {
        if (dilated(c)) continue;  // avg_pool has no dilation
        auto [x, xv] = test::random_array(c.x, t);
        for (bool include_pad : {true, false}) {
          Shape os;
          auto ref = ref_pool(xv, c, false, include_pad, 0, os);
          array y = avg_pool(copy(x, d), c.k, c.s, c.p, include_pad);
          const std::string what =
              describe("avg_pool", d, t, c) + (include_pad ? " count_include_pad" : " real inputs only");
          ASSERT_EQ(y.shape(), os) << what;
          EXPECT_EQ(y.dtype(), t) << what;
          KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
        }
      }
    }
  }
  test::note_gpu_skip();
}

// Integers average to float32.
TEST(Pool, AvgOfIntegersIsFloat32) {
  const PoolCase c{{2, 7, 6, 3}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  for (Device d : test::devices()) {
    auto [x, xv] = test::random_array(c.x, int32, -50, 50);
    for (bool include_pad : {true, false}) {
      Shape os;
      auto ref = ref_pool(xv, c, false, include_pad, 0, os);
      array y = avg_pool(copy(x, d), c.k, c.s, c.p, include_pad);
      EXPECT_EQ(y.dtype(), float32);
      KILN_EXPECT_CLOSE(test::to_doubles(y), ref, float32, describe("avg_pool", d, int32, c));
    }
  }
  test::note_gpu_skip();
}

// NaN wins a max, as in PyTorch; -inf where a dilated window holds padding only; an integer
// window of padding only gives the dtype's lowest value.
TEST(Pool, MaxNaNAndWindowsOfPaddingOnly) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16}) {
      const PoolCase c{{2, 9, 8, 64}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
      auto [x, xv] = test::random_array(c.x, t);
      std::vector<double> v = xv;
      for (size_t i = 0; i < v.size(); i += 37) v[i] = NAN;
      array xn = test::from_doubles(v, c.x, t);
      Shape os;
      auto ref = ref_pool(v, c, true, true, -INFINITY, os);
      const std::string what = describe("max_pool NaN", d, t, c);
      EXPECT_EQ(test::relative_error(test::to_doubles(max_pool(copy(xn, d), c.k, c.s, c.p)), ref), 0.0) << what;
    }
    // Taps at -1 and 2 of an axis of 2: the window reads nothing.
    const PoolCase c{{1, 2, 4, 3}, {2, 1}, {1, 1}, {1, 0}, {3, 1}};
    for (Dtype t : {float32, int32, uint8, bool_}) {
      auto [x, xv] = test::random_array(c.x, t, 0, 100);
      const double lowest = t == float32 ? -INFINITY : t == int32 ? std::numeric_limits<int32_t>::lowest() : 0;
      Shape os;
      auto ref = ref_pool(xv, c, true, true, lowest, os);
      EXPECT_EQ(test::relative_error(test::to_doubles(max_pool(copy(x, d), c.k, c.s, c.p, c.dil)), ref), 0.0)
          << describe("max_pool padding only", d, t, c);
    }
  }
  test::note_gpu_skip();
}

// Inputs of any layout: a transposed view and a strided slice.
TEST(Pool, NonContiguousInputs) {
  const PoolCase c{{2, 9, 8, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16}) {
      auto [base, bv] = test::random_array({2, 8, 9, 12}, t);
      for (int layout : {0, 1}) {
        array x = layout == 0 ? transpose(slice(base, {0, 0, 0, 0}, {2, 8, 9, 6}), {0, 2, 1, 3})
                              : slice(transpose(base, {0, 2, 1, 3}), {0, 0, 0, 0}, {2, 9, 8, 12}, {1, 1, 1, 2});
        std::vector<double> xv = test::to_doubles(x);
        Shape os;
        auto rmax = ref_pool(xv, c, true, true, -INFINITY, os);
        auto ravg = ref_pool(xv, c, false, false, 0, os);
        array xd = copy(x, d);
        const std::string what = describe("pool of a view", d, t, c) + " layout " + std::to_string(layout);
        EXPECT_EQ(test::relative_error(test::to_doubles(max_pool(xd, c.k, c.s, c.p)), rmax), 0.0) << what;
        KILN_EXPECT_CLOSE(test::to_doubles(avg_pool(xd, c.k, c.s, c.p, false)), ravg, t, what);
      }
    }
  }
  test::note_gpu_skip();
}

// Adaptive pooling to sizes that divide the input runs the pool primitive: 1-D, 2-D, 3-D.
TEST(Pool, AdaptiveEvenSplit) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16}) {
      for (auto [xs, out] : {std::pair{Shape{2, 12, 5}, Shape{4}}, std::pair{Shape{2, 8, 6, 64}, Shape{2, 3}},
                             std::pair{Shape{1, 4, 6, 8, 3}, Shape{1, 2, 4}}}) {
        auto [x, xv] = test::random_array(xs, t);
        PoolCase c{xs, {}, {}, {}, {}};
        for (size_t j = 0; j < out.size(); ++j) {
          int k = static_cast<int>(xs[1 + j] / out[j]);
          c.k.push_back(k);
          c.s.push_back(k);
          c.p.push_back(0);
          c.dil.push_back(1);
        }
        Shape os;
        auto ref = ref_pool(xv, c, false, true, 0, os);
        array y = adaptive_avg_pool(copy(x, d), std::vector<int64_t>(out.begin(), out.end()));
        const std::string what = describe("adaptive_avg_pool", d, t, c);
        EXPECT_STREQ(y.primitive().name(), "pool") << what;
        ASSERT_EQ(y.shape(), os) << what;
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what);
      }
    }
  }
  test::note_gpu_skip();
}

// Every node of a graph, depth first.
void collect(const array& a, std::vector<std::string>& names) {
  if (!a.has_primitive()) return;
  names.push_back(a.primitive().name());
  for (const array& in : a.inputs()) collect(in, names);
}

// max_pool of an input in place is one pool node reading it: no padding copy, no windows.
TEST(Pool, OneNode) {
  array x = test::random_array({2, 9, 8, 3}, bfloat16).first;
  eval(x);
  array y = max_pool(x, {3, 3}, {2, 2}, {1, 1});
  std::vector<std::string> names;
  collect(y, names);
  EXPECT_EQ(names, std::vector<std::string>{"pool"});
  EXPECT_TRUE(y.inputs()[0].is_same(x));
  names.clear();
  collect(avg_pool(x, {3, 3}, {2, 2}, {1, 1}, false), names);
  EXPECT_EQ(names, std::vector<std::string>{"pool"});
  std::ostringstream os;
  y.primitive().print(os);
  EXPECT_EQ(os.str(), "pool(max, kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))");
}

TEST(Pool, Errors) {
  array x = zeros({1, 8, 8, 4});
  KILN_EXPECT_THROW_MSG(max_pool(zeros({1, 8, 8, 4}, complex64), {2, 2}), TypeError, "[max_pool] complex64");
  KILN_EXPECT_THROW_MSG(max_pool(x, {3, 3}, {1, 1}, {1, 1}, {5, 1}), ValueError, "larger than spatial axis 0");
  KILN_EXPECT_THROW_MSG(avg_pool(x, {9, 2}), ValueError, "[avg_pool] the kernel (9, dilation 1)");
  KILN_EXPECT_THROW_MSG(max_pool(x, {2, 2}, {0, 1}), ValueError, "stride must be positive");
  KILN_EXPECT_THROW_MSG(max_pool(zeros({8, 4}), {2}), ValueError, "1 to 3 spatial axes");
}

}  // namespace
}  // namespace kiln
