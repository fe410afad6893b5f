// Joining, splitting, padding, tiling and integer-array indexing (kiln/ops_index.h).
#include <string>

#include "common.h"

namespace kiln_py {

using kiln::array;

namespace {

using Widths = std::variant<int64_t, std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>>;

kiln::PadMode pad_mode(const std::string& mode) {
  if (mode == "constant") return kiln::PadMode::constant;
  if (mode == "edge") return kiln::PadMode::edge;
  if (mode == "reflect") return kiln::PadMode::reflect;
  kiln::fail<kiln::ValueError>("[pad] mode must be 'constant', 'edge' or 'reflect', not '", mode, "'");
}

kiln::ScatterMode scatter_mode(const std::string& mode) {
  if (mode == "set") return kiln::ScatterMode::set;
  if (mode == "add") return kiln::ScatterMode::add;
  if (mode == "max") return kiln::ScatterMode::max;
  if (mode == "min") return kiln::ScatterMode::min;
  if (mode == "prod") return kiln::ScatterMode::prod;
  kiln::fail<kiln::ValueError>("[scatter] mode must be 'set', 'add', 'max', 'min' or 'prod', not '", mode, "'");
}

}  // namespace

void init_ops_index(nb::module_& m) {
  m.def(
      "concatenate", [](const std::vector<ArrayLike>& arrays, int axis, StreamOrDevice s) {
        return kiln::concatenate(to_array_list(arrays), axis, s);
      },
      "arrays"_a, "axis"_a = 0, nb::kw_only(), "stream"_a = nb::none(), "Joins arrays along an existing axis.");
  m.def(
      "stack", [](const std::vector<ArrayLike>& arrays, int axis, StreamOrDevice s) {
        return kiln::stack(to_array_list(arrays), axis, s);
      },
      "arrays"_a, "axis"_a = 0, nb::kw_only(), "stream"_a = nb::none(), "Joins arrays of one shape along a new axis.");
  m.def(
      "split",
      [](const ArrayLike& a, std::variant<int, std::vector<int64_t>> indices_or_sections, int axis, StreamOrDevice s) {
        if (auto* n = std::get_if<int>(&indices_or_sections)) return kiln::split(to_array(a), *n, axis, s);
        return kiln::split(to_array(a), std::get<1>(indices_or_sections), axis, s);
      },
      "a"_a, "indices_or_sections"_a, "axis"_a = 0, nb::kw_only(), "stream"_a = nb::none(),
      "Views of equal parts along axis (an int), or a[:i0], a[i0:i1], ..., a[ik:] (a list).");
  m.def(
      "pad",
      [](const ArrayLike& a, const Widths& widths, const std::string& mode, const ArrayLike& value, StreamOrDevice s) {
        std::vector<std::pair<int64_t, int64_t>> w;
        if (auto* n = std::get_if<int64_t>(&widths)) {
          w = {{*n, *n}};
        } else if (auto* p = std::get_if<std::pair<int64_t, int64_t>>(&widths)) {
          w = {*p};
        } else {
          w = std::get<2>(widths);
        }
        return kiln::pad(to_array(a), w, pad_mode(mode), to_array(value), s);
      },
      "a"_a, "widths"_a, "mode"_a = "constant", "value"_a = 0, nb::kw_only(), "stream"_a = nb::none(),
      "Pads by (before, after) per axis (one int or pair applies to every axis); mode is 'constant' (with "
      "value), 'edge' or 'reflect'.");
  m.def(
      "tile", [](const ArrayLike& a, const ShapeArg& reps, StreamOrDevice s) {
        return kiln::tile(to_array(a), to_shape(reps), s);
      },
      "a"_a, "reps"_a, nb::kw_only(), "stream"_a = nb::none(), "Repeats the whole array reps[i] times along axis i.");
  m.def(
      "repeat", [](const ArrayLike& a, int64_t repeats, std::optional<int> axis, StreamOrDevice s) {
        return kiln::repeat(to_array(a), repeats, axis, s);
      },
      "a"_a, "repeats"_a, "axis"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Repeats each element along axis (of the flattened array for None).");
  m.def(
      "roll",
      [](const ArrayLike& a, const ShapeArg& shift, std::optional<AxisArg> axis, StreamOrDevice s) {
        bool scalar_shift = std::holds_alternative<int64_t>(shift);
        if (!axis) {
          if (!scalar_shift) kiln::fail<kiln::ValueError>("[roll] a list of shifts needs a list of axes");
          return kiln::roll(to_array(a), std::get<int64_t>(shift), std::nullopt, s);
        }
        if (scalar_shift && std::holds_alternative<int>(*axis)) {
          return kiln::roll(to_array(a), std::get<int64_t>(shift), std::get<int>(*axis), s);
        }
        return kiln::roll(to_array(a), to_shape(shift), to_axes(*axis), s);
      },
      "a"_a, "shift"_a, "axis"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Rotates elements by shift along axis (of the flattened array for None); lists roll several axes.");
  m.def(
      "flip", [](const ArrayLike& a, std::optional<AxisArg> axes, StreamOrDevice s) {
        std::optional<std::vector<int>> ax;
        if (axes) ax = to_axes(*axes);
        return kiln::flip(to_array(a), ax, s);
      },
      "a"_a, "axes"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Reverses the order of elements along the axes (all for None); a view.");
  m.def(
      "tril", [](const ArrayLike& a, int k, StreamOrDevice s) { return kiln::tril(to_array(a), k, s); }, "a"_a,
      "k"_a = 0, nb::kw_only(), "stream"_a = nb::none(), "Zeroes the elements above diagonal k.");
  m.def(
      "triu", [](const ArrayLike& a, int k, StreamOrDevice s) { return kiln::triu(to_array(a), k, s); }, "a"_a,
      "k"_a = 0, nb::kw_only(), "stream"_a = nb::none(), "Zeroes the elements below diagonal k.");
  m.def(
      "diagonal", [](const ArrayLike& a, int offset, int axis1, int axis2, StreamOrDevice s) {
        return kiln::diagonal(to_array(a), offset, axis1, axis2, s);
      },
      "a"_a, "offset"_a = 0, "axis1"_a = 0, "axis2"_a = 1, nb::kw_only(), "stream"_a = nb::none(),
      "The diagonal of the axis1 x axis2 planes as a new last axis; a view.");
  m.def(
      "slice_update",
      [](const ArrayLike& src, const ArrayLike& update, kiln::Shape start, kiln::Shape stop,
         std::optional<kiln::Shape> step, StreamOrDevice s) {
        array a = to_array(src);
        return kiln::slice_update(a, to_array_like(update.obj, a), std::move(start), std::move(stop),
                                  step.value_or(kiln::Shape{}), s);
      },
      "src"_a, "update"_a, "start"_a, "stop"_a, "step"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "A copy of src with src[start:stop:step] replaced by update (broadcast, cast to src's dtype).");
  m.def(
      "take", [](const ArrayLike& a, const ArrayLike& indices, std::optional<int> axis, StreamOrDevice s) {
        return kiln::take(to_array(a), to_array(indices), axis, s);
      },
      "a"_a, "indices"_a, "axis"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Elements at integer indices along axis (of the flattened array for None).");
  m.def(
      "take_along_axis", [](const ArrayLike& a, const ArrayLike& indices, int axis, StreamOrDevice s) {
        return kiln::take_along_axis(to_array(a), to_array(indices), axis, s);
      },
      "a"_a, "indices"_a, "axis"_a, nb::kw_only(), "stream"_a = nb::none(),
      "out[..., i, ...] = a[..., indices[..., i, ...], ...] along axis.");
  m.def(
      "put_along_axis",
      [](const ArrayLike& a, const ArrayLike& indices, const ArrayLike& values, int axis, StreamOrDevice s) {
        array x = to_array(a);
        return kiln::put_along_axis(x, to_array(indices), to_array_like(values.obj, x), axis, s);
      },
      "a"_a, "indices"_a, "values"_a, "axis"_a, nb::kw_only(), "stream"_a = nb::none(),
      "A copy of a with a[..., indices[..., i, ...], ...] = values[..., i, ...] along axis.");
  m.def(
      "gather",
      [](const ArrayLike& a, const std::vector<ArrayLike>& indices, const std::vector<int>& axes,
         kiln::Shape slice_sizes, StreamOrDevice s) {
        return kiln::gather(to_array(a), to_array_list(indices), axes, std::move(slice_sizes), s);
      },
      "a"_a, "indices"_a, "axes"_a, "slice_sizes"_a, nb::kw_only(), "stream"_a = nb::none(),
      "Blocks of size slice_sizes starting at indices[k] on axis axes[k] (MLX's gather).");
  m.def(
      "scatter",
      [](const ArrayLike& a, const std::vector<ArrayLike>& indices, const ArrayLike& updates,
         const std::vector<int>& axes, const std::string& mode, StreamOrDevice s) {
        array x = to_array(a);
        return kiln::scatter(x, to_array_list(indices), to_array_like(updates.obj, x), axes, scatter_mode(mode), s);
      },
      "a"_a, "indices"_a, "updates"_a, "axes"_a, "mode"_a = "set", nb::kw_only(), "stream"_a = nb::none(),
      "A copy of a with the blocks of updates combined in at indices (mode 'set', 'add', 'max', 'min' or 'prod').");
}

}  // namespace kiln_py
