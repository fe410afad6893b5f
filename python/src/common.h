// Shared pieces of the Python bindings: the argument types that accept Python values (anything
// array-like, shapes, axes, streams), their conversions to kiln types, and the per-topic
// registration functions that module.cpp calls.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/kiln.h"

namespace nb = nanobind;
using namespace nb::literals;

// Anything that converts to an array: an array, a Python bool/int/float/complex, a nested list
// or tuple of those, or an object with the buffer protocol, DLPack or __array__ (NumPy arrays
// and scalars). Conversion happens in the function body (to_array), where the other operand is
// known, so that Python scalars can be weakly typed.
struct ArrayLike {
  nb::object obj;
};

// A shape: an int or a sequence of ints.
using ShapeArg = std::variant<int64_t, std::vector<int64_t>>;
// One axis or several.
using AxisArg = std::variant<int, std::vector<int>>;
using kiln::StreamOrDevice;  // None, a Device or a Stream

namespace nanobind::detail {
bool is_array_like(handle h);

template <>
struct type_caster<ArrayLike> {
  NB_TYPE_CASTER(ArrayLike, const_name("ArrayLike"))
  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    if (!is_array_like(src)) return false;
    value.obj = borrow(src);
    return true;
  }
  static handle from_cpp(const ArrayLike& v, rv_policy, cleanup_list*) noexcept { return v.obj.inc_ref(); }
};
}  // namespace nanobind::detail

namespace kiln_py {

// A Python value as an array; `dtype` converts it. Python scalars and lists take NumPy's
// default types (bool, int64, float64, complex64 as kiln has no complex128).
kiln::array to_array(nb::handle obj, std::optional<kiln::Dtype> dtype = {});
inline kiln::array to_array(const ArrayLike& x) { return to_array(x.obj); }
inline std::optional<kiln::array> to_array(const std::optional<ArrayLike>& x) {
  if (!x) return std::nullopt;
  return to_array(x->obj);
}
// A Python scalar beside an array takes the array's dtype where it fits (weak typing, as NumPy 2
// and MLX): an int with an integer or float array, a float with a float array. A float with an
// integer or bool array gives float32, an int with a bool array int32. Other values convert as
// to_array does.
kiln::array to_array_like(nb::handle obj, const kiln::array& like);
// The two operands of a binary operation, a Python scalar on either side weakly typed.
std::pair<kiln::array, kiln::array> to_arrays(nb::handle a, nb::handle b);
inline std::pair<kiln::array, kiln::array> to_arrays(const ArrayLike& a, const ArrayLike& b) {
  return to_arrays(a.obj, b.obj);
}
std::vector<kiln::array> to_array_list(const std::vector<ArrayLike>& xs);

kiln::Shape to_shape(const ShapeArg& s);
std::vector<int> to_axes(const AxisArg& a);

// The value of a one-element array as a Python bool/int/float/complex, and the nested lists of
// an array's values.
nb::object item(kiln::array a);
nb::object tolist(kiln::array a);

// Registration, one function per topic (src/<topic>.cpp).
void init_dtype(nb::module_& m);
void init_device(nb::module_& m);
void init_array(nb::module_& m);
void init_indexing(nb::class_<kiln::array>& cls);
void init_interop(nb::module_& m, nb::class_<kiln::array>& cls);
void init_ops_elementwise(nb::module_& m);
void init_ops_reduce(nb::module_& m);
void init_ops_shape(nb::module_& m);
void init_ops_creation(nb::module_& m);
void init_ops_linalg(nb::module_& m);
void init_ops_conv(nb::module_& m);
void init_ops_index(nb::module_& m);
void init_ops_sort(nb::module_& m);
void init_random(nb::module_& m);
void init_fast(nb::module_& m);
void init_io(nb::module_& m);
void init_text(nb::module_& m);
void init_vision(nb::module_& m);

}  // namespace kiln_py
