// Elementwise operations (kiln/ops_elementwise.h).
#include "common.h"

namespace kiln_py {

using kiln::array;

void init_ops_elementwise(nb::module_& m) {
#define KILN_PY_UNARY(name, doc)                                                                  \
  m.def(                                                                                          \
      #name, [](const ArrayLike& a, StreamOrDevice s) { return kiln::name(to_array(a), s); }, "a"_a, \
      nb::kw_only(), "stream"_a = nb::none(), doc);
  KILN_PY_UNARY(abs, "Absolute value, elementwise.")
  KILN_PY_UNARY(negative, "-a, elementwise.")
  KILN_PY_UNARY(sign, "The sign (-1, 0 or 1), elementwise.")
  KILN_PY_UNARY(exp, "e**a, elementwise (integers give float32).")
  KILN_PY_UNARY(exp2, "2**a, elementwise.")
  KILN_PY_UNARY(log, "Natural logarithm, elementwise.")
  KILN_PY_UNARY(log2, "Base-2 logarithm, elementwise.")
  KILN_PY_UNARY(log10, "Base-10 logarithm, elementwise.")
  KILN_PY_UNARY(log1p, "log(1 + a), accurate near 0.")
  KILN_PY_UNARY(expm1, "exp(a) - 1, accurate near 0.")
  KILN_PY_UNARY(sqrt, "Square root, elementwise.")
  KILN_PY_UNARY(rsqrt, "1 / sqrt(a), elementwise.")
  KILN_PY_UNARY(square, "a * a, elementwise.")
  KILN_PY_UNARY(reciprocal, "1 / a, elementwise.")
  KILN_PY_UNARY(sin, "Sine, elementwise.")
  KILN_PY_UNARY(cos, "Cosine, elementwise.")
  KILN_PY_UNARY(tan, "Tangent, elementwise.")
  KILN_PY_UNARY(arcsin, "Inverse sine, elementwise.")
  KILN_PY_UNARY(arccos, "Inverse cosine, elementwise.")
  KILN_PY_UNARY(arctan, "Inverse tangent, elementwise.")
  KILN_PY_UNARY(sinh, "Hyperbolic sine, elementwise.")
  KILN_PY_UNARY(cosh, "Hyperbolic cosine, elementwise.")
  KILN_PY_UNARY(tanh, "Hyperbolic tangent, elementwise.")
  KILN_PY_UNARY(arcsinh, "Inverse hyperbolic sine, elementwise.")
  KILN_PY_UNARY(arccosh, "Inverse hyperbolic cosine, elementwise.")
  KILN_PY_UNARY(arctanh, "Inverse hyperbolic tangent, elementwise.")
  KILN_PY_UNARY(sigmoid, "1 / (1 + exp(-a)), elementwise.")
  KILN_PY_UNARY(erf, "The error function, elementwise.")
  KILN_PY_UNARY(erfinv, "The inverse error function, elementwise.")
  KILN_PY_UNARY(floor, "Rounds down, elementwise.")
  KILN_PY_UNARY(ceil, "Rounds up, elementwise.")
  KILN_PY_UNARY(round, "Rounds to the nearest integer (halves to even), elementwise.")
  KILN_PY_UNARY(isnan, "Whether each element is NaN.")
  KILN_PY_UNARY(isinf, "Whether each element is infinite.")
  KILN_PY_UNARY(isfinite, "Whether each element is finite.")
  KILN_PY_UNARY(logical_not, "not a, elementwise (bool result).")
  KILN_PY_UNARY(bitwise_invert, "~a, elementwise, for integers and bools.")
  KILN_PY_UNARY(contiguous, "A row-contiguous array with the same values (a itself when it is one).")
  KILN_PY_UNARY(copy, "A new row-contiguous array with the same values.")
#undef KILN_PY_UNARY

#define KILN_PY_BINARY(name, doc)                                          \
  m.def(                                                                   \
      #name,                                                               \
      [](const ArrayLike& a, const ArrayLike& b, StreamOrDevice s) {       \
        auto [x, y] = to_arrays(a, b);                                     \
        return kiln::name(x, y, s);                                        \
      },                                                                   \
      "a"_a, "b"_a, nb::kw_only(), "stream"_a = nb::none(), doc);
  KILN_PY_BINARY(add, "a + b, broadcasting, with NumPy's type promotion.")
  KILN_PY_BINARY(subtract, "a - b, broadcasting.")
  KILN_PY_BINARY(multiply, "a * b, broadcasting.")
  KILN_PY_BINARY(divide, "a / b, broadcasting (integers give float32).")
  KILN_PY_BINARY(floor_divide, "a // b, broadcasting.")
  KILN_PY_BINARY(remainder, "a % b with the sign of b, broadcasting.")
  KILN_PY_BINARY(power, "a ** b, broadcasting.")
  KILN_PY_BINARY(maximum, "The larger of a and b, elementwise (NaN propagates).")
  KILN_PY_BINARY(minimum, "The smaller of a and b, elementwise (NaN propagates).")
  KILN_PY_BINARY(arctan2, "The angle of the point (b, a), elementwise.")
  KILN_PY_BINARY(logaddexp, "log(exp(a) + exp(b)) without overflow.")
  KILN_PY_BINARY(equal, "a == b, elementwise.")
  KILN_PY_BINARY(not_equal, "a != b, elementwise.")
  KILN_PY_BINARY(less, "a < b, elementwise.")
  KILN_PY_BINARY(less_equal, "a <= b, elementwise.")
  KILN_PY_BINARY(greater, "a > b, elementwise.")
  KILN_PY_BINARY(greater_equal, "a >= b, elementwise.")
  KILN_PY_BINARY(logical_and, "a and b, elementwise (bool result).")
  KILN_PY_BINARY(logical_or, "a or b, elementwise (bool result).")
  KILN_PY_BINARY(logical_xor, "a xor b, elementwise (bool result).")
  KILN_PY_BINARY(bitwise_and, "a & b, elementwise, for integers and bools.")
  KILN_PY_BINARY(bitwise_or, "a | b, elementwise, for integers and bools.")
  KILN_PY_BINARY(bitwise_xor, "a ^ b, elementwise, for integers and bools.")
  KILN_PY_BINARY(left_shift, "a << b, elementwise.")
  KILN_PY_BINARY(right_shift, "a >> b, elementwise.")
#undef KILN_PY_BINARY

  m.def(
      "where",
      [](const ArrayLike& cond, const ArrayLike& x, const ArrayLike& y, StreamOrDevice s) {
        auto [a, b] = to_arrays(x, y);
        return kiln::where(to_array(cond), a, b, s);
      },
      "cond"_a, "x"_a, "y"_a, nb::kw_only(), "stream"_a = nb::none(),
      "Elements of x where cond is true, else of y (all three broadcast).");
  m.def(
      "clip",
      [](const ArrayLike& a, std::optional<ArrayLike> lo, std::optional<ArrayLike> hi, StreamOrDevice s) {
        array x = to_array(a);
        std::optional<array> l, h;
        if (lo) l = to_array_like(lo->obj, x);
        if (hi) h = to_array_like(hi->obj, x);
        return kiln::clip(x, l, h, s);
      },
      "a"_a, "lo"_a = nb::none(), "hi"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Limits the values to [lo, hi]; either bound may be None.");
  m.def(
      "astype",
      [](const ArrayLike& a, kiln::Dtype dtype, StreamOrDevice s) { return kiln::astype(to_array(a), dtype, s); },
      "a"_a, "dtype"_a, nb::kw_only(), "stream"_a = nb::none(), "The values converted to dtype.");
  m.def(
      "view", [](const ArrayLike& a, kiln::Dtype dtype, StreamOrDevice s) { return kiln::view(to_array(a), dtype, s); },
      "a"_a, "dtype"_a, nb::kw_only(), "stream"_a = nb::none(),
      "The bytes reinterpreted as another dtype (the last axis scales by the size ratio).");
}

}  // namespace kiln_py
