// Elementwise operations against references written here: one table-driven harness runs every
// unary op (KILN_UNARY_OPS) and every binary op (KILN_BINARY_OPS) on every dtype and every device,
// on contiguous, transposed, sliced, broadcast, 0-d, empty and large inputs. Float results are
// compared with a float64 <cmath> reference on the exact (rounded) inputs; integer and bool results
// must match exactly, with two's-complement wrapping computed here in 128-bit integers.
#include <gtest/gtest.h>

#include <bit>
#include <complex>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "kiln/primitives_elementwise.h"
#include "tests/test_utils.h"

using namespace kiln;

namespace {

using LD = long double;  // 64-bit significand: every int64/uint64 value is exact
using I128 = __int128;
using cd = std::complex<double>;

// ---------------------------------------------------------------------------------------------
// Exact values and the reference's number formats

struct Vals {
  std::vector<LD> re, im;  // im is all zeros for real dtypes
  size_t size() const { return re.size(); }
};

Vals read(array a) {
  Vals v;
  Dtype d = a.dtype();
  if (is_unsigned(d)) {
    for (auto x : a.to_vector<uint64_t>()) v.re.push_back(static_cast<LD>(x));
  } else if (is_integer(d) || d == bool_) {
    for (auto x : a.to_vector<int64_t>()) v.re.push_back(static_cast<LD>(x));
  } else if (d == complex64) {
    for (auto z : a.to_vector<complex64_t>()) {
      v.re.push_back(z.re);
      v.im.push_back(z.im);
    }
  } else {
    for (auto x : a.to_vector<double>()) v.re.push_back(x);
  }
  if (v.im.empty()) v.im.assign(v.re.size(), 0);
  return v;
}

int bits(Dtype d) { return static_cast<int>(size_of(d)) * 8; }
I128 int_min(Dtype d) { return d == bool_ || is_unsigned(d) ? 0 : -(I128(1) << (bits(d) - 1)); }
I128 int_max(Dtype d) {
  if (d == bool_) return 1;
  return is_unsigned(d) ? (I128(1) << bits(d)) - 1 : (I128(1) << (bits(d) - 1)) - 1;
}

// Two's-complement wrap of an exact integer into an integer dtype; bool is "nonzero".
LD wrap(I128 v, Dtype d) {
  if (d == bool_) return v != 0;
  unsigned __int128 m = (static_cast<unsigned __int128>(1) << bits(d)) - 1;
  unsigned __int128 u = static_cast<unsigned __int128>(v) & m;
  if (!is_unsigned(d) && (u >> (bits(d) - 1))) return static_cast<LD>(static_cast<I128>(u) - (I128(1) << bits(d)));
  return static_cast<LD>(static_cast<I128>(u));
}

// Round to nearest, ties to even, into a binary format (see dtype_test.cpp for its own checks).
LD round_format(LD x, int mant, int emin, LD maxv) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  LD a = std::fabs(x);
  int e = std::max(std::ilogb(a), emin);
  LD ulp = std::ldexp(LD(1), e - mant);
  LD r = std::nearbyint(a / ulp) * ulp;
  if (r > maxv) r = INFINITY;
  return std::copysign(r, x);
}

// The value `x` takes in float dtype `d` (one rounding).
LD round_to(Dtype d, LD x) {
  switch (d) {
    case float16: return round_format(x, 10, -14, 65504);
    case bfloat16: return round_format(x, 7, -126, std::ldexp(LD(255), 120));
    case float32: return static_cast<float>(x);
    case complex64: return static_cast<float>(x);
    default: return static_cast<double>(x);
  }
}

// The value a result of `to` holds for the exact result (re, im): the reference's cast.
void cast_into(Dtype to, LD& re, LD& im) {
  if (to == bool_) {
    re = (re != 0 || im != 0) ? 1 : 0;  // NaN is nonzero
    im = 0;
  } else if (is_integer(to)) {
    LD t = std::isnan(re) ? 0 : std::trunc(re);  // NaN converts to 0; the rest truncates
    re = wrap(static_cast<I128>(t), to);
    im = 0;
  } else if (to == complex64) {
    re = round_to(float32, re);
    im = round_to(float32, im);
  } else {
    re = round_to(to, re);
    im = 0;
  }
}

Vals cast_vals(Vals v, Dtype to) {
  for (size_t i = 0; i < v.size(); ++i) cast_into(to, v.re[i], v.im[i]);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Inputs

struct Range {
  double lo, hi;  // floats: uniform in [lo, hi); integers: [ceil(lo), floor(hi)] within the dtype
};
constexpr Range kFull{-INFINITY, INFINITY};

// A fresh random row-contiguous array on the host, and its exact values.
std::pair<array, Vals> make(const Shape& shape, Dtype d, Range r) {
  int64_t n = shape_size(shape);
  if (d == complex64) {
    auto re = test::uniform_values(n, r.lo, r.hi), im = test::uniform_values(n, r.lo, r.hi);
    std::vector<complex64_t> z(n);
    for (int64_t i = 0; i < n; ++i) z[i] = complex64_t(static_cast<float>(re[i]), static_cast<float>(im[i]));
    array a(z, shape);
    return {a, read(a)};
  }
  if (is_integer(d) || d == bool_) {
    I128 lo = std::max<I128>(std::isinf(r.lo) ? int_min(d) : static_cast<I128>(std::ceil(r.lo)), int_min(d));
    I128 hi = std::min<I128>(std::isinf(r.hi) ? int_max(d) : static_cast<I128>(std::floor(r.hi)), int_max(d));
    array a = zeros(shape, d);
    if (lo >= 0) {
      std::uniform_int_distribution<uint64_t> dist(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi));
      std::vector<uint64_t> v(n);
      for (auto& x : v) x = dist(test::rng());
      a = astype(array(v, shape), d, Device(Device::cpu));
    } else {
      std::uniform_int_distribution<int64_t> dist(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
      std::vector<int64_t> v(n);
      for (auto& x : v) x = dist(test::rng());
      a = astype(array(v, shape), d, Device(Device::cpu));
    }
    a.eval();
    return {a, read(a)};
  }
  auto [a, exact] = test::random_array(shape, d, r.lo, r.hi);
  return {a, read(a)};
}

// An array of dtype d from given doubles (rounded into d), and its exact values.
std::pair<array, Vals> make_from(const std::vector<double>& v, const Shape& shape, Dtype d) {
  array a = test::from_doubles(v, shape, d);
  a.eval();
  return {a, read(a)};
}

// Values of a strided view (shape, strides, offset in elements) of row-major `base` values:
// the reference's own index arithmetic, independent of kiln's view kernels.
Vals gather(const Vals& base, const Shape& shape, const Strides& strides, int64_t offset) {
  Vals out;
  int64_t n = shape_size(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t pos = offset;
    for (size_t k = 0; k < shape.size(); ++k) pos += idx[k] * strides[k];
    out.re.push_back(base.re[pos]);
    out.im.push_back(base.im[pos]);
    for (int k = static_cast<int>(shape.size()) - 1; k >= 0; --k) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// Values of `v` (shape `from`) broadcast to `to`, by NumPy's rule restated here.
Vals broadcast_vals(const Vals& v, const Shape& from, const Shape& to) {
  Strides st(to.size(), 0);
  Strides rm = row_major_strides(from);
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) st[lead + i] = from[i] == 1 ? 0 : rm[i];
  return gather(v, to, st, 0);
}

Shape broadcast_shape(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// A way to lay an operand out: a base array is made row-contiguous, then viewed.
struct Layout {
  std::string name;
  Shape base;     // shape of the row-contiguous base
  Shape shape;    // shape of the view
  Strides strides;
  int64_t offset;
  std::function<array(const array&, Device)> view;  // kiln's view of the base
  bool large = false;
};

std::vector<Layout> unary_layouts() {
  std::vector<Layout> l;
  l.push_back({"contiguous", {4, 6}, {4, 6}, {6, 1}, 0, [](const array& a, Device) { return a; }});
  l.push_back({"transposed", {6, 4}, {4, 6}, {1, 4}, 0, [](const array& a, Device d) { return transpose(a, d); }});
  l.push_back({"sliced", {8, 12}, {4, 6}, {24, -2}, 11,
               [](const array& a, Device d) { return slice(a, {0, 11}, {8, -13}, {2, -2}, d); }});
  l.push_back({"broadcast", {1, 6}, {4, 6}, {0, 1}, 0, [](const array& a, Device d) { return broadcast_to(a, {4, 6}, d); }});
  l.push_back({"broadcast-1d", {6}, {3, 2, 6}, {0, 0, 1}, 0,
               [](const array& a, Device d) { return broadcast_to(a, {3, 2, 6}, d); }});
  l.push_back({"0-d", {}, {}, {}, 0, [](const array& a, Device) { return a; }});
  l.push_back({"empty", {0, 6}, {0, 6}, {6, 1}, 0, [](const array& a, Device) { return a; }});
  // Just past two chunks of the CPU's parallel grain (1 << 15), so both threads take part.
  l.push_back({"large", {40001}, {40001}, {1}, 0, [](const array& a, Device) { return a; }, true});
  l.push_back({"large-transposed", {201, 199}, {199, 201}, {1, 199}, 0,
               [](const array& a, Device d) { return transpose(a, d); }, true});
  return l;
}

// The layouts' views: the kiln array and its reference values.
std::pair<array, Vals> view_of(const Layout& l, const array& base, const Vals& base_vals, Device d) {
  return {l.view(base, d), gather(base_vals, l.shape, l.strides, l.offset)};
}

// Large layouts run for a few dtypes only (they exercise the threaded and strided paths).
bool large_ok(Dtype d) { return d == float32 || d == int32; }

// ---------------------------------------------------------------------------------------------
// Comparison

std::string describe(const Vals& v, size_t i) {
  std::ostringstream os;
  os.precision(17);
  os << static_cast<double>(v.re[i]);
  if (v.im[i] != 0) os << (v.im[i] < 0 ? "" : "+") << static_cast<double>(v.im[i]) << "j";
  return os.str();
}

// Integers and bools exactly; floats by relative error within the dtype's tolerance (NaN only
// where the reference has NaN); complex on interleaved parts.
void expect_matches(const Vals& got, const Vals& want, Dtype out, const std::string& what,
                    const std::vector<const Vals*>& inputs = {}) {
  ASSERT_EQ(got.size(), want.size()) << what;
  auto show_inputs = [&](size_t i) {
    std::string s;
    for (auto* in : inputs) s += " " + describe(*in, i);
    return s;
  };
  if (is_integer(out) || out == bool_) {
    for (size_t i = 0; i < got.size(); ++i) {
      if (got.re[i] != want.re[i]) {
        ADD_FAILURE() << what << " (dtype " << out << "): element " << i << " is " << describe(got, i) << ", want "
                      << describe(want, i) << "; inputs" << show_inputs(i);
        return;
      }
    }
    return;
  }
  std::vector<double> g, w;
  for (size_t i = 0; i < got.size(); ++i) {
    g.push_back(static_cast<double>(got.re[i]));
    w.push_back(static_cast<double>(want.re[i]));
    if (out == complex64) {
      g.push_back(static_cast<double>(got.im[i]));
      w.push_back(static_cast<double>(want.im[i]));
    }
  }
  double err = test::relative_error(g, w);
  if (!(err <= test::tolerance(out))) {
    // Name the worst element to make the failure readable.
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < got.size(); ++i) {
      double d = std::fabs(static_cast<double>(got.re[i] - want.re[i])) + std::fabs(static_cast<double>(got.im[i] - want.im[i]));
      bool nan_mismatch = std::isnan(static_cast<double>(got.re[i])) != std::isnan(static_cast<double>(want.re[i]));
      if (nan_mismatch || std::isnan(d)) d = INFINITY;
      if (d > wd) {
        wd = d;
        worst = i;
      }
    }
    ADD_FAILURE() << what << " (dtype " << out << "): relative error " << err << " > " << test::tolerance(out)
                  << "; worst element " << worst << " is " << describe(got, worst) << ", want " << describe(want, worst)
                  << "; inputs" << show_inputs(worst);
  }
}

std::string where_str(const std::string& op, Dtype d, const std::string& layout, Device dev) {
  std::ostringstream os;
  os << op << " " << d << " " << layout << " on " << test::device_name(dev);
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// Unary ops: the table

double sign_ref(double x) { return std::isnan(x) ? x : (x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0)); }

// Inverse of erf by bisection on std::erf (erf is increasing), then the midpoint.
double erfinv_ref(double y) {
  if (std::isnan(y) || y < -1 || y > 1) return NAN;
  if (y == 1) return INFINITY;
  if (y == -1) return -INFINITY;
  double lo = -6, hi = 6;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (std::erf(mid) < y ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

struct UnarySpec {
  array (*fn)(const array&, StreamOrDevice);
  double (*ref)(double);                    // real reference, also for float functions of integers
  I128 (*iref)(I128);                       // integer reference for ops that keep integer dtypes
  cd (*cref)(cd);                           // complex reference (complex-valued ops)
  Range dom;                                // float inputs
  Range idom;                               // integer inputs
};

constexpr Range kWide{-3, 3};

const std::map<UnaryOp, UnarySpec>& unary_table() {
  static const std::map<UnaryOp, UnarySpec> t = {
      {UnaryOp::abs, {abs, [](double x) { return std::fabs(x); }, [](I128 x) { return x < 0 ? -x : x; },
                      nullptr, kWide, {-100, 100}}},
      {UnaryOp::neg, {negative, [](double x) { return -x; }, [](I128 x) { return -x; }, [](cd z) { return -z; },
                      kWide, {-100, 100}}},
      {UnaryOp::sign, {sign, sign_ref, [](I128 x) { return I128(x > 0) - I128(x < 0); }, nullptr, kWide, {-100, 100}}},
      {UnaryOp::exp, {exp, [](double x) { return std::exp(x); }, nullptr, [](cd z) { return std::exp(z); }, kWide, {-5, 5}}},
      {UnaryOp::exp2, {exp2, [](double x) { return std::exp2(x); }, nullptr, nullptr, kWide, {-5, 10}}},
      {UnaryOp::log, {log, [](double x) { return std::log(x); }, nullptr, [](cd z) { return std::log(z); }, {0.1, 10}, {1, 100}}},
      {UnaryOp::log2, {log2, [](double x) { return std::log2(x); }, nullptr, nullptr, {0.1, 10}, {1, 100}}},
      {UnaryOp::log10, {log10, [](double x) { return std::log10(x); }, nullptr, nullptr, {0.1, 10}, {1, 100}}},
      {UnaryOp::log1p, {log1p, [](double x) { return std::log1p(x); }, nullptr, nullptr, {-0.9, 10}, {0, 100}}},
      {UnaryOp::expm1, {expm1, [](double x) { return std::expm1(x); }, nullptr, nullptr, kWide, {-5, 5}}},
      {UnaryOp::sqrt, {sqrt, [](double x) { return std::sqrt(x); }, nullptr, [](cd z) { return std::sqrt(z); }, {0.1, 10}, {0, 100}}},
      {UnaryOp::rsqrt, {rsqrt, [](double x) { return 1 / std::sqrt(x); }, nullptr, nullptr, {0.1, 10}, {1, 100}}},
      {UnaryOp::square, {square, [](double x) { return x * x; }, [](I128 x) { return x * x; }, [](cd z) { return z * z; },
                         kWide, {-100, 100}}},
      {UnaryOp::reciprocal, {reciprocal, [](double x) { return 1 / x; }, nullptr, [](cd z) { return 1.0 / z; },
                             {0.1, 10}, {1, 100}}},
      {UnaryOp::sin, {sin, [](double x) { return std::sin(x); }, nullptr, nullptr, kWide, {-100, 100}}},
      {UnaryOp::cos, {cos, [](double x) { return std::cos(x); }, nullptr, nullptr, kWide, {-100, 100}}},
      {UnaryOp::tan, {tan, [](double x) { return std::tan(x); }, nullptr, nullptr, {-1.3, 1.3}, {-1, 1}}},
      {UnaryOp::arcsin, {arcsin, [](double x) { return std::asin(x); }, nullptr, nullptr, {-0.95, 0.95}, {-1, 1}}},
      {UnaryOp::arccos, {arccos, [](double x) { return std::acos(x); }, nullptr, nullptr, {-0.95, 0.95}, {-1, 1}}},
      {UnaryOp::arctan, {arctan, [](double x) { return std::atan(x); }, nullptr, nullptr, kWide, {-100, 100}}},
      {UnaryOp::sinh, {sinh, [](double x) { return std::sinh(x); }, nullptr, nullptr, kWide, {-5, 5}}},
      {UnaryOp::cosh, {cosh, [](double x) { return std::cosh(x); }, nullptr, nullptr, kWide, {-5, 5}}},
      {UnaryOp::tanh, {tanh, [](double x) { return std::tanh(x); }, nullptr, nullptr, kWide, {-5, 5}}},
      {UnaryOp::arcsinh, {arcsinh, [](double x) { return std::asinh(x); }, nullptr, nullptr, kWide, {-100, 100}}},
      {UnaryOp::arccosh, {arccosh, [](double x) { return std::acosh(x); }, nullptr, nullptr, {1, 5}, {1, 100}}},
      {UnaryOp::arctanh, {arctanh, [](double x) { return std::atanh(x); }, nullptr, nullptr, {-0.95, 0.95}, {0, 0}}},
      {UnaryOp::sigmoid, {sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, nullptr, nullptr, {-8, 8}, {-20, 20}}},
      {UnaryOp::erf, {erf, [](double x) { return std::erf(x); }, nullptr, nullptr, kWide, {-3, 3}}},
      {UnaryOp::erfinv, {erfinv, erfinv_ref, nullptr, nullptr, {-0.95, 0.95}, {0, 0}}},
      {UnaryOp::floor, {floor, [](double x) { return std::floor(x); }, [](I128 x) { return x; }, nullptr, {-5, 5}, kFull}},
      {UnaryOp::ceil, {ceil, [](double x) { return std::ceil(x); }, [](I128 x) { return x; }, nullptr, {-5, 5}, kFull}},
      {UnaryOp::round, {round, [](double x) { return std::nearbyint(x); }, [](I128 x) { return x; }, nullptr, {-5, 5}, kFull}},
      {UnaryOp::isnan, {isnan, [](double x) { return double(std::isnan(x)); }, [](I128) { return I128(0); }, nullptr, kWide, kFull}},
      {UnaryOp::isinf, {isinf, [](double x) { return double(std::isinf(x)); }, [](I128) { return I128(0); }, nullptr, kWide, kFull}},
      {UnaryOp::isfinite, {isfinite, [](double x) { return double(std::isfinite(x)); }, [](I128) { return I128(1); }, nullptr,
                           kWide, kFull}},
      {UnaryOp::logical_not, {logical_not, [](double x) { return double(x == 0); }, [](I128 x) { return I128(x == 0); },
                              nullptr, {-1, 1}, {-2, 2}}},
      {UnaryOp::bitwise_invert, {bitwise_invert, nullptr, [](I128 x) { return -x - 1; }, nullptr, kWide, kFull}},
  };
  return t;
}

bool is_predicate(UnaryOp op) {
  return op == UnaryOp::isnan || op == UnaryOp::isinf || op == UnaryOp::isfinite || op == UnaryOp::logical_not;
}

// What a unary op does with an input dtype, restated from ops_elementwise.h: the output dtype,
// or nothing when the op must reject the input with a TypeError.
std::optional<Dtype> unary_out(UnaryOp op, Dtype in) {
  if (is_predicate(op)) return bool_;
  if (op == UnaryOp::bitwise_invert) return is_integer(in) || in == bool_ ? std::optional<Dtype>(in) : std::nullopt;
  if (in == complex64) {
    switch (op) {
      case UnaryOp::abs: return float32;
      case UnaryOp::neg: case UnaryOp::square: case UnaryOp::exp: case UnaryOp::log: case UnaryOp::sqrt:
      case UnaryOp::reciprocal: return complex64;
      default: return std::nullopt;
    }
  }
  bool integer_valued = op == UnaryOp::abs || op == UnaryOp::neg || op == UnaryOp::sign || op == UnaryOp::square ||
                        op == UnaryOp::floor || op == UnaryOp::ceil || op == UnaryOp::round;
  if (in == bool_ && (op == UnaryOp::neg || op == UnaryOp::sign)) return std::nullopt;
  if (integer_valued || is_floating(in)) return in;
  return float32;  // float functions of integers and bools
}

// The reference result of a unary op on one exact input.
void unary_ref(UnaryOp op, const UnarySpec& s, Dtype in, Dtype out, LD re, LD im, LD& r_re, LD& r_im) {
  r_im = 0;
  if (in == complex64) {
    cd z(static_cast<double>(re), static_cast<double>(im));
    switch (op) {
      case UnaryOp::abs: r_re = std::abs(z); break;
      case UnaryOp::isnan: r_re = std::isnan(z.real()) || std::isnan(z.imag()); break;
      case UnaryOp::isinf: r_re = std::isinf(z.real()) || std::isinf(z.imag()); break;
      case UnaryOp::isfinite: r_re = std::isfinite(z.real()) && std::isfinite(z.imag()); break;
      case UnaryOp::logical_not: r_re = z == cd(0, 0); break;
      default: {
        cd r = s.cref(z);
        r_re = r.real();
        r_im = r.imag();
      }
    }
  } else if ((is_integer(out) || out == bool_) && !is_predicate(op)) {
    I128 x = static_cast<I128>(re);
    I128 r = in == bool_ && op == UnaryOp::bitwise_invert ? I128(!x) : s.iref(x);
    r_re = wrap(r, out);  // wrap the exact result before it meets a long double
  } else if (is_predicate(op) && (is_integer(in) || in == bool_)) {
    r_re = static_cast<LD>(s.iref(static_cast<I128>(re)));
  } else {
    r_re = s.ref(static_cast<double>(re));
  }
  cast_into(out, r_re, r_im);
}

Vals unary_ref_all(UnaryOp op, Dtype in, Dtype out, const Vals& x) {
  const UnarySpec& s = unary_table().at(op);
  Vals r;
  r.re.resize(x.size());
  r.im.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) unary_ref(op, s, in, out, x.re[i], x.im[i], r.re[i], r.im[i]);
  return r;
}

Range unary_domain(const UnarySpec& s, Dtype d) {
  if (d == complex64) return {-2, 2};
  return is_integer(d) || d == bool_ ? s.idom : s.dom;
}

// ---------------------------------------------------------------------------------------------
// Binary ops: the table

// Python's float floor division (CPython's float_floor_div): through fmod, so that
// a == b * (a // b) + a % b as nearly as floating point allows (1 // 0.1 is 9).
double py_floordiv(double a, double b) {
  if (b == 0) return a / b;  // NumPy: inf or nan
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
  if (div == 0) return std::copysign(0.0, a / b);
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1;
  return fl;
}
double py_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0 && ((b < 0) != (mod < 0))) mod += b;
  return mod;
}
I128 floordiv_int(I128 a, I128 b) {
  if (b == 0) return 0;  // as NumPy (which also warns)
  I128 q = a / b;
  if (q * b != a && ((a < 0) != (b < 0))) --q;
  return q;
}
// a ** b for b >= 0, modulo 2^64 (enough for any integer dtype; the harness wraps further).
I128 pow_int(I128 a, I128 b) {
  const unsigned __int128 mask = (static_cast<unsigned __int128>(1) << 64) - 1;
  unsigned __int128 r = 1, base = static_cast<unsigned __int128>(a) & mask;
  for (I128 i = 0; i < b; ++i) r = (r * base) & mask;
  return static_cast<I128>(r);
}
double logaddexp_ref(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == b) return a + std::log(2.0);
  double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}
double max_ref(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }
double min_ref(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); }

struct BinarySpec {
  array (*fn)(const array&, const array&, StreamOrDevice);
  double (*ref)(double, double);   // floats (comparisons and logic give 0 or 1)
  I128 (*iref)(I128, I128, Dtype);  // integers and bools, exact; the harness wraps into the dtype
  Range a, b;                       // float inputs
  Range ia, ib;                     // integer inputs
};

I128 shl_ref(I128 a, I128 b, Dtype d) {
  // A count outside [0, bits) shifts everything out.
  if (b < 0 || b >= bits(d)) return 0;
  return static_cast<I128>(static_cast<unsigned __int128>(a) << static_cast<int>(b));
}
I128 shr_ref(I128 a, I128 b, Dtype d) {
  if (b < 0 || b >= bits(d)) return a < 0 ? -1 : 0;
  return floordiv_int(a, I128(1) << static_cast<int>(b));
}

const std::map<BinaryOp, BinarySpec>& binary_table() {
  constexpr Range w{-3, 3}, iw{-100, 100}, ismall{-6, 6};
  static const std::map<BinaryOp, BinarySpec> t = {
      {BinaryOp::add, {add, [](double a, double b) { return a + b; }, [](I128 a, I128 b, Dtype) { return a + b; }, w, w, iw, iw}},
      {BinaryOp::subtract, {subtract, [](double a, double b) { return a - b; }, [](I128 a, I128 b, Dtype) { return a - b; },
                            w, w, iw, iw}},
      {BinaryOp::multiply, {multiply, [](double a, double b) { return a * b; }, [](I128 a, I128 b, Dtype) { return a * b; },
                            w, w, iw, iw}},
      {BinaryOp::divide, {divide, [](double a, double b) { return a / b; }, nullptr, w, w, {-50, 50}, ismall}},
      {BinaryOp::floor_divide, {floor_divide, py_floordiv, [](I128 a, I128 b, Dtype) { return floordiv_int(a, b); }, w, w,
                                {-50, 50}, ismall}},
      {BinaryOp::remainder, {remainder, py_mod,
                             [](I128 a, I128 b, Dtype) { return b == 0 ? I128(0) : a - b * floordiv_int(a, b); }, w, w,
                             {-50, 50}, ismall}},
      {BinaryOp::power, {power, [](double a, double b) { return std::pow(a, b); },
                         [](I128 a, I128 b, Dtype) { return pow_int(a, b); }, {0.1, 3}, {-2, 2}, {-4, 4}, {0, 6}}},
      {BinaryOp::maximum, {maximum, max_ref, [](I128 a, I128 b, Dtype) { return std::max(a, b); }, w, w, kFull, kFull}},
      {BinaryOp::minimum, {minimum, min_ref, [](I128 a, I128 b, Dtype) { return std::min(a, b); }, w, w, kFull, kFull}},
      {BinaryOp::arctan2, {arctan2, [](double a, double b) { return std::atan2(a, b); }, nullptr, w, w, iw, iw}},
      {BinaryOp::logaddexp, {logaddexp, logaddexp_ref, nullptr, {-5, 5}, {-5, 5}, {-20, 20}, {-20, 20}}},
      {BinaryOp::equal, {equal, [](double a, double b) { return double(a == b); },
                         [](I128 a, I128 b, Dtype) { return I128(a == b); }, {-2, 2}, {-2, 2}, {-3, 3}, {-3, 3}}},
      {BinaryOp::not_equal, {not_equal, [](double a, double b) { return double(a != b); },
                             [](I128 a, I128 b, Dtype) { return I128(a != b); }, {-2, 2}, {-2, 2}, {-3, 3}, {-3, 3}}},
      {BinaryOp::less, {less, [](double a, double b) { return double(a < b); },
                        [](I128 a, I128 b, Dtype) { return I128(a < b); }, w, w, kFull, kFull}},
      {BinaryOp::less_equal, {less_equal, [](double a, double b) { return double(a <= b); },
                              [](I128 a, I128 b, Dtype) { return I128(a <= b); }, {-2, 2}, {-2, 2}, {-3, 3}, {-3, 3}}},
      {BinaryOp::greater, {greater, [](double a, double b) { return double(a > b); },
                           [](I128 a, I128 b, Dtype) { return I128(a > b); }, w, w, kFull, kFull}},
      {BinaryOp::greater_equal, {greater_equal, [](double a, double b) { return double(a >= b); },
                                 [](I128 a, I128 b, Dtype) { return I128(a >= b); }, {-2, 2}, {-2, 2}, {-3, 3}, {-3, 3}}},
      {BinaryOp::logical_and, {logical_and, [](double a, double b) { return double(a != 0 && b != 0); },
                               [](I128 a, I128 b, Dtype) { return I128(a != 0 && b != 0); }, {-1, 1}, {-1, 1}, {-2, 2}, {-2, 2}}},
      {BinaryOp::logical_or, {logical_or, [](double a, double b) { return double(a != 0 || b != 0); },
                              [](I128 a, I128 b, Dtype) { return I128(a != 0 || b != 0); }, {-1, 1}, {-1, 1}, {-2, 2}, {-2, 2}}},
      {BinaryOp::logical_xor, {logical_xor, [](double a, double b) { return double((a != 0) != (b != 0)); },
                               [](I128 a, I128 b, Dtype) { return I128((a != 0) != (b != 0)); }, {-1, 1}, {-1, 1}, {-2, 2}, {-2, 2}}},
      {BinaryOp::bitwise_and, {bitwise_and, nullptr, [](I128 a, I128 b, Dtype) { return a & b; }, w, w, kFull, kFull}},
      {BinaryOp::bitwise_or, {bitwise_or, nullptr, [](I128 a, I128 b, Dtype) { return a | b; }, w, w, kFull, kFull}},
      {BinaryOp::bitwise_xor, {bitwise_xor, nullptr, [](I128 a, I128 b, Dtype) { return a ^ b; }, w, w, kFull, kFull}},
      // Shift counts cover negative values and counts at and past the bit width (see shift_range).
      {BinaryOp::left_shift, {left_shift, nullptr, shl_ref, w, w, kFull, kFull}},
      {BinaryOp::right_shift, {right_shift, nullptr, shr_ref, w, w, kFull, kFull}},
  };
  return t;
}

bool bool_result(BinaryOp op) {
  switch (op) {
    case BinaryOp::equal: case BinaryOp::not_equal: case BinaryOp::less: case BinaryOp::less_equal:
    case BinaryOp::greater: case BinaryOp::greater_equal: case BinaryOp::logical_and: case BinaryOp::logical_or:
    case BinaryOp::logical_xor:
      return true;
    default:
      return false;
  }
}

// What a binary op does with two dtypes, restated from ops_elementwise.h/.cpp: the dtype it
// computes in and the dtype it returns, or nothing when it must throw a TypeError.
struct BinaryRule {
  Dtype compute, out;
};
std::optional<BinaryRule> binary_rule(BinaryOp op, Dtype a, Dtype b) {
  Dtype ct = promote_types(a, b);
  switch (op) {
    case BinaryOp::divide:
      if (!is_inexact(ct)) ct = float32;
      break;
    case BinaryOp::arctan2:
    case BinaryOp::logaddexp:
      if (is_complex(ct)) return std::nullopt;
      if (!is_inexact(ct)) ct = float32;
      break;
    case BinaryOp::subtract:
      if (ct == bool_) return std::nullopt;
      break;
    case BinaryOp::floor_divide:
    case BinaryOp::remainder:
      if (is_complex(ct)) return std::nullopt;
      if (ct == bool_) ct = int8;
      break;
    case BinaryOp::power:
      if (ct == bool_) ct = int8;
      break;
    case BinaryOp::bitwise_and:
    case BinaryOp::bitwise_or:
    case BinaryOp::bitwise_xor:
      if (!is_integer(ct) && ct != bool_) return std::nullopt;
      break;
    case BinaryOp::left_shift:
    case BinaryOp::right_shift:
      if (!is_integer(ct)) return std::nullopt;
      break;
    default:
      break;
  }
  return BinaryRule{ct, bool_result(op) ? bool_ : ct};
}

// The reference result of a binary op on one pair of exact inputs, already converted to the
// compute dtype.
void binary_ref(BinaryOp op, const BinarySpec& s, Dtype ct, Dtype out, LD are, LD aim, LD bre, LD bim, LD& r_re,
                LD& r_im) {
  r_im = 0;
  if (ct == complex64) {
    cd x(static_cast<double>(are), static_cast<double>(aim)), y(static_cast<double>(bre), static_cast<double>(bim));
    auto lex_less = [](cd p, cd q) { return p.real() < q.real() || (p.real() == q.real() && p.imag() < q.imag()); };
    auto isnan_c = [](cd p) { return std::isnan(p.real()) || std::isnan(p.imag()); };
    cd r;
    switch (op) {
      case BinaryOp::add: r = x + y; break;
      case BinaryOp::subtract: r = x - y; break;
      case BinaryOp::multiply: r = x * y; break;
      case BinaryOp::divide: r = x / y; break;
      case BinaryOp::power: r = std::pow(x, y); break;
      case BinaryOp::maximum: r = isnan_c(x) ? x : isnan_c(y) ? y : (lex_less(x, y) ? y : x); break;
      case BinaryOp::minimum: r = isnan_c(x) ? x : isnan_c(y) ? y : (lex_less(y, x) ? y : x); break;
      case BinaryOp::equal: r = x == y; break;
      case BinaryOp::not_equal: r = x != y; break;
      case BinaryOp::less: r = lex_less(x, y); break;
      case BinaryOp::less_equal: r = !lex_less(y, x); break;
      case BinaryOp::greater: r = lex_less(y, x); break;
      case BinaryOp::greater_equal: r = !lex_less(x, y); break;
      case BinaryOp::logical_and: r = x != cd(0) && y != cd(0); break;
      case BinaryOp::logical_or: r = x != cd(0) || y != cd(0); break;
      case BinaryOp::logical_xor: r = (x != cd(0)) != (y != cd(0)); break;
      default: ADD_FAILURE() << "no complex reference for " << op_name(op);
    }
    r_re = r.real();
    r_im = r.imag();
  } else if (is_integer(ct) || ct == bool_) {
    // Wrapped while exact: a 128-bit product does not fit a long double.
    r_re = wrap(s.iref(static_cast<I128>(are), static_cast<I128>(bre), ct), out);
  } else {
    r_re = s.ref(static_cast<double>(are), static_cast<double>(bre));
  }
  cast_into(out, r_re, r_im);
}

Vals binary_ref_all(BinaryOp op, Dtype ct, Dtype out, const Vals& a, const Vals& b) {
  const BinarySpec& s = binary_table().at(op);
  Vals r;
  r.re.resize(a.size());
  r.im.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) binary_ref(op, s, ct, out, a.re[i], a.im[i], b.re[i], b.im[i], r.re[i], r.im[i]);
  return r;
}

// Input ranges by op and dtype; shifts take counts from -2 to past the bit width.
Range binary_range(BinaryOp op, Dtype d, bool second) {
  const BinarySpec& s = binary_table().at(op);
  if (d == complex64) return second && op == BinaryOp::power ? Range{-1, 1} : Range{-2, 2};
  if (is_integer(d) || d == bool_) {
    if (second && (op == BinaryOp::left_shift || op == BinaryOp::right_shift)) return {-2, double(bits(d) + 3)};
    return second ? s.ib : s.ia;
  }
  return second ? s.b : s.a;
}

// Operand layouts for the binary harness: pairs of (layout of a, layout of b).
std::vector<std::pair<Layout, Layout>> binary_layouts() {
  auto same = [](const array& a, Device) { return a; };
  std::vector<std::pair<Layout, Layout>> v;
  Layout c46{"contiguous", {4, 6}, {4, 6}, {6, 1}, 0, same};
  Layout t46{"transposed", {6, 4}, {4, 6}, {1, 4}, 0, [](const array& a, Device d) { return transpose(a, d); }};
  Layout s46{"sliced", {8, 12}, {4, 6}, {24, -2}, 11,
             [](const array& a, Device d) { return slice(a, {0, 11}, {8, -13}, {2, -2}, d); }};
  Layout b16{"row(1,6)", {1, 6}, {1, 6}, {6, 1}, 0, same};
  Layout b6{"vector(6,)", {6}, {6}, {1}, 0, same};
  Layout scalar{"0-d", {}, {}, {}, 0, same};
  Layout c314{"(3,1,4)", {3, 1, 4}, {3, 1, 4}, {4, 4, 1}, 0, same};
  Layout c54{"(5,4)", {5, 4}, {5, 4}, {4, 1}, 0, same};
  Layout e06{"empty(0,6)", {0, 6}, {0, 6}, {6, 1}, 0, same};
  Layout big{"large", {201, 199}, {201, 199}, {199, 1}, 0, same, true};
  Layout bigt{"large-transposed", {199, 201}, {201, 199}, {1, 201}, 0,
              [](const array& a, Device d) { return transpose(a, d); }, true};
  Layout bigs = scalar;
  bigs.large = true;
  v.push_back({c46, c46});
  v.push_back({c314, c54});
  v.push_back({scalar, c46});
  v.push_back({c46, scalar});
  v.push_back({scalar, scalar});
  v.push_back({t46, c46});
  v.push_back({t46, t46});  // both dense with the same strides: the flat path keeps their layout
  v.push_back({s46, b16});
  v.push_back({b6, s46});
  v.push_back({e06, b16});
  v.push_back({bigt, big});
  v.push_back({bigs, big});
  v.push_back({big, bigs});
  return v;
}

// Runs a binary op on given inputs and checks dtype, shape and values against the reference.
void check_binary(BinaryOp op, const array& x, const Vals& xv, const array& y, const Vals& yv, Device dev,
                  const std::string& what) {
  auto rule = binary_rule(op, x.dtype(), y.dtype());
  const BinarySpec& s = binary_table().at(op);
  if (!rule) {
    KILN_EXPECT_THROW_MSG(s.fn(x, y, dev), TypeError, std::string("[") + op_name(op) + "]");
    return;
  }
  Shape shape = broadcast_shape(x.shape(), y.shape());
  array z = s.fn(x, y, dev);
  EXPECT_EQ(z.dtype(), rule->out) << what;
  EXPECT_EQ(z.shape(), shape) << what;
  EXPECT_EQ(z.device(), dev) << what;
  Vals a = cast_vals(broadcast_vals(xv, x.shape(), shape), rule->compute);
  Vals b = cast_vals(broadcast_vals(yv, y.shape(), shape), rule->compute);
  expect_matches(read(z), binary_ref_all(op, rule->compute, rule->out, a, b), rule->out, what, {&a, &b});
}

#define KILN_ALL_UNARY(n) UnaryOp::n,
const std::vector<UnaryOp> kAllUnary = {KILN_UNARY_OPS(KILN_ALL_UNARY)};
#undef KILN_ALL_UNARY
#define KILN_ALL_BINARY(n) BinaryOp::n,
const std::vector<BinaryOp> kAllBinary = {KILN_BINARY_OPS(KILN_ALL_BINARY)};
#undef KILN_ALL_BINARY

const std::vector<double> kSpecials = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1, -1, 2, -2, 0.5, -0.5, 100, -100, 2.5};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Unary

TEST(ElementwiseUnary, TableCoversEveryOp) {
  for (UnaryOp op : kAllUnary) EXPECT_TRUE(unary_table().count(op)) << op_name(op) << " has no test entry";
  EXPECT_EQ(unary_table().size(), kAllUnary.size());
}

TEST(ElementwiseUnary, AllOpsAllDtypesAllLayouts) {
  for (UnaryOp op : kAllUnary) {
    const UnarySpec& s = unary_table().at(op);
    for (Dtype dt : test::all_dtypes()) {
      auto out = unary_out(op, dt);
      for (const Layout& l : unary_layouts()) {
        if (l.large && !large_ok(dt)) continue;
        if (!out && l.name != "contiguous") continue;
        auto [base, bv] = make(l.base, dt, unary_domain(s, dt));
        for (Device dev : test::devices()) {
          std::string what = where_str(op_name(op), dt, l.name, dev);
          auto [x, xv] = view_of(l, base, bv, dev);
          if (!out) {
            KILN_EXPECT_THROW_MSG(s.fn(x, dev), TypeError, std::string("[") + op_name(op) + "]");
            continue;
          }
          array y = s.fn(x, dev);
          EXPECT_EQ(y.dtype(), *out) << what;
          EXPECT_EQ(y.shape(), l.shape) << what;
          // A no-op (floor of an integer) hands back its input, wherever that lives.
          if (!y.is_same(x)) EXPECT_EQ(y.device(), dev) << what;
          expect_matches(read(y), unary_ref_all(op, dt, *out, xv), *out, what, {&xv});
        }
      }
    }
  }
}

// NaN, infinities, signed zeros and values outside the ops' domains, through every op that
// takes floats.
TEST(ElementwiseUnary, SpecialValues) {
  for (UnaryOp op : kAllUnary) {
    for (Dtype dt : test::float_dtypes()) {
      auto out = unary_out(op, dt);
      if (!out) continue;
      auto [x, xv] = make_from(kSpecials, {static_cast<int64_t>(kSpecials.size())}, dt);
      for (Device dev : test::devices()) {
        array y = unary_table().at(op).fn(x, dev);
        expect_matches(read(y), unary_ref_all(op, dt, *out, xv), *out, where_str(op_name(op), dt, "specials", dev),
                       {&xv});
      }
    }
  }
}

TEST(ElementwiseUnary, ComplexSpecialValues) {
  std::vector<complex64_t> z;
  for (float re : {0.f, 1.f, -2.f, NAN, INFINITY}) {
    for (float im : {0.f, -1.f, NAN, -INFINITY}) z.emplace_back(re, im);
  }
  array x(z, {static_cast<int64_t>(z.size())});
  Vals xv = read(x);
  for (UnaryOp op : {UnaryOp::isnan, UnaryOp::isinf, UnaryOp::isfinite, UnaryOp::logical_not}) {
    for (Device dev : test::devices()) {
      array y = unary_table().at(op).fn(x, dev);
      expect_matches(read(y), unary_ref_all(op, complex64, bool_, xv), bool_, where_str(op_name(op), complex64, "specials", dev));
    }
  }
}

// Halves round to even, as NumPy's round.
TEST(ElementwiseUnary, RoundHalvesToEven) {
  std::vector<double> v;
  for (double k : test::int_values(64, -50, 50)) v.push_back(k + 0.5);
  for (Dtype dt : test::float_dtypes()) {
    auto [x, xv] = make_from(v, {64}, dt);
    for (Device dev : test::devices()) {
      expect_matches(read(round(x, dev)), unary_ref_all(UnaryOp::round, dt, dt, xv), dt,
                     where_str("round", dt, "halves", dev));
    }
  }
}

// The most negative integer: its negation and absolute value wrap to itself, as in NumPy.
TEST(ElementwiseUnary, IntegerExtremes) {
  for (Dtype dt : test::int_dtypes()) {
    std::vector<double> v = {static_cast<double>(int_min(dt)), static_cast<double>(int_min(dt) + 1), 0, 1,
                             static_cast<double>(int_max(dt) >> 12)};
    if (bits(dt) < 64) v.push_back(static_cast<double>(int_max(dt)));
    auto [x, xv] = make_from(v, {static_cast<int64_t>(v.size())}, dt);
    for (UnaryOp op : {UnaryOp::abs, UnaryOp::neg, UnaryOp::sign, UnaryOp::square, UnaryOp::bitwise_invert}) {
      for (Device dev : test::devices()) {
        array y = unary_table().at(op).fn(x, dev);
        expect_matches(read(y), unary_ref_all(op, dt, dt, xv), dt, where_str(op_name(op), dt, "extremes", dev), {&xv});
      }
    }
  }
}

// Integer and bool inputs of the float functions give float32; floor/ceil/round keep them.
TEST(ElementwiseUnary, OutputDtypes) {
  for (Dtype dt : {bool_, uint8, int16, int32, int64, uint64}) {
    array x = zeros({2}, dt);
    EXPECT_EQ(exp(x).dtype(), float32) << dt;
    EXPECT_EQ(sqrt(x).dtype(), float32) << dt;
    EXPECT_EQ(sigmoid(x).dtype(), float32) << dt;
    EXPECT_EQ(floor(x).dtype(), dt);
    EXPECT_EQ(round(x).dtype(), dt);
    EXPECT_EQ(isnan(x).dtype(), bool_);
    EXPECT_EQ(logical_not(x).dtype(), bool_);
    EXPECT_EQ(abs(x).dtype(), dt);
  }
  for (Dtype dt : test::float_dtypes()) EXPECT_EQ(exp(zeros({2}, dt)).dtype(), dt);
  EXPECT_EQ(abs(zeros({2}, complex64)).dtype(), float32);
  EXPECT_EQ(isfinite(zeros({2}, complex64)).dtype(), bool_);
}

TEST(ElementwiseUnary, ComplexLayouts) {
  // Complex inputs through the views too (the table test covers contiguous complex inputs).
  for (UnaryOp op : {UnaryOp::abs, UnaryOp::neg, UnaryOp::square, UnaryOp::exp, UnaryOp::log, UnaryOp::sqrt,
                     UnaryOp::reciprocal}) {
    Dtype out = *unary_out(op, complex64);
    for (const Layout& l : unary_layouts()) {
      if (l.large) continue;
      auto [base, bv] = make(l.base, complex64, {-2, 2});
      for (Device dev : test::devices()) {
        auto [x, xv] = view_of(l, base, bv, dev);
        expect_matches(read(unary_table().at(op).fn(x, dev)), unary_ref_all(op, complex64, out, xv), out,
                       where_str(op_name(op), complex64, l.name, dev), {&xv});
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Binary

TEST(ElementwiseBinary, TableCoversEveryOp) {
  for (BinaryOp op : kAllBinary) EXPECT_TRUE(binary_table().count(op)) << op_name(op) << " has no test entry";
  EXPECT_EQ(binary_table().size(), kAllBinary.size());
}

TEST(ElementwiseBinary, AllOpsAllDtypesAllLayouts) {
  for (BinaryOp op : kAllBinary) {
    for (Dtype dt : test::all_dtypes()) {
      bool ok = binary_rule(op, dt, dt).has_value();
      for (auto& [la, lb] : binary_layouts()) {
        if ((la.large || lb.large) && !large_ok(dt)) continue;
        if (!ok && la.name != "contiguous") continue;
        auto [ba, bav] = make(la.base, dt, binary_range(op, dt, false));
        auto [bb, bbv] = make(lb.base, dt, binary_range(op, dt, true));
        for (Device dev : test::devices()) {
          auto [x, xv] = view_of(la, ba, bav, dev);
          auto [y, yv] = view_of(lb, bb, bbv, dev);
          check_binary(op, x, xv, y, yv, dev, where_str(op_name(op), dt, la.name + " with " + lb.name, dev));
        }
      }
    }
  }
}

// Every pair of dtypes: the result dtype follows promote_types and the op's rules, and values
// are computed in the promoted type.
TEST(ElementwiseBinary, MixedDtypes) {
  for (BinaryOp op : kAllBinary) {
    for (Dtype da : test::all_dtypes()) {
      for (Dtype db : test::all_dtypes()) {
        if (da == db) continue;
        // Values every dtype of the pair (and the promoted one) holds exactly enough.
        auto range = [&](Dtype d, bool second) -> Range {
          if (op == BinaryOp::power && second) return {0, 4};
          if (op == BinaryOp::divide && second) return {1, 20};  // complex x / 0 has no agreed value
          if (op == BinaryOp::power) return {-3, 3};
          if (op == BinaryOp::left_shift || op == BinaryOp::right_shift) return second ? Range{0, 9} : Range{-60, 60};
          if (d == complex64 || is_floating(d)) return {-4, 4};
          return {-20, 20};
        };
        auto [x, xv] = make({3, 4}, da, range(da, false));
        auto [y, yv] = make({4}, db, range(db, true));
        for (Device dev : test::devices()) {
          std::ostringstream what;
          what << op_name(op) << " " << da << " with " << db << " on " << test::device_name(dev);
          check_binary(op, x, xv, y, yv, dev, what.str());
        }
      }
    }
  }
}

TEST(ElementwiseBinary, SpecialValues) {
  std::vector<double> a, b;
  for (double p : kSpecials) {
    for (double q : kSpecials) {
      a.push_back(p);
      b.push_back(q);
    }
  }
  Shape shape{static_cast<int64_t>(a.size())};
  for (BinaryOp op : kAllBinary) {
    for (Dtype dt : test::float_dtypes()) {
      if (!binary_rule(op, dt, dt)) continue;
      auto [x, xv] = make_from(a, shape, dt);
      auto [y, yv] = make_from(b, shape, dt);
      for (Device dev : test::devices()) check_binary(op, x, xv, y, yv, dev, where_str(op_name(op), dt, "specials", dev));
    }
  }
}

// NaN in either operand gives NaN in maximum and minimum (NumPy's rule, unlike fmax/fmin).
TEST(ElementwiseBinary, MaximumMinimumPropagateNan) {
  for (Dtype dt : test::float_dtypes()) {
    array x = test::from_doubles({NAN, 1, NAN, -3}, {4}, dt);
    array y = test::from_doubles({1, NAN, NAN, 2}, {4}, dt);
    for (Device dev : test::devices()) {
      for (array r : {maximum(x, y, dev), minimum(x, y, dev), clip(x, y, std::nullopt, dev), clip(y, std::nullopt, x, dev)}) {
        auto v = test::to_doubles(r);
        EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1]) && std::isnan(v[2])) << dt << " " << test::device_name(dev);
        EXPECT_FALSE(std::isnan(v[3]));
      }
    }
  }
}

// Integer division and modulo follow Python: floor division, a remainder with the divisor's sign,
// and division by zero gives 0; the most negative value divided by -1 wraps.
TEST(ElementwiseBinary, IntegerDivisionEdgeCases) {
  for (Dtype dt : test::int_dtypes()) {
    std::vector<double> av, bv;
    std::vector<double> nums = {0, 1, 7, 100};
    std::vector<double> dens = {0, 1, 3, 7};
    if (!is_unsigned(dt)) {
      nums.insert(nums.end(), {-1, -7, -100, static_cast<double>(int_min(dt))});
      dens.insert(dens.end(), {-1, -3, -7});
    }
    for (double p : nums) {
      for (double q : dens) {
        av.push_back(p);
        bv.push_back(q);
      }
    }
    Shape shape{static_cast<int64_t>(av.size())};
    auto [x, xv] = make_from(av, shape, dt);
    auto [y, yv] = make_from(bv, shape, dt);
    for (Device dev : test::devices()) {
      check_binary(BinaryOp::floor_divide, x, xv, y, yv, dev, where_str("floor_divide", dt, "edges", dev));
      check_binary(BinaryOp::remainder, x, xv, y, yv, dev, where_str("remainder", dt, "edges", dev));
      // Definitional checks, independent of the reference functions above.
      auto q = read(floor_divide(x, y, dev)).re;
      auto r = read(remainder(x, y, dev)).re;
      for (size_t i = 0; i < av.size(); ++i) {
        if (bv[i] == 0) {
          EXPECT_EQ(q[i], 0) << dt;
          EXPECT_EQ(r[i], 0) << dt;
          continue;
        }
        if (av[i] == static_cast<double>(int_min(dt)) && bv[i] == -1) continue;
        // Floor division is the q with a == q * b + r, 0 <= |r| < |b| and r of b's sign.
        I128 a = static_cast<I128>(av[i]), b = static_cast<I128>(bv[i]);
        I128 qi = static_cast<I128>(q[i]), ri = static_cast<I128>(r[i]);
        EXPECT_TRUE(ri == 0 || (ri < 0) == (b < 0)) << dt << " " << av[i] << " % " << bv[i];
        EXPECT_TRUE(ri < 0 ? -ri < (b < 0 ? -b : b) : ri < (b < 0 ? -b : b)) << dt << " " << av[i] << " % " << bv[i];
        EXPECT_TRUE(qi * b + ri == a) << dt << " " << av[i] << " // " << bv[i];
      }
    }
  }
}

// Float floor division agrees with Python's (1 // 0.1 is 9) and with remainder.
TEST(ElementwiseBinary, FloatFloorDivisionIsPythons) {
  std::vector<double> av = {1, 0.3, -1, 7, -7, 7.5, -7.5, 1e-3, 5};
  std::vector<double> bv = {0.1, 0.1, 0.1, 2, 2, -2, -2, 1e-4, 0.7};
  for (Dtype dt : test::float_dtypes()) {
    auto [x, xv] = make_from(av, {9}, dt);
    auto [y, yv] = make_from(bv, {9}, dt);
    for (Device dev : test::devices()) {
      check_binary(BinaryOp::floor_divide, x, xv, y, yv, dev, where_str("floor_divide", dt, "python cases", dev));
      check_binary(BinaryOp::remainder, x, xv, y, yv, dev, where_str("remainder", dt, "python cases", dev));
    }
  }
  EXPECT_EQ(floor_divide(array(1.0), array(0.1)).item<double>(), 9.0);
}

// Shift counts at or past the bit width (and negative ones) shift everything out.
TEST(ElementwiseBinary, ShiftsPastBitWidth) {
  for (Dtype dt : test::int_dtypes()) {
    std::vector<double> counts = {0, 1, static_cast<double>(bits(dt) - 1), static_cast<double>(bits(dt))};
    if (int_max(dt) >= bits(dt) + 1) counts.push_back(bits(dt) + 1);
    if (!is_unsigned(dt)) counts.push_back(-1);
    std::vector<double> vals = {1, 5, static_cast<double>(int_max(dt) >> 2)};
    if (!is_unsigned(dt)) vals.insert(vals.end(), {-1, -5, static_cast<double>(int_min(dt))});
    std::vector<double> av, bv;
    for (double p : vals) {
      for (double q : counts) {
        av.push_back(p);
        bv.push_back(q);
      }
    }
    Shape shape{static_cast<int64_t>(av.size())};
    auto [x, xv] = make_from(av, shape, dt);
    auto [y, yv] = make_from(bv, shape, dt);
    for (Device dev : test::devices()) {
      check_binary(BinaryOp::left_shift, x, xv, y, yv, dev, where_str("left_shift", dt, "edges", dev));
      check_binary(BinaryOp::right_shift, x, xv, y, yv, dev, where_str("right_shift", dt, "edges", dev));
    }
  }
}

// The most negative integer in the arithmetic ops wraps like two's complement.
TEST(ElementwiseBinary, IntegerWraparound) {
  for (Dtype dt : test::int_dtypes()) {
    std::vector<double> av = {static_cast<double>(int_min(dt)), static_cast<double>(int_max(dt) >> 1), 3};
    std::vector<double> bv = {-1, 5, static_cast<double>(int_min(dt))};
    double top = static_cast<double>(bits(dt) < 64 ? int_max(dt) : int_max(dt) >> 12);
    if (is_unsigned(dt)) av = {0, top, 3}, bv = {1, top, top};  // uint16 * uint16 passes int's range
    auto [x, xv] = make_from(av, {3}, dt);
    auto [y, yv] = make_from(bv, {3}, dt);
    for (Device dev : test::devices()) {
      for (BinaryOp op : {BinaryOp::add, BinaryOp::subtract, BinaryOp::multiply}) {
        check_binary(op, x, xv, y, yv, dev, where_str(op_name(op), dt, "wraparound", dev));
      }
    }
    // Powers that overflow wrap too.
    std::vector<double> bases = {3, 7, static_cast<double>(int_max(dt) >> 3)}, exps = {0, 1, 5, 13, 31};
    if (!is_unsigned(dt)) bases.push_back(-3);
    std::vector<double> pa, pb;
    for (double p : bases) {
      for (double q : exps) {
        pa.push_back(p);
        pb.push_back(q);
      }
    }
    auto [px, pxv] = make_from(pa, {static_cast<int64_t>(pa.size())}, dt);
    auto [py, pyv] = make_from(pb, {static_cast<int64_t>(pb.size())}, dt);
    for (Device dev : test::devices()) {
      check_binary(BinaryOp::power, px, pxv, py, pyv, dev, where_str("power", dt, "wraparound", dev));
    }
  }
}

TEST(ElementwiseBinary, Errors) {
  array a = zeros({3, 4}), b = zeros({5, 4});
  for (BinaryOp op : kAllBinary) {
    std::string name = std::string("[") + op_name(op) + "]";
    KILN_EXPECT_THROW_MSG(binary_table().at(op).fn(a, b, {}), ValueError, name);
    KILN_EXPECT_THROW_MSG(binary_table().at(op).fn(zeros({2, 3}), zeros({3, 2}), {}), ValueError, "(2, 3)");
  }
  for (BinaryOp op : {BinaryOp::bitwise_and, BinaryOp::bitwise_or, BinaryOp::bitwise_xor, BinaryOp::left_shift,
                      BinaryOp::right_shift}) {
    std::string name = std::string("[") + op_name(op) + "]";
    KILN_EXPECT_THROW_MSG(binary_table().at(op).fn(zeros({2}), zeros({2}, int32), {}), TypeError, name);
    KILN_EXPECT_THROW_MSG(binary_table().at(op).fn(zeros({2}, float16), zeros({2}, float16), {}), TypeError, name);
  }
  KILN_EXPECT_THROW_MSG(left_shift(zeros({2}, bool_), zeros({2}, bool_)), TypeError, "[left_shift]");
  KILN_EXPECT_THROW_MSG(right_shift(zeros({2}, bool_), zeros({2}, bool_)), TypeError, "[right_shift]");
  KILN_EXPECT_THROW_MSG(subtract(zeros({2}, bool_), zeros({2}, bool_)), TypeError, "[subtract]");
  KILN_EXPECT_THROW_MSG(arctan2(zeros({2}, complex64), zeros({2})), TypeError, "[arctan2]");
  KILN_EXPECT_THROW_MSG(remainder(zeros({2}, complex64), zeros({2})), TypeError, "[remainder]");
  KILN_EXPECT_THROW_MSG(bitwise_invert(zeros({2})), TypeError, "[bitwise_invert]");
  KILN_EXPECT_THROW_MSG(negative(zeros({2}, bool_)), TypeError, "[neg");
  KILN_EXPECT_THROW_MSG(sin(zeros({2}, complex64)), TypeError, "[sin]");
  KILN_EXPECT_THROW_MSG(where(zeros({3}, bool_), zeros({4}), zeros({3})), ValueError, "[where]");
  KILN_EXPECT_THROW_MSG(clip(zeros({3}), std::nullopt, std::nullopt), ValueError, "[clip]");
  KILN_EXPECT_THROW_MSG(clip(zeros({3}, complex64), array(0.f), std::nullopt), TypeError, "[clip]");
  KILN_EXPECT_THROW_MSG(clip(zeros({3}), zeros({2}), std::nullopt), ValueError, "[maximum]");
}

// ---------------------------------------------------------------------------------------------
// where, clip

TEST(ElementwiseWhere, BroadcastAndPromote) {
  struct Case {
    Shape c, x, y;
    Dtype cd, xd, yd;
  };
  std::vector<Case> cases = {
      {{4, 6}, {4, 6}, {4, 6}, bool_, float32, float32},   {{4, 1}, {1, 6}, {}, bool_, int32, float16},
      {{}, {3, 2}, {2}, bool_, uint8, int8},               {{2, 3}, {2, 3}, {2, 3}, float32, bfloat16, float16},
      {{5}, {5}, {5}, int32, complex64, float64},          {{0, 3}, {1, 3}, {3}, bool_, int64, uint64},
  };
  for (const auto& c : cases) {
    auto [cond, cv] = make(c.c, c.cd, {-1, 1});
    auto [x, xv] = make(c.x, c.xd, {-50, 50});
    auto [y, yv] = make(c.y, c.yd, {-50, 50});
    Shape shape = broadcast_shape(broadcast_shape(c.c, c.x), c.y);
    Dtype dt = promote_types(c.xd, c.yd);
    Vals cb = cast_vals(broadcast_vals(cv, c.c, shape), bool_);
    Vals xb = cast_vals(broadcast_vals(xv, c.x, shape), dt), yb = cast_vals(broadcast_vals(yv, c.y, shape), dt);
    Vals want = xb;
    for (size_t i = 0; i < want.size(); ++i) {
      if (cb.re[i] == 0) {
        want.re[i] = yb.re[i];
        want.im[i] = yb.im[i];
      }
    }
    for (Device dev : test::devices()) {
      array r = where(cond, x, y, dev);
      EXPECT_EQ(r.dtype(), dt);
      EXPECT_EQ(r.shape(), shape);
      expect_matches(read(r), want, dt, "where " + test::device_name(dev));
      // Transposed operands give the same result.
      if (c.c.size() == 2 && c.x.size() == 2 && c.c[0] == c.x[0] && c.c == c.x && c.y == c.x) {
        array rt = where(transpose(cond, dev), transpose(x, dev), transpose(y, dev), dev);
        expect_matches(read(transpose(rt, dev)), want, dt, "where transposed " + test::device_name(dev));
      }
    }
  }
}

TEST(ElementwiseClip, Bounds) {
  for (Dtype dt : {float32, float16, int32, uint8, float64}) {
    auto [a, av] = make({4, 6}, dt, {-10, 10});
    array lo = array(-3, dt), hi = test::from_doubles(test::uniform_values(6, 0, 5), {6}, dt);
    Vals lov = read(broadcast_to(lo, {4, 6})), hiv = read(broadcast_to(hi, {4, 6}));
    for (Device dev : test::devices()) {
      Vals both = read(clip(a, lo, hi, dev)), lower = read(clip(a, lo, std::nullopt, dev)),
           upper = read(clip(a, std::nullopt, hi, dev));
      for (size_t i = 0; i < av.size(); ++i) {
        ASSERT_EQ(lower.re[i], std::max(av.re[i], lov.re[i])) << dt;
        ASSERT_EQ(upper.re[i], std::min(av.re[i], hiv.re[i])) << dt;
        ASSERT_EQ(both.re[i], std::min(std::max(av.re[i], lov.re[i]), hiv.re[i])) << dt;
      }
      EXPECT_EQ(clip(a, lo, hi, dev).dtype(), dt);
    }
  }
  // A bound of another dtype promotes, as any binary op.
  EXPECT_EQ(clip(zeros({2}, int8), array(0.5f), std::nullopt).dtype(), float32);
}

// ---------------------------------------------------------------------------------------------
// astype, view, copy

// Every pair of dtypes: float to int truncates toward zero, int to int wraps, to bool is
// "nonzero", 16-bit floats round to nearest even, complex to real keeps the real part.
TEST(ElementwiseAstype, AllPairs) {
  for (Dtype from : test::all_dtypes()) {
    for (Dtype to : test::all_dtypes()) {
      Range r = kFull;
      if (is_inexact(from)) r = is_unsigned(to) ? Range{0, 100} : (is_integer(to) ? Range{-100, 100} : Range{-70000, 70000});
      if (is_inexact(from) && to == bool_) r = {-1.5, 1.5};
      if (from == complex64 && !is_integer(to)) r = {-100, 100};
      auto [x, xv] = make({4, 5}, from, r);
      // Some exact zeros so that bool conversions see both outcomes.
      for (Device dev : test::devices()) {
        array y = astype(x, to, dev);
        EXPECT_EQ(y.dtype(), to);
        expect_matches(read(y), cast_vals(xv, to), to, where_str(std::string("astype to ") + dtype_name(to), from, "", dev),
                       {&xv});
        array yt = astype(transpose(x, dev), to, dev);
        expect_matches(read(transpose(yt, dev)), cast_vals(xv, to), to,
                       where_str(std::string("astype to ") + dtype_name(to), from, "transposed", dev), {&xv});
      }
    }
  }
}

TEST(ElementwiseAstype, SpecialValues) {
  std::vector<double> v = {NAN, -NAN, 0.0, -0.0, 0.9, -0.9, 2.5, -2.5, 99.99, -99.99};
  for (Dtype from : test::float_dtypes()) {
    auto [x, xv] = make_from(v, {static_cast<int64_t>(v.size())}, from);
    for (Dtype to : test::all_dtypes()) {
      if (is_unsigned(to)) continue;  // negative floats to unsigned have no defined value
      for (Device dev : test::devices()) {
        expect_matches(read(astype(x, to, dev)), cast_vals(xv, to), to,
                       where_str(std::string("astype to ") + dtype_name(to), from, "specials", dev), {&xv});
      }
    }
  }
  // Float32 into the 16-bit floats: overflow, subnormals, ties.
  std::vector<double> f = {65504, 65519, 65520, 1e6, -1e6, INFINITY, -INFINITY, NAN, 1e-7, 3e-8, 2.98e-8, 1e-45,
                           1 + std::ldexp(1.0, -11), 1 + 3 * std::ldexp(1.0, -11), 3e38, std::ldexp(1.0, -130)};
  auto [x, xv] = make_from(f, {static_cast<int64_t>(f.size())}, float32);
  auto [xd, xdv] = make_from(f, {static_cast<int64_t>(f.size())}, float64);
  for (Dtype to : {float16, bfloat16}) {
    for (Device dev : test::devices()) {
      expect_matches(read(astype(x, to, dev)), cast_vals(xv, to), to, where_str("astype float32 to", to, "", dev), {&xv});
      expect_matches(read(astype(xd, to, dev)), cast_vals(xdv, to), to, where_str("astype float64 to", to, "", dev), {&xdv});
    }
  }
}

TEST(ElementwiseAstype, SameDtypeIsNoOp) {
  array x = zeros({3}, int16);
  EXPECT_TRUE(astype(x, int16).is_same(x));
}

// view reinterprets bytes: the last axis scales by the size ratio.
TEST(ElementwiseView, Bitcast) {
  auto fv = test::uniform_values(24, -10, 10);
  std::vector<float> f(fv.begin(), fv.end());
  array x(f, {4, 6});
  for (Device dev : test::devices()) {
    auto as_int = view(x, int32, dev);
    EXPECT_EQ(as_int.shape(), (Shape{4, 6}));
    auto iv = as_int.to_vector<int32_t>();
    for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(iv[i], std::bit_cast<int32_t>(f[i]));
    auto bytes = view(x, uint8, dev);
    EXPECT_EQ(bytes.shape(), (Shape{4, 24}));
    auto bv = bytes.to_vector<uint8_t>();
    EXPECT_EQ(std::memcmp(bv.data(), f.data(), bv.size()), 0);
    auto back = view(bytes, float32, dev);
    EXPECT_EQ(back.to_vector<float>(), f);
    auto halves = view(x, float16, dev);
    EXPECT_EQ(halves.shape(), (Shape{4, 12}));
    auto hv = halves.to_vector<float16_t>();
    EXPECT_EQ(std::memcmp(hv.data(), f.data(), f.size() * 4), 0);
    auto cplx = view(x, complex64, dev);
    EXPECT_EQ(cplx.shape(), (Shape{4, 3}));
    auto cv = cplx.to_vector<complex64_t>();
    EXPECT_EQ(cv[1].re, f[2]);
    EXPECT_EQ(cv[1].im, f[3]);
    // A transposed input is viewed in its logical (row-major) order.
    auto tv = view(transpose(x, dev), int32, dev).to_vector<int32_t>();
    auto tf = transpose(x).to_vector<float>();
    for (size_t i = 0; i < tf.size(); ++i) EXPECT_EQ(tv[i], std::bit_cast<int32_t>(tf[i]));
  }
  // A view of an evaluated contiguous array shares its buffer.
  x.eval();
  array v = view(x, uint32);
  v.eval();
  EXPECT_EQ(v.buffer().get(), x.buffer().get());
  array lazy = x + 1.0;
  array lv = view(lazy, int32);
  eval(lv, lazy);
  EXPECT_EQ(lv.buffer().get(), lazy.buffer().get()) << "view of a lazy contiguous result copied";
  KILN_EXPECT_THROW_MSG(view(zeros({4, 3}, uint8), float32), ValueError, "[view]");
  KILN_EXPECT_THROW_MSG(view(array(1.f), float16), ValueError, "[view]");
  EXPECT_EQ(view(array(1.f), int32).item<int32_t>(), std::bit_cast<int32_t>(1.f));
}

TEST(ElementwiseCopy, CopyAndContiguous) {
  for (Device dev : test::devices()) {
    auto [x, xv] = make({5, 7}, float32, {-1, 1});
    array c = copy(x, dev);
    c.eval();
    EXPECT_NE(c.buffer().get(), x.buffer().get());
    EXPECT_TRUE(c.row_contiguous());
    expect_matches(read(c), xv, float32, "copy");
    EXPECT_TRUE(contiguous(x, dev).is_same(x));  // already row-contiguous and evaluated
    array t = transpose(x, dev);
    t.eval();
    EXPECT_FALSE(t.row_contiguous());
    array ct = contiguous(t, dev);
    ct.eval();
    EXPECT_TRUE(ct.row_contiguous());
    expect_matches(read(ct), gather(xv, {7, 5}, {1, 7}, 0), float32, "contiguous of transposed");
    // contiguous of a not-yet-computed array copies only if the result turns out non-contiguous.
    array lazy = x * 2.0;
    array cl = contiguous(lazy, dev);
    eval(cl, lazy);
    EXPECT_EQ(cl.buffer().get(), lazy.buffer().get()) << "contiguous copied a row-contiguous result";
    array lazy_t = negative(transpose(x, dev), dev);  // a unary result keeps its input's layout
    array clt = contiguous(lazy_t, dev);
    eval(clt, lazy_t);
    EXPECT_FALSE(lazy_t.row_contiguous());
    EXPECT_TRUE(clt.row_contiguous());
    EXPECT_NE(clt.buffer().get(), lazy_t.buffer().get());
    Vals neg = gather(xv, {7, 5}, {1, 7}, 0);
    for (auto& v : neg.re) v = -v;
    expect_matches(read(clt), neg, float32, "contiguous of a lazy transposed result");
    array empty = copy(zeros({0, 3}), dev);
    EXPECT_EQ(empty.shape(), (Shape{0, 3}));
    EXPECT_EQ(empty.to_vector<float>().size(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// Operators, weak scalars, streams

TEST(ElementwiseOperators, WeakScalars) {
  EXPECT_EQ((zeros({2}, bfloat16) * 2.0).dtype(), bfloat16);
  EXPECT_EQ((2.0 * zeros({2}, float16)).dtype(), float16);
  EXPECT_EQ((zeros({2}, int8) + 3).dtype(), int8);
  EXPECT_EQ((zeros({2}, int8) + 0.5).dtype(), float32);
  EXPECT_EQ((zeros({2}, bool_) + 1).dtype(), int32);
  EXPECT_EQ((zeros({2}, bool_) + 0.5).dtype(), float32);
  EXPECT_EQ((zeros({2}, uint16) < 1.0).dtype(), bool_);
  EXPECT_EQ((zeros({2}) + array(1.0)).dtype(), float64);  // an array is strongly typed
  // A scalar the integer dtype cannot hold is an error, as in NumPy 2.
  EXPECT_EQ((zeros({2}, uint8) + 255).to_vector<uint8_t>(), (std::vector<uint8_t>{255, 255}));
  EXPECT_EQ((zeros({2}, int8) + -128).to_vector<int8_t>(), (std::vector<int8_t>{-128, -128}));
  KILN_EXPECT_THROW_MSG(zeros({2}, uint8) + 256, ValueError, "uint8");
  KILN_EXPECT_THROW_MSG(zeros({2}, uint16) * -1, ValueError, "uint16");
  KILN_EXPECT_THROW_MSG(zeros({2}, int8) - 129, ValueError, "int8");
  KILN_EXPECT_THROW_MSG(1e19 < zeros({2}, int64), ValueError, "int64");
  EXPECT_EQ((zeros({2}, uint64) + 1e19).dtype(), uint64);
  auto [x, xv] = make({3, 4}, float32, {1, 5});
  auto [n, nv] = make({3, 4}, int32, {1, 40});
  auto close = [&](array got, std::function<double(double)> f, const Vals& in, Dtype dt, const char* what) {
    Vals want = in;
    for (auto& v : want.re) v = f(static_cast<double>(v));
    expect_matches(read(got), cast_vals(want, dt), dt, what);
  };
  close(x + 1.5, [](double v) { return v + 1.5; }, xv, float32, "x + 1.5");
  close(2.0 - x, [](double v) { return 2.0 - v; }, xv, float32, "2 - x");
  close(x * 3.0, [](double v) { return v * 3.0; }, xv, float32, "x * 3");
  close(1.0 / x, [](double v) { return 1.0 / v; }, xv, float32, "1 / x");
  close(-x, [](double v) { return -v; }, xv, float32, "-x");
  close(n % 7, [](double v) { return std::fmod(v, 7); }, nv, int32, "n % 7");
  close(n << 2, [](double v) { return v * 4; }, nv, int32, "n << 2");
  close(n >> 1, [](double v) { return std::floor(v / 2); }, nv, int32, "n >> 1");
  close(n & 6, [](double v) { return double(int64_t(v) & 6); }, nv, int32, "n & 6");
  close(~n, [](double v) { return -v - 1; }, nv, int32, "~n");
  close(x > 3.0, [](double v) { return double(v > 3.0); }, xv, bool_, "x > 3");
  close(!(x > 3.0), [](double v) { return double(!(v > 3.0)); }, xv, bool_, "!(x > 3)");
  close((x > 2.0) && (x < 4.0), [](double v) { return double(v > 2 && v < 4); }, xv, bool_, "&&");
  close(x == x, [](double) { return 1.0; }, xv, bool_, "x == x");
}

// Every op takes a stream as well as a device, and builds its node there.
TEST(ElementwiseStreams, StreamArgument) {
  for (Device dev : test::devices()) {
    Stream s = new_stream(dev);
    EXPECT_NE(s, default_stream(dev));
    auto [x, xv] = make({3, 4}, float32, {0.2, 0.9});
    for (UnaryOp op : kAllUnary) {
      if (op == UnaryOp::bitwise_invert) continue;
      array y = unary_table().at(op).fn(x, s);
      EXPECT_EQ(y.stream(), s) << op_name(op);
      EXPECT_EQ(y.device(), dev) << op_name(op);
      expect_matches(read(y), unary_ref_all(op, float32, y.dtype(), xv), y.dtype(), where_str(op_name(op), float32, "stream", dev));
    }
    auto [n, nv] = make({3, 4}, int32, {1, 9});
    for (BinaryOp op : kAllBinary) {
      array y = binary_table().at(op).fn(n, n, s);
      EXPECT_EQ(y.stream(), s) << op_name(op);
      check_binary(op, n, nv, n, nv, dev, where_str(op_name(op), int32, "default stream", dev));
    }
    EXPECT_EQ(where(x > 0.5, x, x, s).stream(), s);
    EXPECT_EQ(clip(x, array(0.f), std::nullopt, s).stream(), s);
    EXPECT_EQ(astype(x, float16, s).stream(), s);
    EXPECT_EQ(view(x, int32, s).stream(), s);
    EXPECT_EQ(copy(x, s).stream(), s);
    EXPECT_EQ(contiguous(exp(x, dev), s).stream(), s);
    EXPECT_EQ(contiguous(transpose(x, dev), s).stream(), s);
    // Streams of one device work together: a result from one feeds an op on another.
    array a = exp(x, s);
    array b = a + log(x, default_stream(dev));
    Vals want = xv;
    for (auto& v : want.re) v = std::exp(static_cast<double>(v)) + std::log(static_cast<double>(v));
    expect_matches(read(b), cast_vals(want, float32), float32, "two streams");
  }
}
