// Elementwise primitives: unary math, binary arithmetic/comparison/logic, casts and copies.
#pragma once

#include "kiln/primitive.h"

namespace kiln {

#define KILN_UNARY_OPS(X)                                                                       \
  X(abs) X(neg) X(sign) X(exp) X(exp2) X(log) X(log2) X(log10) X(log1p) X(expm1) X(sqrt)        \
  X(rsqrt) X(square) X(reciprocal) X(sin) X(cos) X(tan) X(arcsin) X(arccos) X(arctan) X(sinh)   \
  X(cosh) X(tanh) X(arcsinh) X(arccosh) X(arctanh) X(sigmoid) X(erf) X(erfinv) X(floor) X(ceil) \
  X(round) X(isnan) X(isinf) X(isfinite) X(logical_not) X(bitwise_invert)

#define KILN_BINARY_OPS(X)                                                                       \
  X(add) X(subtract) X(multiply) X(divide) X(floor_divide) X(remainder) X(power) X(maximum)      \
  X(minimum) X(arctan2) X(logaddexp) X(equal) X(not_equal) X(less) X(less_equal) X(greater)      \
  X(greater_equal) X(logical_and) X(logical_or) X(logical_xor) X(bitwise_and) X(bitwise_or)      \
  X(bitwise_xor) X(left_shift) X(right_shift)

enum class UnaryOp {
#define KILN_X(n) n,
  KILN_UNARY_OPS(KILN_X)
#undef KILN_X
};

enum class BinaryOp {
#define KILN_X(n) n,
  KILN_BINARY_OPS(KILN_X)
#undef KILN_X
};

const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);

class Unary : public Primitive {
 public:
  explicit Unary(UnaryOp op) : op(op) {}
  const char* name() const override { return op_name(op); }
  UnaryOp op;
};

class Binary : public Primitive {
 public:
  explicit Binary(BinaryOp op) : op(op) {}
  const char* name() const override { return op_name(op); }
  BinaryOp op;
};

// where(cond, x, y): inputs already broadcast to the output shape; cond is bool.
class Select : public Primitive {
 public:
  const char* name() const override { return "where"; }
};

// Value conversion to the output's dtype.
class AsType : public Primitive {
 public:
  const char* name() const override { return "astype"; }
};

// A row-contiguous copy of the input (same dtype).
class Copy : public Primitive {
 public:
  const char* name() const override { return "copy"; }
};

}  // namespace kiln
