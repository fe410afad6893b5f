#include "kiln/ops_elementwise.h"

#include <cmath>

#include "kiln/ops_shape.h"
#include "kiln/primitives_elementwise.h"
#include "kiln/primitives_shape.h"

namespace kiln {

const char* op_name(UnaryOp op) {
  switch (op) {
#define KILN_X(n) \
  case UnaryOp::n: return #n;
    KILN_UNARY_OPS(KILN_X)
#undef KILN_X
  }
  return "?";
}

const char* op_name(BinaryOp op) {
  switch (op) {
#define KILN_X(n) \
  case BinaryOp::n: return #n;
    KILN_BINARY_OPS(KILN_X)
#undef KILN_X
  }
  return "?";
}

namespace {

bool is_float_function(UnaryOp op) {
  switch (op) {
    case UnaryOp::abs:
    case UnaryOp::neg:
    case UnaryOp::sign:
    case UnaryOp::square:
    case UnaryOp::floor:
    case UnaryOp::ceil:
    case UnaryOp::round:
    case UnaryOp::isnan:
    case UnaryOp::isinf:
    case UnaryOp::isfinite:
    case UnaryOp::logical_not:
    case UnaryOp::bitwise_invert:
      return false;
    default:
      return true;
  }
}

bool complex_ok(UnaryOp op) {
  switch (op) {
    case UnaryOp::abs:
    case UnaryOp::neg:
    case UnaryOp::square:
    case UnaryOp::exp:
    case UnaryOp::log:
    case UnaryOp::sqrt:
    case UnaryOp::reciprocal:
    case UnaryOp::isnan:
    case UnaryOp::isinf:
    case UnaryOp::isfinite:
    case UnaryOp::logical_not:
      return true;
    default:
      return false;
  }
}

array unary(UnaryOp op, const array& a, StreamOrDevice s) {
  Stream st = to_stream(s);
  const char* name = op_name(op);
  Dtype in = a.dtype();
  if (is_complex(in) && !complex_ok(op)) fail<TypeError>("[", name, "] complex64 input is not supported");
  if (in == bool_ && (op == UnaryOp::neg || op == UnaryOp::sign)) {
    fail<TypeError>("[", name, "] bool input is not supported; use logical_not");
  }
  if (op == UnaryOp::bitwise_invert && !(is_integer(in) || in == bool_)) {
    fail<TypeError>("[bitwise_invert] needs an integer or bool input, got ", in);
  }
  if ((op == UnaryOp::floor || op == UnaryOp::ceil || op == UnaryOp::round) && !is_inexact(in)) {
    return a;  // already integral
  }
  array x = a;
  if (is_float_function(op) && !is_inexact(in)) {
    x = astype(a, float32, st);
    in = float32;
  }
  Dtype out = in;
  if (op == UnaryOp::isnan || op == UnaryOp::isinf || op == UnaryOp::isfinite || op == UnaryOp::logical_not) {
    out = bool_;
  } else if (op == UnaryOp::abs && is_complex(in)) {
    out = float32;
  }
  return array(a.shape(), out, std::make_shared<Unary>(op), {x}, st);
}

array binary(BinaryOp op, const array& a, const array& b, StreamOrDevice s) {
  Stream st = to_stream(s);
  const char* name = op_name(op);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Dtype ct = promote_types(a.dtype(), b.dtype());
  Dtype out = ct;
  switch (op) {
    case BinaryOp::divide:
      if (!is_inexact(ct)) ct = out = float32;
      break;
    case BinaryOp::arctan2:
    case BinaryOp::logaddexp:
      if (is_complex(ct)) fail<TypeError>("[", name, "] complex64 inputs are not supported");
      if (!is_inexact(ct)) ct = out = float32;
      break;
    case BinaryOp::subtract:
      if (ct == bool_) fail<TypeError>("[subtract] bool inputs are not supported; use logical_xor");
      break;
    case BinaryOp::floor_divide:
    case BinaryOp::remainder:
      if (is_complex(ct)) fail<TypeError>("[", name, "] complex64 inputs are not supported");
      if (ct == bool_) ct = out = int8;
      break;
    case BinaryOp::power:
      if (ct == bool_) ct = out = int8;
      break;
    case BinaryOp::equal:
    case BinaryOp::not_equal:
    case BinaryOp::less:
    case BinaryOp::less_equal:
    case BinaryOp::greater:
    case BinaryOp::greater_equal:
    case BinaryOp::logical_and:
    case BinaryOp::logical_or:
    case BinaryOp::logical_xor:
      out = bool_;
      break;
    case BinaryOp::bitwise_and:
    case BinaryOp::bitwise_or:
    case BinaryOp::bitwise_xor:
      if (!(is_integer(ct) || ct == bool_)) {
        fail<TypeError>("[", name, "] needs integer or bool inputs, got ", a.dtype(), " and ", b.dtype());
      }
      break;
    case BinaryOp::left_shift:
    case BinaryOp::right_shift:
      if (!is_integer(ct)) {
        fail<TypeError>("[", name, "] needs integer inputs, got ", a.dtype(), " and ", b.dtype());
      }
      break;
    default:
      break;
  }
  array x = broadcast_to(astype(a, ct, st), shape, st);
  array y = broadcast_to(astype(b, ct, st), shape, st);
  return array(std::move(shape), out, std::make_shared<Binary>(op), {x, y}, st);
}

}  // namespace

#define KILN_DEFINE_UNARY(fn, op) \
  array fn(const array& a, StreamOrDevice s) { return unary(UnaryOp::op, a, s); }
KILN_DEFINE_UNARY(abs, abs)
KILN_DEFINE_UNARY(negative, neg)
KILN_DEFINE_UNARY(sign, sign)
KILN_DEFINE_UNARY(exp, exp)
KILN_DEFINE_UNARY(exp2, exp2)
KILN_DEFINE_UNARY(log, log)
KILN_DEFINE_UNARY(log2, log2)
KILN_DEFINE_UNARY(log10, log10)
KILN_DEFINE_UNARY(log1p, log1p)
KILN_DEFINE_UNARY(expm1, expm1)
KILN_DEFINE_UNARY(sqrt, sqrt)
KILN_DEFINE_UNARY(rsqrt, rsqrt)
KILN_DEFINE_UNARY(square, square)
KILN_DEFINE_UNARY(reciprocal, reciprocal)
KILN_DEFINE_UNARY(sin, sin)
KILN_DEFINE_UNARY(cos, cos)
KILN_DEFINE_UNARY(tan, tan)
KILN_DEFINE_UNARY(arcsin, arcsin)
KILN_DEFINE_UNARY(arccos, arccos)
KILN_DEFINE_UNARY(arctan, arctan)
KILN_DEFINE_UNARY(sinh, sinh)
KILN_DEFINE_UNARY(cosh, cosh)
KILN_DEFINE_UNARY(tanh, tanh)
KILN_DEFINE_UNARY(arcsinh, arcsinh)
KILN_DEFINE_UNARY(arccosh, arccosh)
KILN_DEFINE_UNARY(arctanh, arctanh)
KILN_DEFINE_UNARY(sigmoid, sigmoid)
KILN_DEFINE_UNARY(erf, erf)
KILN_DEFINE_UNARY(erfinv, erfinv)
KILN_DEFINE_UNARY(floor, floor)
KILN_DEFINE_UNARY(ceil, ceil)
KILN_DEFINE_UNARY(round, round)
KILN_DEFINE_UNARY(isnan, isnan)
KILN_DEFINE_UNARY(isinf, isinf)
KILN_DEFINE_UNARY(isfinite, isfinite)
KILN_DEFINE_UNARY(logical_not, logical_not)
KILN_DEFINE_UNARY(bitwise_invert, bitwise_invert)
#undef KILN_DEFINE_UNARY

#define KILN_DEFINE_BINARY(n) \
  array n(const array& a, const array& b, StreamOrDevice s) { return binary(BinaryOp::n, a, b, s); }
KILN_BINARY_OPS(KILN_DEFINE_BINARY)
#undef KILN_DEFINE_BINARY

array where(const array& cond, const array& x, const array& y, StreamOrDevice s) {
  Stream st = to_stream(s);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), x.shape(), "where"), y.shape(), "where");
  Dtype dt = promote_types(x.dtype(), y.dtype());
  array c = broadcast_to(astype(cond, bool_, st), shape, st);
  array xx = broadcast_to(astype(x, dt, st), shape, st);
  array yy = broadcast_to(astype(y, dt, st), shape, st);
  return array(std::move(shape), dt, std::make_shared<Select>(), {c, xx, yy}, st);
}

array clip(const array& a, const std::optional<array>& lo, const std::optional<array>& hi, StreamOrDevice s) {
  if (!lo && !hi) fail<ValueError>("[clip] at least one of the bounds must be given");
  if (is_complex(a.dtype())) fail<TypeError>("[clip] complex64 input is not supported");
  array out = a;
  if (lo) out = maximum(out, *lo, s);
  if (hi) out = minimum(out, *hi, s);
  return out;
}

array astype(const array& a, Dtype dtype, StreamOrDevice s) {
  if (a.dtype() == dtype) return a;
  return array(a.shape(), dtype, std::make_shared<AsType>(), {a}, to_stream(s));
}

array view(const array& a, Dtype dtype, StreamOrDevice s) {
  if (a.dtype() == dtype) return a;
  Shape shape = a.shape();
  size_t from = a.itemsize(), to = size_of(dtype);
  if (from != to) {
    if (a.ndim() == 0) fail<ValueError>("[view] cannot change the item size of a 0-d array");
    int64_t bytes = shape.back() * static_cast<int64_t>(from);
    if (bytes % static_cast<int64_t>(to) != 0) {
      fail<ValueError>("[view] last axis of ", shape.back(), " x ", from, " bytes does not divide into ",
                       dtype, " elements of ", to, " bytes");
    }
    shape.back() = bytes / static_cast<int64_t>(to);
  }
  Stream st = to_stream(s);
  return array(std::move(shape), dtype, std::make_shared<View>(), {contiguous(a, st)}, st);
}

array copy(const array& a, StreamOrDevice s) {
  return array(a.shape(), a.dtype(), std::make_shared<Copy>(), {a}, to_stream(s));
}

array contiguous(const array& a, StreamOrDevice s) {
  if (a.is_available()) return a.row_contiguous() ? a : copy(a, s);
  // The layout is known only once computed: copy then only if needed.
  return array(a.shape(), a.dtype(), std::make_shared<Contiguous>(), {a}, to_stream(s));
}

array scalar_like(double value, const array& like) {
  Dtype d = like.dtype();
  bool integral = std::floor(value) == value && std::isfinite(value);
  if (d == bool_) d = integral ? int32 : float32;
  if (is_integer(d) && !integral) d = float32;
  if (is_integer(d)) {
    // An integer the dtype cannot hold is an error (as in NumPy 2), not an undefined conversion.
    int bits = static_cast<int>(size_of(d)) * 8;
    double lo = is_unsigned(d) ? 0.0 : -std::ldexp(1.0, bits - 1);
    double hi = std::ldexp(1.0, is_unsigned(d) ? bits : bits - 1);  // exclusive
    if (value < lo || value >= hi) fail<ValueError>("[scalar_like] ", value, " is out of range for ", d);
  }
  return array(value, d);
}

array operator-(const array& a) { return negative(a); }
array operator!(const array& a) { return logical_not(a); }
array operator~(const array& a) { return bitwise_invert(a); }

#define KILN_DEFINE_OPERATOR(sym, fn)                                                          \
  array operator sym(const array& a, const array& b) { return fn(a, b); }                      \
  array operator sym(const array& a, double b) { return fn(a, scalar_like(b, a)); }            \
  array operator sym(double a, const array& b) { return fn(scalar_like(a, b), b); }
KILN_DEFINE_OPERATOR(+, add)
KILN_DEFINE_OPERATOR(-, subtract)
KILN_DEFINE_OPERATOR(*, multiply)
KILN_DEFINE_OPERATOR(/, divide)
KILN_DEFINE_OPERATOR(%, remainder)
KILN_DEFINE_OPERATOR(==, equal)
KILN_DEFINE_OPERATOR(!=, not_equal)
KILN_DEFINE_OPERATOR(<, less)
KILN_DEFINE_OPERATOR(<=, less_equal)
KILN_DEFINE_OPERATOR(>, greater)
KILN_DEFINE_OPERATOR(>=, greater_equal)
KILN_DEFINE_OPERATOR(&&, logical_and)
KILN_DEFINE_OPERATOR(||, logical_or)
KILN_DEFINE_OPERATOR(&, bitwise_and)
KILN_DEFINE_OPERATOR(|, bitwise_or)
KILN_DEFINE_OPERATOR(^, bitwise_xor)
KILN_DEFINE_OPERATOR(<<, left_shift)
KILN_DEFINE_OPERATOR(>>, right_shift)
#undef KILN_DEFINE_OPERATOR

}  // namespace kiln
