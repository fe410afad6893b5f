// Shape and layout operations (kiln/ops_shape.h); views wherever the layout allows.
#include "common.h"

namespace kiln_py {

using kiln::array;

void init_ops_shape(nb::module_& m) {
  m.def(
      "reshape", [](const ArrayLike& a, const ShapeArg& shape, StreamOrDevice s) {
        return kiln::reshape(to_array(a), to_shape(shape), s);
      },
      "a"_a, "shape"_a, nb::kw_only(), "stream"_a = nb::none(), "The values in a new shape (one -1 is inferred).");
  m.def(
      "flatten", [](const ArrayLike& a, int start_axis, int end_axis, StreamOrDevice s) {
        return kiln::flatten(to_array(a), start_axis, end_axis, s);
      },
      "a"_a, "start_axis"_a = 0, "end_axis"_a = -1, nb::kw_only(), "stream"_a = nb::none(),
      "Merges the axes start_axis..end_axis into one.");
  m.def(
      "transpose", [](const ArrayLike& a, std::optional<std::vector<int>> axes, StreamOrDevice s) {
        return axes ? kiln::transpose(to_array(a), *axes, s) : kiln::transpose(to_array(a), s);
      },
      "a"_a, "axes"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Permutes the axes (reverses them when axes is None).");
  m.def(
      "swapaxes", [](const ArrayLike& a, int axis1, int axis2, StreamOrDevice s) {
        return kiln::swapaxes(to_array(a), axis1, axis2, s);
      },
      "a"_a, "axis1"_a, "axis2"_a, nb::kw_only(), "stream"_a = nb::none(), "Exchanges two axes.");
  m.def(
      "moveaxis", [](const ArrayLike& a, int source, int destination, StreamOrDevice s) {
        return kiln::moveaxis(to_array(a), source, destination, s);
      },
      "a"_a, "source"_a, "destination"_a, nb::kw_only(), "stream"_a = nb::none(),
      "Moves one axis to a new position.");
  m.def(
      "broadcast_to", [](const ArrayLike& a, const ShapeArg& shape, StreamOrDevice s) {
        return kiln::broadcast_to(to_array(a), to_shape(shape), s);
      },
      "a"_a, "shape"_a, nb::kw_only(), "stream"_a = nb::none(), "A broadcast view of a in shape.");
  m.def(
      "broadcast_arrays", [](nb::args arrays, StreamOrDevice s) {
        std::vector<array> xs;
        for (nb::handle h : arrays) xs.push_back(to_array(h));
        return kiln::broadcast_arrays(xs, s);
      },
      "arrays"_a, "stream"_a = nb::none(), "The arrays broadcast to their common shape.");
  m.def("broadcast_shapes", [](const kiln::Shape& a, const kiln::Shape& b) {
    auto r = kiln::broadcast_shapes(a, b);
    nb::list out;
    for (auto d : r) out.append(d);
    return nb::tuple(out);
  }, "a"_a, "b"_a, "The broadcast shape of two shapes.");
  m.def(
      "expand_dims", [](const ArrayLike& a, const AxisArg& axis, StreamOrDevice s) {
        return kiln::expand_dims(to_array(a), to_axes(axis), s);
      },
      "a"_a, "axis"_a, nb::kw_only(), "stream"_a = nb::none(), "Inserts axes of length 1.");
  m.def(
      "squeeze", [](const ArrayLike& a, std::optional<AxisArg> axis, StreamOrDevice s) {
        return axis ? kiln::squeeze(to_array(a), to_axes(*axis), s) : kiln::squeeze(to_array(a), s);
      },
      "a"_a, "axis"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Removes axes of length 1 (all of them when axis is None).");
  m.def(
      "slice",
      [](const ArrayLike& a, kiln::Shape start, kiln::Shape stop, std::optional<kiln::Shape> step, StreamOrDevice s) {
        return kiln::slice(to_array(a), std::move(start), std::move(stop), step.value_or(kiln::Shape{}), s);
      },
      "a"_a, "start"_a, "stop"_a, "step"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "a[start:stop:step] per axis, with Python's rules for negative and out-of-range bounds.");
  m.def(
      "as_strided",
      [](const ArrayLike& a, kiln::Shape shape, kiln::Strides strides, int64_t offset, StreamOrDevice s) {
        return kiln::as_strided(to_array(a), std::move(shape), std::move(strides), offset, s);
      },
      "a"_a, "shape"_a, "strides"_a, "offset"_a = 0, nb::kw_only(), "stream"_a = nb::none(),
      "A view with explicit element strides and offset.");
}

}  // namespace kiln_py
