// Creation of arrays (kiln/ops_creation.h).
#include "common.h"

namespace kiln_py {

using kiln::array;
using kiln::Dtype;

namespace {

using Number = std::variant<int64_t, double>;

double as_double(const Number& n) { return std::visit([](auto v) { return static_cast<double>(v); }, n); }
bool is_float(const std::optional<Number>& n) { return n && std::holds_alternative<double>(*n); }

}  // namespace

void init_ops_creation(nb::module_& m) {
  m.def(
      "zeros",
      [](const ShapeArg& shape, Dtype dtype, StreamOrDevice s) { return kiln::zeros(to_shape(shape), dtype, s); },
      "shape"_a, "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(), "An array of zeros.");
  m.def(
      "ones",
      [](const ShapeArg& shape, Dtype dtype, StreamOrDevice s) { return kiln::ones(to_shape(shape), dtype, s); },
      "shape"_a, "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(), "An array of ones.");
  m.def(
      "full",
      [](const ShapeArg& shape, const ArrayLike& value, std::optional<Dtype> dtype, StreamOrDevice s) {
        array v = to_array(value);
        return dtype ? kiln::full(to_shape(shape), v, *dtype, s) : kiln::full(to_shape(shape), v, s);
      },
      "shape"_a, "value"_a, "dtype"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "An array of shape filled with value (broadcast); the dtype defaults to value's.");
  m.def(
      "zeros_like", [](const ArrayLike& a, StreamOrDevice s) { return kiln::zeros_like(to_array(a), s); }, "a"_a,
      nb::kw_only(), "stream"_a = nb::none(), "Zeros of a's shape and dtype.");
  m.def(
      "ones_like", [](const ArrayLike& a, StreamOrDevice s) { return kiln::ones_like(to_array(a), s); }, "a"_a,
      nb::kw_only(), "stream"_a = nb::none(), "Ones of a's shape and dtype.");
  m.def(
      "full_like",
      [](const ArrayLike& a, double value, StreamOrDevice s) { return kiln::full_like(to_array(a), value, s); },
      "a"_a, "value"_a, nb::kw_only(), "stream"_a = nb::none(), "value in a's shape and dtype.");
  m.def(
      "arange",
      [](Number start, std::optional<Number> stop, std::optional<Number> step, std::optional<Dtype> dtype,
         StreamOrDevice s) {
        // A float anywhere gives float32 unless a dtype is given.
        if (!dtype && (is_float(start) || is_float(stop) || is_float(step))) dtype = kiln::float32;
        if (!stop) return kiln::arange(0.0, as_double(start), step ? as_double(*step) : 1.0, dtype, s);
        return kiln::arange(as_double(start), as_double(*stop), step ? as_double(*step) : 1.0, dtype, s);
      },
      "start"_a, "stop"_a = nb::none(), "step"_a = nb::none(), "dtype"_a = nb::none(), nb::kw_only(),
      "stream"_a = nb::none(),
      "Values in [start, stop) in steps of step; arange(n) counts 0..n-1. int32 for integer arguments, else "
      "float32.");
  m.def(
      "linspace", [](double start, double stop, int64_t num, Dtype dtype, StreamOrDevice s) {
        return kiln::linspace(start, stop, num, dtype, s);
      },
      "start"_a, "stop"_a, "num"_a = 50, "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(),
      "num evenly spaced values from start to stop inclusive.");
  m.def(
      "eye", [](int64_t n, std::optional<int64_t> m_, int k, Dtype dtype, StreamOrDevice s) {
        return kiln::eye(n, m_, k, dtype, s);
      },
      "n"_a, "m"_a = nb::none(), "k"_a = 0, "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(),
      "An n x m array with ones on diagonal k.");
  m.def(
      "identity", [](int64_t n, Dtype dtype, StreamOrDevice s) { return kiln::identity(n, dtype, s); }, "n"_a,
      "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(), "The n x n identity matrix.");
  m.def(
      "tri", [](int64_t n, std::optional<int64_t> m_, int k, Dtype dtype, StreamOrDevice s) {
        return kiln::tri(n, m_, k, dtype, s);
      },
      "n"_a, "m"_a = nb::none(), "k"_a = 0, "dtype"_a = kiln::float32, nb::kw_only(), "stream"_a = nb::none(),
      "An n x m array with ones at and below diagonal k.");
}

}  // namespace kiln_py
