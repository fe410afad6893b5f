// The binary operations as functors, shared by the CPU and CUDA kernels. Inputs arrive in the
// compute type (float for the 16-bit floats); comparisons and logic return bool.
#pragma once

#include "kiln/backend/common/unary_ops.h"

namespace kiln::ops {

#define KILN_BINARY_FN(Name, cond, expr)        \
  struct Name {                                 \
    template <class T>                          \
    static constexpr bool supports = cond;      \
    template <class T>                          \
    KILN_HD auto operator()(T a, T b) const {   \
      return expr;                              \
    }                                           \
  };

template <class T>
KILN_HD T add_(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a || b;
  } else if constexpr (is_int<T>) {
    return wrap_add(a, b);
  } else {
    return T(a + b);
  }
}
template <class T>
KILN_HD T sub_(T a, T b) {
  if constexpr (is_int<T>) {
    return wrap_sub(a, b);
  } else {
    return T(a - b);
  }
}
template <class T>
KILN_HD T mul_(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a && b;
  } else if constexpr (is_int<T>) {
    return wrap_mul(a, b);
  } else {
    return T(a * b);
  }
}

// Python-style floor division and modulo: the remainder takes the divisor's sign. Integer
// division by zero gives 0 (as NumPy does, without its warning).
template <class T>
KILN_HD T floor_div_(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return wrap_neg(a);  // avoids the overflow trap of MIN / -1
      T q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
      return q;
    } else {
      return a / b;
    }
  } else {
    // Python's (and NumPy's) float floor division goes through fmod, so that it agrees with
    // remainder: a == b * (a // b) + a % b as nearly as floating point allows. floor(a / b) would
    // give 1 // 0.1 == 10 where Python gives 9, because 1 / 0.1 rounds up to 10.
    if (b == T(0)) return a / b;
    T mod = std::fmod(a, b);
    T div = (a - mod) / b;
    if (mod != T(0) && ((b < T(0)) != (mod < T(0)))) div -= T(1);
    if (div == T(0)) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    if (div - fl > T(0.5)) fl += T(1);  // snap to the nearest integer
    return fl;
  }
}

template <class T>
KILN_HD T rem_(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return 0;
      T r = a % b;
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    } else {
      return a % b;
    }
  } else {
    T r = std::fmod(a, b);
    if (r != T(0) && ((r < T(0)) != (b < T(0)))) r += b;
    return r;
  }
}

template <class T>
KILN_HD T pow_(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      if (b < 0) return a == 1 ? T(1) : (a == -1 ? (b % 2 ? T(-1) : T(1)) : T(0));
    }
    T result = 1;
    T base = a;
    while (b) {
      if (b & 1) result = wrap_mul(result, base);
      base = wrap_mul(base, base);
      b >>= 1;
    }
    return result;
  } else if constexpr (std::is_same_v<T, complex64_t>) {
    // exp(b * log(a)), with 0^b = 0 for b != 0 and a^0 = 1.
    if (b.re == 0.f && b.im == 0.f) return complex64_t(1.f, 0.f);
    if (a.re == 0.f && a.im == 0.f) return complex64_t(0.f, 0.f);
    return math::exp(b * math::log(a));
  } else {
    return std::pow(a, b);
  }
}

// NaN-propagating extremes, as NumPy's maximum and minimum.
template <class T>
KILN_HD T max_(T a, T b) {
  if (math::isnan(a)) return a;
  if (math::isnan(b)) return b;
  return a < b ? b : a;
}
template <class T>
KILN_HD T min_(T a, T b) {
  if (math::isnan(a)) return a;
  if (math::isnan(b)) return b;
  return b < a ? b : a;
}

template <class T>
KILN_HD T logaddexp_(T a, T b) {
  if (a == b && std::isinf(a)) return a;  // both +inf or both -inf
  T m = a > b ? a : b;
  T d = a > b ? b - a : a - b;
  if (d != d) return a + b;  // NaN input
  return m + std::log1p(std::exp(d));
}

template <class T>
KILN_HD T shl_(T a, T b) {
  constexpr T bits = T(sizeof(T) * 8);
  if constexpr (std::is_signed_v<T>) {
    if (b < 0) return 0;
  }
  if (b >= bits) return 0;
  using U = std::make_unsigned_t<T>;
  return T(U(a) << b);
}

template <class T>
KILN_HD T shr_(T a, T b) {
  constexpr T bits = T(sizeof(T) * 8);
  if constexpr (std::is_signed_v<T>) {
    if (b < 0 || b >= bits) return a < 0 ? T(-1) : T(0);
  } else {
    if (b >= bits) return 0;
  }
  return T(a >> b);
}

template <class T>
inline constexpr bool not_bool = !std::is_same_v<T, bool>;
template <class T>
inline constexpr bool real_number = !is_cplx<T> && !std::is_same_v<T, bool>;

KILN_BINARY_FN(Add, true, add_(a, b))
KILN_BINARY_FN(Subtract, not_bool<T>, sub_(a, b))
KILN_BINARY_FN(Multiply, true, mul_(a, b))
KILN_BINARY_FN(Divide, is_fp<T> || is_cplx<T>, T(a / b))
KILN_BINARY_FN(FloorDivide, real_number<T>, floor_div_(a, b))
KILN_BINARY_FN(Remainder, real_number<T>, rem_(a, b))
KILN_BINARY_FN(Power, not_bool<T>, pow_(a, b))
KILN_BINARY_FN(Maximum, true, max_(a, b))
KILN_BINARY_FN(Minimum, true, min_(a, b))
KILN_BINARY_FN(Arctan2, is_fp<T>, T(std::atan2(a, b)))
KILN_BINARY_FN(LogAddExp, is_fp<T>, logaddexp_(a, b))
KILN_BINARY_FN(Equal, true, bool(a == b))
KILN_BINARY_FN(NotEqual, true, bool(a != b))
KILN_BINARY_FN(Less, true, bool(a < b))
KILN_BINARY_FN(LessEqual, true, bool(a <= b))
KILN_BINARY_FN(Greater, true, bool(a > b))
KILN_BINARY_FN(GreaterEqual, true, bool(a >= b))
KILN_BINARY_FN(LogicalAnd, true, bool(convert<bool>(a) && convert<bool>(b)))
KILN_BINARY_FN(LogicalOr, true, bool(convert<bool>(a) || convert<bool>(b)))
KILN_BINARY_FN(LogicalXor, true, bool(convert<bool>(a) != convert<bool>(b)))
KILN_BINARY_FN(BitwiseAnd, std::is_integral_v<T>, T(a & b))
KILN_BINARY_FN(BitwiseOr, std::is_integral_v<T>, T(a | b))
KILN_BINARY_FN(BitwiseXor, std::is_integral_v<T>, T(a ^ b))
KILN_BINARY_FN(LeftShift, is_int<T>, shl_(a, b))
KILN_BINARY_FN(RightShift, is_int<T>, shr_(a, b))
#undef KILN_BINARY_FN

template <class F>
void visit_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::add: f(Add{}); break;
    case BinaryOp::subtract: f(Subtract{}); break;
    case BinaryOp::multiply: f(Multiply{}); break;
    case BinaryOp::divide: f(Divide{}); break;
    case BinaryOp::floor_divide: f(FloorDivide{}); break;
    case BinaryOp::remainder: f(Remainder{}); break;
    case BinaryOp::power: f(Power{}); break;
    case BinaryOp::maximum: f(Maximum{}); break;
    case BinaryOp::minimum: f(Minimum{}); break;
    case BinaryOp::arctan2: f(Arctan2{}); break;
    case BinaryOp::logaddexp: f(LogAddExp{}); break;
    case BinaryOp::equal: f(Equal{}); break;
    case BinaryOp::not_equal: f(NotEqual{}); break;
    case BinaryOp::less: f(Less{}); break;
    case BinaryOp::less_equal: f(LessEqual{}); break;
    case BinaryOp::greater: f(Greater{}); break;
    case BinaryOp::greater_equal: f(GreaterEqual{}); break;
    case BinaryOp::logical_and: f(LogicalAnd{}); break;
    case BinaryOp::logical_or: f(LogicalOr{}); break;
    case BinaryOp::logical_xor: f(LogicalXor{}); break;
    case BinaryOp::bitwise_and: f(BitwiseAnd{}); break;
    case BinaryOp::bitwise_or: f(BitwiseOr{}); break;
    case BinaryOp::bitwise_xor: f(BitwiseXor{}); break;
    case BinaryOp::left_shift: f(LeftShift{}); break;
    case BinaryOp::right_shift: f(RightShift{}); break;
  }
}

}  // namespace kiln::ops
