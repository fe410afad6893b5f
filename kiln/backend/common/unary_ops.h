// The unary operations as functors, shared by the CPU and CUDA kernels. Each takes the compute
// type (float for the 16-bit floats) and returns the output value; `supports<T>` says which input
// types the kernel is instantiated for.
#pragma once

#include "kiln/backend/common/math.h"
#include "kiln/primitives_elementwise.h"

namespace kiln::ops {

template <class T>
inline constexpr bool is_fp = std::is_floating_point_v<T> || std::is_same_v<T, float16_t> ||
                              std::is_same_v<T, bfloat16_t>;
template <class T>
inline constexpr bool is_cplx = std::is_same_v<T, complex64_t>;
template <class T>
inline constexpr bool is_int = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Integer arithmetic that wraps in two's complement, as NumPy's does. Signed overflow is undefined
// in C++, so it is done in an unsigned type at least as wide as unsigned int (narrower ones would
// promote to int, where uint16 * uint16 can overflow too).
template <class T>
using wrap_t = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
template <class T>
KILN_HD T wrap_neg(T x) {
  return T(wrap_t<T>(0) - wrap_t<T>(x));
}
template <class T>
KILN_HD T wrap_add(T a, T b) {
  return T(wrap_t<T>(a) + wrap_t<T>(b));
}
template <class T>
KILN_HD T wrap_sub(T a, T b) {
  return T(wrap_t<T>(a) - wrap_t<T>(b));
}
template <class T>
KILN_HD T wrap_mul(T a, T b) {
  return T(wrap_t<T>(a) * wrap_t<T>(b));
}

// Real floating functions: float16, bfloat16, float32, float64.
#define KILN_FLOAT_FN(Name, expr)                        \
  struct Name {                                          \
    template <class T>                                   \
    static constexpr bool supports = is_fp<T>;           \
    template <class T>                                   \
    KILN_HD T operator()(T x) const {                    \
      return expr;                                       \
    }                                                    \
  };

struct Abs {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD auto operator()(T x) const {
    if constexpr (is_cplx<T>) {
      return math::abs(x);
    } else if constexpr (std::is_unsigned_v<T>) {
      return x;
    } else if constexpr (is_int<T>) {
      return x < T(0) ? wrap_neg(x) : x;  // the most negative value stays itself
    } else {
      return x < T(0) ? T(-x) : x;
    }
  }
};

struct Neg {
  template <class T>
  static constexpr bool supports = !std::is_same_v<T, bool>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (is_int<T>) {
      return wrap_neg(x);
    } else {
      return T(-x);
    }
  }
};

struct Sign {
  template <class T>
  static constexpr bool supports = !std::is_same_v<T, bool> && !is_cplx<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x > T(0) ? T(1) : T(0);
    } else {
      if constexpr (std::is_floating_point_v<T>) {
        if (x != x) return x;
      }
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    }
  }
};

struct Square {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (std::is_same_v<T, bool>) {
      return x;
    } else if constexpr (is_int<T>) {
      return wrap_mul(x, x);
    } else {
      return T(x * x);
    }
  }
};

struct Exp {
  template <class T>
  static constexpr bool supports = is_fp<T> || is_cplx<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (is_cplx<T>) {
      return math::exp(x);
    } else {
      return std::exp(x);
    }
  }
};

struct Log {
  template <class T>
  static constexpr bool supports = is_fp<T> || is_cplx<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (is_cplx<T>) {
      return math::log(x);
    } else {
      return std::log(x);
    }
  }
};

struct Sqrt {
  template <class T>
  static constexpr bool supports = is_fp<T> || is_cplx<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (is_cplx<T>) {
      return math::sqrt(x);
    } else {
      return std::sqrt(x);
    }
  }
};

struct Reciprocal {
  template <class T>
  static constexpr bool supports = is_fp<T> || is_cplx<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    return T(1) / x;
  }
};

KILN_FLOAT_FN(Exp2, std::exp2(x))
KILN_FLOAT_FN(Log2, std::log2(x))
KILN_FLOAT_FN(Log10, std::log10(x))
KILN_FLOAT_FN(Log1p, std::log1p(x))
KILN_FLOAT_FN(Expm1, std::expm1(x))
KILN_FLOAT_FN(Rsqrt, T(1) / std::sqrt(x))
KILN_FLOAT_FN(Sin, std::sin(x))
KILN_FLOAT_FN(Cos, std::cos(x))
KILN_FLOAT_FN(Tan, std::tan(x))
KILN_FLOAT_FN(Arcsin, std::asin(x))
KILN_FLOAT_FN(Arccos, std::acos(x))
KILN_FLOAT_FN(Arctan, std::atan(x))
KILN_FLOAT_FN(Sinh, std::sinh(x))
KILN_FLOAT_FN(Cosh, std::cosh(x))
KILN_FLOAT_FN(Tanh, std::tanh(x))
KILN_FLOAT_FN(Arcsinh, std::asinh(x))
KILN_FLOAT_FN(Arccosh, std::acosh(x))
KILN_FLOAT_FN(Arctanh, std::atanh(x))
// Stable for large |x|: exp never overflows.
KILN_FLOAT_FN(Sigmoid, x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x)))
KILN_FLOAT_FN(Erf, std::erf(x))
KILN_FLOAT_FN(Erfinv, math::erfinv(x))
KILN_FLOAT_FN(Floor, std::floor(x))
KILN_FLOAT_FN(Ceil, std::ceil(x))
KILN_FLOAT_FN(Round, std::rint(x))  // halves to even, as NumPy
#undef KILN_FLOAT_FN

struct IsNan {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD bool operator()(T x) const {
    return math::isnan(x);
  }
};

struct IsInf {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD bool operator()(T x) const {
    return math::isinf(x);
  }
};

struct IsFinite {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD bool operator()(T x) const {
    return !math::isnan(x) && !math::isinf(x);
  }
};

struct LogicalNot {
  template <class T>
  static constexpr bool supports = true;
  template <class T>
  KILN_HD bool operator()(T x) const {
    return !convert<bool>(x);
  }
};

struct BitwiseInvert {
  template <class T>
  static constexpr bool supports = std::is_integral_v<T>;
  template <class T>
  KILN_HD T operator()(T x) const {
    if constexpr (std::is_same_v<T, bool>) {
      return !x;
    } else {
      return T(~x);
    }
  }
};

// Calls f.template operator()<Functor>() for the functor of `op`.
template <class F>
void visit_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::abs: f(Abs{}); break;
    case UnaryOp::neg: f(Neg{}); break;
    case UnaryOp::sign: f(Sign{}); break;
    case UnaryOp::exp: f(Exp{}); break;
    case UnaryOp::exp2: f(Exp2{}); break;
    case UnaryOp::log: f(Log{}); break;
    case UnaryOp::log2: f(Log2{}); break;
    case UnaryOp::log10: f(Log10{}); break;
    case UnaryOp::log1p: f(Log1p{}); break;
    case UnaryOp::expm1: f(Expm1{}); break;
    case UnaryOp::sqrt: f(Sqrt{}); break;
    case UnaryOp::rsqrt: f(Rsqrt{}); break;
    case UnaryOp::square: f(Square{}); break;
    case UnaryOp::reciprocal: f(Reciprocal{}); break;
    case UnaryOp::sin: f(Sin{}); break;
    case UnaryOp::cos: f(Cos{}); break;
    case UnaryOp::tan: f(Tan{}); break;
    case UnaryOp::arcsin: f(Arcsin{}); break;
    case UnaryOp::arccos: f(Arccos{}); break;
    case UnaryOp::arctan: f(Arctan{}); break;
    case UnaryOp::sinh: f(Sinh{}); break;
    case UnaryOp::cosh: f(Cosh{}); break;
    case UnaryOp::tanh: f(Tanh{}); break;
    case UnaryOp::arcsinh: f(Arcsinh{}); break;
    case UnaryOp::arccosh: f(Arccosh{}); break;
    case UnaryOp::arctanh: f(Arctanh{}); break;
    case UnaryOp::sigmoid: f(Sigmoid{}); break;
    case UnaryOp::erf: f(Erf{}); break;
    case UnaryOp::erfinv: f(Erfinv{}); break;
    case UnaryOp::floor: f(Floor{}); break;
    case UnaryOp::ceil: f(Ceil{}); break;
    case UnaryOp::round: f(Round{}); break;
    case UnaryOp::isnan: f(IsNan{}); break;
    case UnaryOp::isinf: f(IsInf{}); break;
    case UnaryOp::isfinite: f(IsFinite{}); break;
    case UnaryOp::logical_not: f(LogicalNot{}); break;
    case UnaryOp::bitwise_invert: f(BitwiseInvert{}); break;
  }
}

}  // namespace kiln::ops
