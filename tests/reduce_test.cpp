// Reductions, arg-reductions and softmax against float64 references computed here, on every
// device, for float, integer, bool and complex inputs, contiguous or not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>

#include "test_utils.h"

using namespace kiln;

namespace {

using Axes = std::optional<std::vector<int>>;  // nullopt: the overload without axes (all axes)
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Axes ax(std::initializer_list<int> axes) { return std::vector<int>(axes); }

std::vector<int> normalized(const Axes& axes, int ndim) {
  std::vector<int> r;
  if (!axes) {
    for (int d = 0; d < ndim; ++d) r.push_back(d);
    return r;
  }
  for (int a : *axes) r.push_back(a < 0 ? a + ndim : a);
  std::sort(r.begin(), r.end());
  return r;
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdims) {
  Shape out;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    bool r = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!r) out.push_back(shape[d]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

// For each element (row-major), the output it folds into.
std::vector<int64_t> group_index(const Shape& shape, const std::vector<int>& axes) {
  int nd = static_cast<int>(shape.size());
  std::vector<bool> red(nd, false);
  for (int a : axes) red[a] = true;
  std::vector<int64_t> g(static_cast<size_t>(shape_size(shape)));
  std::vector<int64_t> idx(nd, 0);
  for (size_t i = 0; i < g.size(); ++i) {
    int64_t o = 0;
    for (int d = 0; d < nd; ++d) {
      if (!red[d]) o = o * shape[d] + idx[d];
    }
    g[i] = o;
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return g;
}

// The values folding into each output, in row-major order of the reduced axes.
std::vector<std::vector<double>> groups(const std::vector<double>& v, const Shape& shape, const std::vector<int>& axes) {
  std::vector<std::vector<double>> g(static_cast<size_t>(shape_size(reduced_shape(shape, axes, false))));
  auto gi = group_index(shape, axes);
  for (size_t i = 0; i < v.size(); ++i) g[gi[i]].push_back(v[i]);
  return g;
}

double r_sum(const std::vector<double>& g) {
  long double s = 0;
  for (double x : g) s += x;
  return static_cast<double>(s);
}
double r_prod(const std::vector<double>& g) {
  long double s = 1;
  for (double x : g) s *= x;
  return static_cast<double>(s);
}
double r_max(const std::vector<double>& g) {
  double m = -kInf;
  for (double x : g) {
    if (std::isnan(x)) return kNaN;
    m = std::max(m, x);
  }
  return m;
}
double r_min(const std::vector<double>& g) {
  double m = kInf;
  for (double x : g) {
    if (std::isnan(x)) return kNaN;
    m = std::min(m, x);
  }
  return m;
}
double r_all(const std::vector<double>& g) {
  for (double x : g) {
    if (x == 0) return 0;
  }
  return 1;
}
double r_any(const std::vector<double>& g) {
  for (double x : g) {
    if (x != 0) return 1;
  }
  return 0;
}
double r_mean(const std::vector<double>& g) { return r_sum(g) / static_cast<double>(g.size()); }
double r_var(const std::vector<double>& g, int ddof) {
  double m = r_mean(g);
  long double ss = 0;
  for (double x : g) ss += (x - m) * (x - m);
  return static_cast<double>(ss) / std::max<double>(static_cast<double>(g.size()) - ddof, 0.0);
}
double r_lse(const std::vector<double>& g) {
  double m = r_max(g);
  if (std::isnan(m)) return m;
  if (std::isinf(m)) return m;
  long double s = 0;
  for (double x : g) s += std::exp(x - m);
  return m + std::log(static_cast<double>(s));
}
// First index of the extreme; NaN counts as the extreme.
double r_argmax(const std::vector<double>& g) {
  size_t b = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i])) return static_cast<double>(i);
    if (g[i] > g[b]) b = i;
  }
  return static_cast<double>(b);
}
double r_argmin(const std::vector<double>& g) {
  size_t b = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i])) return static_cast<double>(i);
    if (g[i] < g[b]) b = i;
  }
  return static_cast<double>(b);
}

using RefFn = std::function<double(const std::vector<double>&)>;
using OpFn = std::function<array(const array&, const Axes&, bool, Device)>;

// Wraps a reduction so that nullopt axes call the no-axis overload and one axis the int overload.
#define KILN_REDUCER(fn)                                                             \
  OpFn([](const array& x, const Axes& ax, bool kd, Device d) {                       \
    if (!ax) return fn(x, kd, d);                                                    \
    if (ax->size() == 1) return fn(x, (*ax)[0], kd, d);                              \
    return fn(x, *ax, kd, d);                                                        \
  })

std::string describe(const char* op, Device d, Dtype t, const Shape& shape, const Axes& axes, bool keepdims) {
  std::ostringstream os;
  os << op << " on " << test::device_name(d) << ", " << t << " " << shape << ", axes ";
  if (axes) {
    os << "(";
    for (int a : *axes) os << a << " ";
    os << ")";
  } else {
    os << "all";
  }
  os << (keepdims ? ", keepdims" : "");
  return os.str();
}

// Runs op on x (whose exact values are xv) and compares with ref applied to each output's
// values. tol < 0 takes test::tolerance of the output dtype.
void check(const char* name, const OpFn& op, const RefFn& ref, const array& x, const std::vector<double>& xv,
           const Axes& axes, bool keepdims, Dtype expect, Device d, double tol = -1) {
  std::string what = describe(name, d, x.dtype(), x.shape(), axes, keepdims);
  auto ax = normalized(axes, x.ndim());
  array out = op(x, axes, keepdims, d);
  ASSERT_EQ(out.shape(), reduced_shape(x.shape(), ax, keepdims)) << what;
  EXPECT_EQ(out.dtype(), expect) << what;
  std::vector<double> want, scale;
  const bool summing = std::string(name) == "sum" || std::string(name) == "mean";
  for (auto& g : groups(xv, x.shape(), ax)) {
    want.push_back(ref(g));
    // A sum's rounding error grows with the magnitudes summed, not with the result, which
    // cancellation can make arbitrarily small: measure it against the sum of |x| (the mean of
    // |x| for mean).
    double m = 0;
    for (double v : g) m += std::abs(v);
    scale.push_back(std::string(name) == "mean" && !g.empty() ? m / g.size() : m);
  }
  std::vector<double> got = test::to_doubles(out);
  double err = 0;
  if (summing && is_floating(x.dtype())) {
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
      double e = std::abs(got[i] - want[i]);
      if (std::isnan(got[i]) != std::isnan(want[i])) e = INFINITY;
      if (std::isnan(got[i]) && std::isnan(want[i])) e = 0;
      err = std::max(err, scale[i] > 0 ? e / scale[i] : e);
    }
    if (got.size() != want.size()) err = INFINITY;
  } else {
    err = test::relative_error(got, want);
  }
  EXPECT_LE(err, tol < 0 ? test::tolerance(expect) : tol) << what;
}

struct Case {
  Shape shape;
  Axes axes;
};

const std::vector<Case>& cases() {
  static std::vector<Case> c = {
      {{}, std::nullopt},        {{7}, std::nullopt},        {{7}, ax({0})},             {{7}, ax({-1})},
      {{3, 4}, std::nullopt},    {{3, 4}, ax({0})},            {{3, 4}, ax({1})},          {{3, 4}, ax({-2})},
      {{3, 4}, ax({0, 1})},        {{2, 3, 5}, ax({1})},         {{2, 3, 5}, ax({0, 2})},    {{2, 3, 5}, ax({-1, 0})},
      {{2, 3, 5}, ax({2})},        {{2, 3, 5}, ax({0})},         {{2, 3, 5}, ax({1, 2})},    {{4, 1, 6}, ax({1})},
      {{4, 1, 6}, ax({0, 1})},     {{33, 65}, ax({0})},          {{33, 65}, ax({1})},        {{130, 3}, ax({0})},
      {{2, 3, 4, 5}, ax({1, 3})},  {{2, 3, 4, 5}, ax({0, 2, 3})}, {{3}, std::vector<int>{}},
  };
  return c;
}

int64_t reduced_count(const Case& c) {
  int64_t n = 1;
  for (int a : normalized(c.axes, static_cast<int>(c.shape.size()))) n *= c.shape[a];
  return n;
}

Dtype sum_dtype(Dtype t) {
  if (t == bool_ || t == int8 || t == int16) return int32;
  if (t == uint8 || t == uint16) return uint32;
  return t;
}

// Runs op over every case, both keepdims, on every device, for the dtypes given.
void sweep(const char* name, const OpFn& op, const RefFn& ref, const std::vector<Dtype>& dtypes,
           const std::function<Dtype(Dtype)>& out_dtype, double lo = -2, double hi = 2,
           int64_t max_reduced = -1) {
  for (Device d : test::devices()) {
    for (Dtype t : dtypes) {
      for (const auto& c : cases()) {
        if (max_reduced >= 0 && reduced_count(c) > max_reduced) continue;
        for (bool kd : {false, true}) {
          auto [x, xv] = test::random_array(c.shape, t, lo, hi);
          check(name, op, ref, x, xv, c.axes, kd, out_dtype(t), d);
        }
      }
    }
  }
}

std::vector<Dtype> concat(std::vector<Dtype> a, const std::vector<Dtype>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Dtype same(Dtype t) { return t; }
Dtype to_float(Dtype t) { return is_floating(t) ? t : float32; }

}  // namespace

TEST(Reduce, Sum) {
  test::note_gpu_skip();
  sweep("sum", KILN_REDUCER(sum), r_sum, concat(concat({bool_}, test::int_dtypes()), test::float_dtypes()), sum_dtype);
}

TEST(Reduce, Prod) {
  // Values near 1 keep float products in range; integer products stay small enough not to wrap.
  sweep("prod", KILN_REDUCER(prod), r_prod, test::float_dtypes(), sum_dtype, 0.8, 1.25);
  sweep("prod", KILN_REDUCER(prod), r_prod, concat({bool_}, test::int_dtypes()), sum_dtype, -2, 2, 20);
}

TEST(Reduce, MaxMin) {
  auto dtypes = concat(concat({bool_}, test::int_dtypes()), test::float_dtypes());
  sweep("max", KILN_REDUCER(max), r_max, dtypes, same, -100, 100);
  sweep("min", KILN_REDUCER(min), r_min, dtypes, same, -100, 100);
}

TEST(Reduce, AllAny) {
  // Integers in [0, 1] and bools give both outcomes often; floats are never exactly 0.
  auto dtypes = concat(concat({bool_}, test::int_dtypes()), test::float_dtypes());
  auto as_bool = [](Dtype) { return bool_; };
  sweep("all", KILN_REDUCER(all), r_all, dtypes, as_bool, 0, 1);
  sweep("any", KILN_REDUCER(any), r_any, dtypes, as_bool, 0, 1);
}

TEST(Reduce, Mean) {
  auto dtypes = concat({bool_, uint8, int32, int64}, test::float_dtypes());
  sweep("mean", KILN_REDUCER(mean), r_mean, dtypes, to_float);
}

TEST(Reduce, VarStd) {
  auto dtypes = concat({int16, uint32}, test::float_dtypes());
  for (int ddof : {0, 1}) {
    OpFn v = [ddof](const array& x, const Axes& ax, bool kd, Device d) {
      if (!ax) return var(x, kd, ddof, d);
      if (ax->size() == 1) return var(x, (*ax)[0], kd, ddof, d);
      return var(x, *ax, kd, ddof, d);
    };
    OpFn s = [ddof](const array& x, const Axes& ax, bool kd, Device d) {
      if (!ax) return kiln::std(x, kd, ddof, d);
      if (ax->size() == 1) return kiln::std(x, (*ax)[0], kd, ddof, d);
      return kiln::std(x, *ax, kd, ddof, d);
    };
    sweep("var", v, [ddof](const std::vector<double>& g) { return r_var(g, ddof); }, dtypes, to_float);
    sweep("std", s, [ddof](const std::vector<double>& g) { return std::sqrt(r_var(g, ddof)); }, dtypes, to_float);
  }
}

TEST(Reduce, Logsumexp) {
  auto dtypes = concat({int8, bool_}, test::float_dtypes());
  sweep("logsumexp", KILN_REDUCER(logsumexp), r_lse, dtypes, to_float, -20, 20);
  // Rows of -inf give -inf, +inf gives +inf, large values do not overflow.
  for (Device d : test::devices()) {
    std::vector<double> v = {-kInf, -kInf, 1000, 999, kInf, 1, 2, 3, -kInf, -kInf, -kInf, -kInf};
    array x = test::from_doubles(v, {4, 3}, float32);
    std::vector<double> want;
    for (auto& g : groups(v, {4, 3}, {1})) want.push_back(r_lse(g));
    EXPECT_LE(test::relative_error(test::to_doubles(logsumexp(x, 1, false, d)), want), 1e-6) << test::device_name(d);
  }
}

TEST(Reduce, Complex) {
  for (Device d : test::devices()) {
    for (const auto& c : cases()) {
      int64_t n = shape_size(c.shape);
      auto re = test::uniform_values(n, 0.8, 1.25), im = test::uniform_values(n, -0.2, 0.2);
      std::vector<complex64_t> v(n);
      for (int64_t i = 0; i < n; ++i) v[i] = complex64_t(static_cast<float>(re[i]), static_cast<float>(im[i]));
      array x(v, c.shape);
      auto ax = normalized(c.axes, x.ndim());
      auto gi = group_index(c.shape, ax);
      int64_t n_out = shape_size(reduced_shape(c.shape, ax, false));
      std::vector<std::complex<double>> s(n_out, 0), p(n_out, 1);
      std::vector<double> cnt(n_out, 0);
      for (int64_t i = 0; i < n; ++i) {
        std::complex<double> z(v[i].re, v[i].im);
        s[gi[i]] += z;
        p[gi[i]] *= z;
        cnt[gi[i]] += 1;
      }
      auto cmp = [&](const char* name, array out, const std::vector<std::complex<double>>& want) {
        std::string what = describe(name, d, complex64, c.shape, c.axes, false);
        ASSERT_EQ(out.dtype(), complex64) << what;
        auto got = out.to_vector<complex64_t>();
        std::vector<double> g, w;
        for (size_t i = 0; i < got.size(); ++i) {
          g.insert(g.end(), {got[i].re, got[i].im});
          w.insert(w.end(), {want[i].real(), want[i].imag()});
        }
        EXPECT_LE(test::relative_error(g, w), 1e-5) << what;
      };
      cmp("sum", KILN_REDUCER(sum)(x, c.axes, false, d), s);
      cmp("prod", KILN_REDUCER(prod)(x, c.axes, false, d), p);
      for (int64_t o = 0; o < n_out; ++o) s[o] /= cnt[o];
      cmp("mean", KILN_REDUCER(mean)(x, c.axes, false, d), s);
    }
  }
}

TEST(Reduce, NaNPropagates) {
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      auto v = test::uniform_values(4 * 37, -1, 1);
      v[5] = kNaN;           // row 0
      v[2 * 37 + 36] = kNaN;  // row 2, last
      array x = test::from_doubles(v, {4, 37}, t);
      auto xv = test::to_doubles(x);
      for (const Axes& axs : {Axes{}, ax({0}), ax({1})}) {
        check("max", KILN_REDUCER(max), r_max, x, xv, axs, false, t, d);
        check("min", KILN_REDUCER(min), r_min, x, xv, axs, false, t, d);
        check("sum", KILN_REDUCER(sum), r_sum, x, xv, axs, false, t, d);
      }
      // Large rows too (several blocks / chunks per row).
      auto w = test::uniform_values(3 * 50000, -1, 1);
      w[50000 + 31234] = kNaN;
      array y = test::from_doubles(w, {3, 50000}, t);
      auto yv = test::to_doubles(y);
      check("max", KILN_REDUCER(max), r_max, y, yv, ax({1}), false, t, d);
      check("min", KILN_REDUCER(min), r_min, y, yv, Axes{}, false, t, d);
    }
  }
}

// Transposed, sliced (positive and negative steps) and broadcast inputs, for each kernel layout
// (rows, columns, general).
TEST(Reduce, NonContiguous) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, float16, int32, bool_}) {
      auto [a, av] = test::random_array({6, 8, 10}, t, -3, 3);
      auto [b, bv] = test::random_array({8}, t, -3, 3);
      std::vector<std::pair<std::string, array>> views = {
          {"transpose", transpose(a, {2, 0, 1}, d)},
          {"swap", swapaxes(a, 0, 2, d)},
          {"step", slice(a, {0, 1, 0}, {6, 8, 10}, {2, 2, 3}, d)},
          {"reverse", slice(a, {5, 0, 9}, {-100, 8, -100}, {-1, 1, -2}, d)},
          {"broadcast", broadcast_to(reshape(b, {1, 8, 1}, d), {6, 8, 10}, d)},
          {"bcast-last", broadcast_to(reshape(b, {8, 1}, d), {3, 8, 5}, d)},
      };
      for (auto& [label, x] : views) {
        auto xv = test::to_doubles(x);
        SCOPED_TRACE(label);
        std::vector<Axes> axes_list = {Axes{}, ax({0}), ax({1}), ax({2}), ax({0, 1}), ax({0, 2}), ax({1, 2})};
        for (const Axes& axs : axes_list) {
          for (bool kd : {false, true}) {
            check("sum", KILN_REDUCER(sum), r_sum, x, xv, axs, kd, sum_dtype(t), d);
            check("max", KILN_REDUCER(max), r_max, x, xv, axs, kd, t, d);
            if (t != bool_) check("mean", KILN_REDUCER(mean), r_mean, x, xv, axs, kd, to_float(t), d);
          }
        }
        for (int axis = 0; axis < 3; ++axis) {
          auto am = [](const array& y, const Axes& ax, bool kd, Device dv) { return argmax(y, (*ax)[0], kd, dv); };
          auto an = [](const array& y, const Axes& ax, bool kd, Device dv) { return argmin(y, (*ax)[0], kd, dv); };
          check("argmax", am, r_argmax, x, xv, ax({axis}), false, uint32, d);
          check("argmin", an, r_argmin, x, xv, ax({axis}), true, uint32, d);
        }
      }
    }
  }
}

// Sizes that take the chunked, multi-block and two-pass paths.
TEST(Reduce, Large) {
  struct L {
    Shape shape;
    Axes axes;
  };
  std::vector<L> ls = {
      {{1 << 20}, std::nullopt}, {{3, 40000}, ax({1})}, {{3, 40000}, ax({0})}, {{40000, 3}, ax({0})},
      {{40000, 3}, ax({1})},       {{7, 3000}, ax({1})},  {{300, 257}, ax({0})}, {{64, 2, 4096}, ax({0, 2})},
      {{2, 100003}, std::nullopt}, {{600, 3000}, ax({1})}, {{1000, 24}, ax({0})},
  };
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16, float16, int32, int64}) {
      for (auto& c : ls) {
        auto [x, xv] = test::random_array(c.shape, t, -2, 2);
        check("sum", KILN_REDUCER(sum), r_sum, x, xv, c.axes, false, t, d);
        check("max", KILN_REDUCER(max), r_max, x, xv, c.axes, false, t, d);
        check("min", KILN_REDUCER(min), r_min, x, xv, c.axes, true, t, d);
        check("mean", KILN_REDUCER(mean), r_mean, x, xv, c.axes, false, to_float(t), d);
      }
    }
    // A strided (general) layout with long reductions, and an offset (unaligned) start.
    auto [a, av] = test::random_array({4, 80002}, float32);
    array g = slice(a, {0, 1}, {4, 80002}, {1, 2}, d);
    check("sum", KILN_REDUCER(sum), r_sum, g, test::to_doubles(g), ax({1}), false, float32, d);
    check("sum", KILN_REDUCER(sum), r_sum, g, test::to_doubles(g), Axes{}, false, float32, d);
    array u = slice(a, {1, 1}, {4, 80001}, {}, d);
    check("sum", KILN_REDUCER(sum), r_sum, u, test::to_doubles(u), ax({1}), false, float32, d);
    check("max", KILN_REDUCER(max), r_max, u, test::to_doubles(u), ax({0}), false, float32, d);
    // A float16 mean whose sum overflows float16: mean sums in float32.
    auto [h, hv] = test::random_array({1 << 16}, float16, 1.5, 2);
    check("mean", KILN_REDUCER(mean), r_mean, h, hv, Axes{}, false, float16, d);
  }
}

TEST(Reduce, ArgMaxMin) {
  auto am = [](const array& y, const Axes& ax, bool kd, Device dv) {
    return ax ? argmax(y, (*ax)[0], kd, dv) : argmax(y, kd, dv);
  };
  auto an = [](const array& y, const Axes& ax, bool kd, Device dv) {
    return ax ? argmin(y, (*ax)[0], kd, dv) : argmin(y, kd, dv);
  };
  std::vector<std::pair<Shape, Axes>> cs = {
      {{7}, Axes{}},          {{7}, ax({0})},         {{3, 4}, ax({0})},    {{3, 4}, ax({-1})},
      {{2, 3, 5}, ax({1})}, {{2, 3, 5}, Axes{}},      {{300, 70}, ax({1})}, {{300, 70}, ax({0})},
      {{3, 50000}, ax({1})}, {{3, 50000}, ax({0})}, {{1 << 20}, Axes{}},    {{}, Axes{}},
      {{600, 2100}, ax({1})},
  };
  for (Device d : test::devices()) {
    // Integers in a small range make ties frequent: the first occurrence must win.
    for (Dtype t : {bool_, uint8, int8, int32, int64, uint64, float16, bfloat16, float32, float64}) {
      for (auto& [shape, axs] : cs) {
        double lo = is_floating(t) ? -10 : 0, hi = is_floating(t) ? 10 : 3;
        auto [x, xv] = test::random_array(shape, t, lo, hi);
        for (bool kd : {false, true}) {
          std::string what = describe("argmax", d, t, shape, axs, kd);
          array r = am(x, axs, kd, d);
          ASSERT_EQ(r.dtype(), uint32) << what;
          // Flattened: the index into the flat array; with keepdims, all axes of length 1.
          std::vector<int> every;
          for (int i = 0; i < x.ndim(); ++i) every.push_back(i);
          auto red = axs ? normalized(axs, x.ndim()) : every;
          EXPECT_EQ(r.shape(), reduced_shape(shape, red, kd)) << what;
          std::vector<double> want_max, want_min;
          for (auto& g : groups(xv, shape, red)) {
            want_max.push_back(r_argmax(g));
            want_min.push_back(r_argmin(g));
          }
          EXPECT_EQ(test::to_doubles(r), want_max) << what;
          EXPECT_EQ(test::to_doubles(an(x, axs, kd, d)), want_min) << what;
        }
      }
    }
    // NaN counts as the extreme; the first NaN wins.
    for (Dtype t : test::float_dtypes()) {
      auto v = test::uniform_values(3 * 41, -1, 1);
      v[7] = kNaN;
      v[9] = kNaN;
      v[41 + 40] = kNaN;
      array x = test::from_doubles(v, {3, 41}, t);
      auto xv = test::to_doubles(x);
      for (int axis : {0, 1}) {
        check("argmax", am, r_argmax, x, xv, ax({axis}), false, uint32, d);
        check("argmin", an, r_argmin, x, xv, ax({axis}), false, uint32, d);
      }
    }
  }
}

namespace {

// softmax / log_softmax reference over `axes` (normalized), element by element.
std::vector<double> ref_softmax(const std::vector<double>& v, const Shape& shape, const std::vector<int>& axes, bool log_out) {
  auto gi = group_index(shape, axes);
  auto gs = groups(v, shape, axes);
  std::vector<double> m(gs.size()), s(gs.size());
  for (size_t o = 0; o < gs.size(); ++o) {
    m[o] = r_max(gs[o]);
    long double t = 0;
    for (double x : gs[o]) t += std::exp(x - m[o]);
    s[o] = static_cast<double>(t);
  }
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    double z = v[i] - m[gi[i]];
    r[i] = log_out ? z - std::log(s[gi[i]]) : std::exp(z) / s[gi[i]];
  }
  return r;
}

}  // namespace

TEST(Reduce, Softmax) {
  std::vector<std::pair<Shape, std::vector<int>>> cs = {
      {{7}, {0}},          {{5, 17}, {1}},       {{5, 17}, {-1}}, {{3, 4, 1000}, {2}}, {{6, 7}, {0}},
      {{2, 3, 4}, {0, 2}}, {{2, 3, 4}, {1}},     {{4, 3000}, {1}}, {{64, 33}, {1}},    {{2, 20000}, {-1}},
  };
  for (Device d : test::devices()) {
    for (Dtype t : concat({int32}, test::float_dtypes())) {
      for (auto& [shape, axes] : cs) {
        for (bool log_out : {false, true}) {
          auto [x, xv] = test::random_array(shape, t, -10, 10);
          auto ax = normalized(axes, static_cast<int>(shape.size()));
          std::string what = describe(log_out ? "log_softmax" : "softmax", d, t, shape, axes, false);
          array r = axes.size() == 1 ? (log_out ? log_softmax(x, axes[0], d) : softmax(x, axes[0], d))
                                     : (log_out ? log_softmax(x, axes, d) : softmax(x, axes, d));
          ASSERT_EQ(r.shape(), shape) << what;
          Dtype ot = to_float(t);
          EXPECT_EQ(r.dtype(), ot) << what;
          EXPECT_LE(test::relative_error(test::to_doubles(r), ref_softmax(xv, shape, ax, log_out)), test::tolerance(ot))
              << what;
        }
      }
    }
    // Default axis, a transposed (strided rows) input, and masked (-inf) entries.
    auto [a, av] = test::random_array({9, 40}, float32, -5, 5);
    array at = transpose(a, d);
    EXPECT_LE(test::relative_error(test::to_doubles(softmax(at, d)), ref_softmax(test::to_doubles(at), {40, 9}, {1}, false)),
              1e-5);
    auto mv = av;
    for (int r = 0; r < 9; ++r) mv[r * 40 + (r * 7) % 40] = -kInf;
    array masked = test::from_doubles(mv, {9, 40}, float32);
    EXPECT_LE(test::relative_error(test::to_doubles(softmax(masked, -1, d)), ref_softmax(mv, {9, 40}, {1}, false)), 1e-5);
    EXPECT_LE(test::relative_error(test::to_doubles(log_softmax(masked, -1, d)), ref_softmax(mv, {9, 40}, {1}, true)),
              1e-5);
  }
}

TEST(Reduce, EmptyAndScalar) {
  for (Device d : test::devices()) {
    std::string dn = test::device_name(d);
    array e = zeros({0, 3}, float32);
    EXPECT_EQ(test::to_doubles(sum(e, 0, false, d)), std::vector<double>(3, 0.0)) << dn;
    EXPECT_EQ(test::to_doubles(prod(e, 0, false, d)), std::vector<double>(3, 1.0)) << dn;
    EXPECT_EQ(test::to_doubles(all(e, 0, false, d)), std::vector<double>(3, 1.0)) << dn;
    EXPECT_EQ(test::to_doubles(any(e, 0, false, d)), std::vector<double>(3, 0.0)) << dn;
    EXPECT_EQ(sum(e, false, d).shape(), Shape{}) << dn;
    EXPECT_EQ(sum(e, false, d).item<float>(), 0.f) << dn;
    EXPECT_EQ(sum(zeros({0, 3}, int8), false, d).item<int32_t>(), 0) << dn;
    auto mn = test::to_doubles(mean(e, 0, false, d));
    ASSERT_EQ(mn.size(), 3u);
    EXPECT_TRUE(std::isnan(mn[0])) << dn;
    auto lse = test::to_doubles(logsumexp(e, 0, false, d));
    ASSERT_EQ(lse.size(), 3u);
    EXPECT_EQ(lse[0], -kInf) << dn;
    // Reducing the non-empty axis of an empty array gives an empty result.
    array e2 = zeros({3, 0}, float32);
    EXPECT_EQ(max(e2, 0, false, d).shape(), Shape{0}) << dn;
    EXPECT_EQ(sum(e2, 0, true, d).shape(), (Shape{1, 0})) << dn;
    EXPECT_EQ(test::to_doubles(sum(e2, 1, false, d)), std::vector<double>(3, 0.0)) << dn;
    EXPECT_EQ(cumsum(e2, 1, false, true, d).shape(), (Shape{3, 0})) << dn;
    EXPECT_EQ(softmax(e2, -1, d).shape(), (Shape{3, 0})) << dn;

    // 0-d arrays: the reduction over no axes is the value itself (in the output dtype).
    array s = array(2.5f);
    EXPECT_EQ(sum(s, false, d).item<float>(), 2.5f) << dn;
    EXPECT_EQ(max(s, true, d).shape(), Shape{}) << dn;
    EXPECT_EQ(mean(array(3), false, d).dtype(), float32) << dn;
    EXPECT_EQ(mean(array(3), false, d).item<float>(), 3.f) << dn;
    EXPECT_EQ(sum(array(true), false, d).item<int32_t>(), 1) << dn;
    EXPECT_EQ(argmax(s, false, d).item<uint32_t>(), 0u) << dn;
    EXPECT_EQ(argmax(s, true, d).shape(), Shape{}) << dn;
    EXPECT_EQ(var(s, false, 0, d).item<float>(), 0.f) << dn;
    EXPECT_EQ(logsumexp(s, false, d).item<float>(), 2.5f) << dn;
    // An empty axis list reduces nothing.
    array v = array({1.f, 2.f, 3.f});
    EXPECT_EQ(test::to_doubles(sum(v, std::vector<int>{}, false, d)), (std::vector<double>{1, 2, 3})) << dn;
    EXPECT_EQ(sum(array({1, 2}), std::vector<int>{}, false, d).dtype(), int32) << dn;
  }
}

TEST(Reduce, Errors) {
  array a = zeros({2, 3});
  KILN_EXPECT_THROW_MSG(sum(a, std::vector<int>{0, 0}), ValueError, "[sum]");
  KILN_EXPECT_THROW_MSG(sum(a, std::vector<int>{1, -1}), ValueError, "[sum]");
  KILN_EXPECT_THROW_MSG(sum(a, 2), IndexError, "[sum]");
  KILN_EXPECT_THROW_MSG(prod(a, -3), IndexError, "[prod]");
  KILN_EXPECT_THROW_MSG(mean(a, std::vector<int>{0, 5}), IndexError, "[mean]");
  KILN_EXPECT_THROW_MSG(var(a, 4), IndexError, "[var]");
  KILN_EXPECT_THROW_MSG(kiln::std(a, std::vector<int>{1, 1}), ValueError, "[std]");
  KILN_EXPECT_THROW_MSG(logsumexp(a, 9), IndexError, "[logsumexp]");
  KILN_EXPECT_THROW_MSG(all(a, 2), IndexError, "[all]");
  KILN_EXPECT_THROW_MSG(sum(array(1.f), 0), IndexError, "[sum]");
  KILN_EXPECT_THROW_MSG(max(zeros({0, 3}), 0), ValueError, "[max]");
  KILN_EXPECT_THROW_MSG(min(zeros({0})), ValueError, "[min]");
  KILN_EXPECT_THROW_MSG(argmax(zeros({3, 0}), 1), ValueError, "[argmax]");
  KILN_EXPECT_THROW_MSG(argmin(zeros({0})), ValueError, "[argmin]");
  KILN_EXPECT_THROW_MSG(argmax(a, 2), IndexError, "[argmax]");
  KILN_EXPECT_THROW_MSG(softmax(a, 2), IndexError, "[softmax]");
  KILN_EXPECT_THROW_MSG(log_softmax(a, std::vector<int>{0, 0}), ValueError, "[log_softmax]");
  array c = astype(a, complex64);
  KILN_EXPECT_THROW_MSG(max(c), TypeError, "[max]");
  KILN_EXPECT_THROW_MSG(min(c, 0), TypeError, "[min]");
  KILN_EXPECT_THROW_MSG(var(c), TypeError, "[var]");
  KILN_EXPECT_THROW_MSG(logsumexp(c), TypeError, "[logsumexp]");
  KILN_EXPECT_THROW_MSG(argmax(c, 0), TypeError, "[argmax]");
  KILN_EXPECT_THROW_MSG(softmax(c), TypeError, "[softmax]");
}
