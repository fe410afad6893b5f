// Elementwise operations: unary math, binary arithmetic with broadcasting and type promotion,
// comparisons, logic, where, clip and casts.
#pragma once

#include <optional>

#include "kiln/array.h"

namespace kiln {

// Unary math. Integer and bool inputs of the float-valued functions (exp, sin, ...) give float32.
#define KILN_DECLARE_UNARY(n) array n(const array& a, StreamOrDevice s = {});
KILN_DECLARE_UNARY(abs)
KILN_DECLARE_UNARY(negative)
KILN_DECLARE_UNARY(sign)
KILN_DECLARE_UNARY(exp)
KILN_DECLARE_UNARY(exp2)
KILN_DECLARE_UNARY(log)
KILN_DECLARE_UNARY(log2)
KILN_DECLARE_UNARY(log10)
KILN_DECLARE_UNARY(log1p)
KILN_DECLARE_UNARY(expm1)
KILN_DECLARE_UNARY(sqrt)
KILN_DECLARE_UNARY(rsqrt)
KILN_DECLARE_UNARY(square)
KILN_DECLARE_UNARY(reciprocal)
KILN_DECLARE_UNARY(sin)
KILN_DECLARE_UNARY(cos)
KILN_DECLARE_UNARY(tan)
KILN_DECLARE_UNARY(arcsin)
KILN_DECLARE_UNARY(arccos)
KILN_DECLARE_UNARY(arctan)
KILN_DECLARE_UNARY(sinh)
KILN_DECLARE_UNARY(cosh)
KILN_DECLARE_UNARY(tanh)
KILN_DECLARE_UNARY(arcsinh)
KILN_DECLARE_UNARY(arccosh)
KILN_DECLARE_UNARY(arctanh)
KILN_DECLARE_UNARY(sigmoid)
KILN_DECLARE_UNARY(erf)
KILN_DECLARE_UNARY(erfinv)
KILN_DECLARE_UNARY(floor)
KILN_DECLARE_UNARY(ceil)
KILN_DECLARE_UNARY(round)
KILN_DECLARE_UNARY(isnan)
KILN_DECLARE_UNARY(isinf)
KILN_DECLARE_UNARY(isfinite)
KILN_DECLARE_UNARY(logical_not)
KILN_DECLARE_UNARY(bitwise_invert)
#undef KILN_DECLARE_UNARY

// Binary operations broadcast their inputs and promote dtypes (see promote_types).
#define KILN_DECLARE_BINARY(n) array n(const array& a, const array& b, StreamOrDevice s = {});
KILN_DECLARE_BINARY(add)
KILN_DECLARE_BINARY(subtract)
KILN_DECLARE_BINARY(multiply)
KILN_DECLARE_BINARY(divide)
KILN_DECLARE_BINARY(floor_divide)
KILN_DECLARE_BINARY(remainder)
KILN_DECLARE_BINARY(power)
KILN_DECLARE_BINARY(maximum)
KILN_DECLARE_BINARY(minimum)
KILN_DECLARE_BINARY(arctan2)
KILN_DECLARE_BINARY(logaddexp)
KILN_DECLARE_BINARY(equal)
KILN_DECLARE_BINARY(not_equal)
KILN_DECLARE_BINARY(less)
KILN_DECLARE_BINARY(less_equal)
KILN_DECLARE_BINARY(greater)
KILN_DECLARE_BINARY(greater_equal)
KILN_DECLARE_BINARY(logical_and)
KILN_DECLARE_BINARY(logical_or)
KILN_DECLARE_BINARY(logical_xor)
KILN_DECLARE_BINARY(bitwise_and)
KILN_DECLARE_BINARY(bitwise_or)
KILN_DECLARE_BINARY(bitwise_xor)
KILN_DECLARE_BINARY(left_shift)
KILN_DECLARE_BINARY(right_shift)
#undef KILN_DECLARE_BINARY

// Elements of x where cond is true, else of y (all three broadcast together).
array where(const array& cond, const array& x, const array& y, StreamOrDevice s = {});
// Limits to [lo, hi]; either bound may be omitted.
array clip(const array& a, const std::optional<array>& lo, const std::optional<array>& hi,
           StreamOrDevice s = {});

// Converts values to dtype (a copy-free no-op when the dtype already matches).
array astype(const array& a, Dtype dtype, StreamOrDevice s = {});
// Reinterprets the bytes as another dtype; the last axis scales by the size ratio.
array view(const array& a, Dtype dtype, StreamOrDevice s = {});
// A row-contiguous array with the same values (the input itself when it already is one).
array contiguous(const array& a, StreamOrDevice s = {});
// Always a new row-contiguous array.
array copy(const array& a, StreamOrDevice s = {});

// Operators. A C++ scalar on one side takes the array's dtype (weakly typed), so
// x_bf16 * 2.0 stays bfloat16; a fractional scalar with an integer array gives float32.
array operator-(const array& a);
array operator!(const array& a);
array operator~(const array& a);
#define KILN_DECLARE_OPERATOR(sym)                   \
  array operator sym(const array& a, const array& b); \
  array operator sym(const array& a, double b);       \
  array operator sym(double a, const array& b);
KILN_DECLARE_OPERATOR(+)
KILN_DECLARE_OPERATOR(-)
KILN_DECLARE_OPERATOR(*)
KILN_DECLARE_OPERATOR(/)
KILN_DECLARE_OPERATOR(%)
KILN_DECLARE_OPERATOR(==)
KILN_DECLARE_OPERATOR(!=)
KILN_DECLARE_OPERATOR(<)
KILN_DECLARE_OPERATOR(<=)
KILN_DECLARE_OPERATOR(>)
KILN_DECLARE_OPERATOR(>=)
KILN_DECLARE_OPERATOR(&&)
KILN_DECLARE_OPERATOR(||)
KILN_DECLARE_OPERATOR(&)
KILN_DECLARE_OPERATOR(|)
KILN_DECLARE_OPERATOR(^)
KILN_DECLARE_OPERATOR(<<)
KILN_DECLARE_OPERATOR(>>)
#undef KILN_DECLARE_OPERATOR

// A scalar of the dtype an array would give it in a binary operation with `like` (weak typing).
array scalar_like(double value, const array& like);

}  // namespace kiln
