// Scans (cumsum, cumprod, cummax, cummin) against float64 references computed here, on every
// device, along every axis, forward and reverse, inclusive and exclusive.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "test_utils.h"

using namespace kiln;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Kind { sum, prod, max, min };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::sum: return "cumsum";
    case Kind::prod: return "cumprod";
    case Kind::max: return "cummax";
    case Kind::min: return "cummin";
  }
  return "?";
}

Dtype out_dtype(Kind k, Dtype t) {
  if (k == Kind::max || k == Kind::min) return t;
  if (t == bool_ || t == int8 || t == int16) return int32;
  if (t == uint8 || t == uint16) return uint32;
  return t;
}

// The identity an exclusive scan starts from, as a double in the output dtype.
double identity(Kind k, Dtype t) {
  if (k == Kind::sum) return 0;
  if (k == Kind::prod) return 1;
  bool hi = k == Kind::min;
  switch (t) {
    case bool_: return hi ? 1 : 0;
    case uint8: return hi ? 255 : 0;
    case uint16: return hi ? 65535 : 0;
    case uint32: return hi ? 4294967295.0 : 0;
    case uint64: return hi ? 18446744073709551615.0 : 0;
    case int8: return hi ? 127 : -128;
    case int16: return hi ? 32767 : -32768;
    case int32: return hi ? 2147483647.0 : -2147483648.0;
    case int64: return hi ? 9223372036854775807.0 : -9223372036854775808.0;
    default: return hi ? kInf : -kInf;
  }
}

double fold(Kind k, double a, double b) {
  switch (k) {
    case Kind::sum: return a + b;
    case Kind::prod: return a * b;
    case Kind::max: return (std::isnan(a) || std::isnan(b)) ? kNaN : std::max(a, b);
    case Kind::min: return (std::isnan(a) || std::isnan(b)) ? kNaN : std::min(a, b);
  }
  return 0;
}

// Reference scan of row-major values `v` of `shape` along `axis` (normalized).
std::vector<double> ref_scan(Kind k, Dtype out, const std::vector<double>& v, const Shape& shape, int axis, bool reverse,
                             bool inclusive) {
  std::vector<double> r(v.size());
  int64_t len = shape[axis], inner = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  if (len == 0) return r;
  int64_t outer = static_cast<int64_t>(v.size()) / (len * inner);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      double acc = identity(k, out);
      for (int64_t j = 0; j < len; ++j) {
        int64_t kk = reverse ? len - 1 - j : j;
        int64_t at = (o * len + kk) * inner + i;
        if (inclusive) {
          acc = j == 0 ? v[at] : fold(k, acc, v[at]);
          r[at] = acc;
        } else {
          r[at] = acc;
          acc = j == 0 ? v[at] : fold(k, acc, v[at]);
        }
      }
    }
  }
  return r;
}

array run_scan(Kind k, const array& x, int axis, bool reverse, bool inclusive, Device d) {
  switch (k) {
    case Kind::sum: return cumsum(x, axis, reverse, inclusive, d);
    case Kind::prod: return cumprod(x, axis, reverse, inclusive, d);
    case Kind::max: return cummax(x, axis, reverse, inclusive, d);
    case Kind::min: return cummin(x, axis, reverse, inclusive, d);
  }
  return x;
}

void check_scan(Kind k, const array& x, const std::vector<double>& xv, int axis, bool reverse, bool inclusive, Device d,
                const std::string& label = "") {
  std::ostringstream os;
  os << kind_name(k) << " on " << test::device_name(d) << ", " << x.dtype() << " " << x.shape() << " axis " << axis
     << (reverse ? " reverse" : "") << (inclusive ? "" : " exclusive") << " " << label;
  Dtype ot = out_dtype(k, x.dtype());
  array r = run_scan(k, x, axis, reverse, inclusive, d);
  ASSERT_EQ(r.shape(), x.shape()) << os.str();
  EXPECT_EQ(r.dtype(), ot) << os.str();
  int ax = axis < 0 ? axis + x.ndim() : axis;
  auto want = ref_scan(k, ot, xv, x.shape(), ax, reverse, inclusive);
  auto got = test::to_doubles(r);
  EXPECT_LE(test::relative_error(got, want), test::tolerance(ot)) << os.str();
}

std::vector<Dtype> with_bool_ints_floats() {
  std::vector<Dtype> d{bool_};
  for (Dtype t : test::int_dtypes()) d.push_back(t);
  for (Dtype t : test::float_dtypes()) d.push_back(t);
  return d;
}

}  // namespace

TEST(Scan, AllAxesAndFlags) {
  test::note_gpu_skip();
  std::vector<Shape> shapes = {{7}, {3, 4}, {2, 3, 5}, {4, 1, 6}, {2, 40, 3}};
  for (Device d : test::devices()) {
    for (Kind k : {Kind::sum, Kind::prod, Kind::max, Kind::min}) {
      for (Dtype t : with_bool_ints_floats()) {
        // Products: values near 1 for floats, small integers over short lines.
        bool prod = k == Kind::prod;
        double lo = prod ? (is_floating(t) ? 0.8 : -2) : -50, hi = prod ? (is_floating(t) ? 1.25 : 2) : 50;
        for (const auto& shape : shapes) {
          for (int axis = -1; axis < static_cast<int>(shape.size()); ++axis) {
            if (prod && !is_floating(t) && shape[axis < 0 ? shape.size() - 1 : axis] > 20) continue;
            for (bool reverse : {false, true}) {
              for (bool inclusive : {true, false}) {
                auto [x, xv] = test::random_array(shape, t, lo, hi);
                check_scan(k, x, xv, axis, reverse, inclusive, d);
              }
            }
          }
        }
      }
    }
  }
}

// Long lines (several tiles per block), many short lines, and lines along outer axes.
TEST(Scan, Large) {
  std::vector<std::pair<Shape, int>> cs = {{{3, 5000}, 1}, {{5000, 3}, 0}, {{2, 70001}, -1}, {{20000, 17}, 1},
                                           {{100, 300}, 1}, {{300, 100}, 0}, {{4, 1000, 33}, 1}};
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16, float16, int32, int64}) {
      for (auto& [shape, axis] : cs) {
        for (bool reverse : {false, true}) {
          for (bool inclusive : {true, false}) {
            // Non-negative values keep float running sums away from cancellation (and below the
            // float16 maximum of 65504).
            auto [x, xv] = test::random_array(shape, t, 0, t == float16 ? 0.5 : 2);
            check_scan(Kind::sum, x, xv, axis, reverse, inclusive, d);
            check_scan(Kind::max, x, xv, axis, reverse, inclusive, d);
          }
        }
      }
      auto [p, pv] = test::random_array({8, 3000}, t, is_floating(t) ? 0.999 : 1, is_floating(t) ? 1.001 : 1);
      check_scan(Kind::prod, p, pv, 1, false, true, d);
      check_scan(Kind::min, p, pv, 0, true, false, d);
    }
  }
}

TEST(Scan, NonContiguous) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, int16, bool_}) {
      auto [a, av] = test::random_array({6, 8, 10}, t, -5, 5);
      auto [b, bv] = test::random_array({8}, t, -5, 5);
      std::vector<std::pair<std::string, array>> views = {
          {"transpose", transpose(a, {2, 0, 1}, d)},
          {"step", slice(a, {0, 1, 0}, {6, 8, 10}, {2, 2, 3}, d)},
          {"reverse", slice(a, {5, 0, 9}, {-100, 8, -100}, {-1, 1, -2}, d)},
          {"broadcast", broadcast_to(reshape(b, {1, 8, 1}, d), {6, 8, 10}, d)},
          {"offset", slice(a, {1, 1, 1}, {6, 8, 10}, {}, d)},
      };
      for (auto& [label, x] : views) {
        auto xv = test::to_doubles(x);
        for (int axis = 0; axis < 3; ++axis) {
          for (bool reverse : {false, true}) {
            check_scan(Kind::sum, x, xv, axis, reverse, true, d, label);
            check_scan(Kind::max, x, xv, axis, reverse, false, d, label);
            check_scan(Kind::min, x, xv, axis, !reverse, true, d, label);
          }
        }
      }
    }
  }
}

TEST(Scan, NaNPropagates) {
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      auto v = test::uniform_values(3 * 300, -1, 1);
      v[10] = kNaN;
      v[300 + 299] = kNaN;
      array x = test::from_doubles(v, {3, 300}, t);
      auto xv = test::to_doubles(x);
      for (int axis : {0, 1}) {
        for (bool reverse : {false, true}) {
          check_scan(Kind::max, x, xv, axis, reverse, true, d);
          check_scan(Kind::min, x, xv, axis, reverse, true, d);
          check_scan(Kind::sum, x, xv, axis, reverse, true, d);
        }
      }
    }
  }
}

TEST(Scan, Complex) {
  for (Device d : test::devices()) {
    for (Shape shape : {Shape{9}, Shape{3, 500}, Shape{40, 3}}) {
      int64_t n = shape_size(shape);
      auto re = test::uniform_values(n, 0.9, 1.1), im = test::uniform_values(n, -0.1, 0.1);
      std::vector<complex64_t> v(n);
      for (int64_t i = 0; i < n; ++i) v[i] = complex64_t(static_cast<float>(re[i]), static_cast<float>(im[i]));
      array x(v, shape);
      int axis = static_cast<int>(shape.size()) - 1;
      int64_t len = shape[axis], rows = n / len;
      for (bool prod : {false, true}) {
        array r = prod ? cumprod(x, axis, false, true, d) : cumsum(x, axis, false, true, d);
        ASSERT_EQ(r.dtype(), complex64);
        auto got = r.to_vector<complex64_t>();
        std::vector<double> g, w;
        for (int64_t row = 0; row < rows; ++row) {
          std::complex<double> acc = prod ? 1.0 : 0.0;
          for (int64_t j = 0; j < len; ++j) {
            int64_t i = row * len + j;
            std::complex<double> z(v[i].re, v[i].im);
            acc = prod ? acc * z : acc + z;
            w.insert(w.end(), {acc.real(), acc.imag()});
            g.insert(g.end(), {got[i].re, got[i].im});
          }
        }
        std::ostringstream what;
        what << (prod ? "cumprod " : "cumsum ") << test::device_name(d) << " " << shape;
        EXPECT_LE(test::relative_error(g, w), 1e-5) << what.str();
      }
    }
  }
}

TEST(Scan, EmptyAndErrors) {
  for (Device d : test::devices()) {
    EXPECT_EQ(cumsum(zeros({0, 3}), 0, false, true, d).shape(), (Shape{0, 3}));
    EXPECT_EQ(cumprod(zeros({3, 0}, int8), 0, true, false, d).dtype(), int32);
    EXPECT_EQ(cummax(zeros({3, 0}, int8), 1, false, true, d).shape(), (Shape{3, 0}));
    auto one = test::to_doubles(cumsum(array({5.f}), 0, false, false, d));
    EXPECT_EQ(one, std::vector<double>{0.0});
  }
  KILN_EXPECT_THROW_MSG(cumsum(array(1.f), 0), IndexError, "[cumsum]");
  KILN_EXPECT_THROW_MSG(cumprod(zeros({2, 3}), 2), IndexError, "[cumprod]");
  KILN_EXPECT_THROW_MSG(cummax(zeros({2, 3}), -3), IndexError, "[cummax]");
  KILN_EXPECT_THROW_MSG(cummax(astype(zeros({2}), complex64), 0), TypeError, "[cummax]");
  KILN_EXPECT_THROW_MSG(cummin(astype(zeros({2}), complex64), 0), TypeError, "[cummin]");
}
