// Convolutions and pooling, channels-last (kiln/ops_conv.h). Per-axis parameters take an int
// (the same for every spatial axis) or one value per axis.
#include <nanobind/stl/array.h>

#include "common.h"

namespace kiln_py {

namespace {

using IntOrPair = std::variant<int, std::pair<int, int>>;
using IntOr3 = std::variant<int, std::array<int, 3>>;
using IntOrList = std::variant<int, std::vector<int>>;

std::pair<int, int> pair_of(const IntOrPair& v) {
  if (auto* n = std::get_if<int>(&v)) return {*n, *n};
  return std::get<1>(v);
}

std::array<int, 3> triple_of(const IntOr3& v) {
  if (auto* n = std::get_if<int>(&v)) return {*n, *n, *n};
  return std::get<1>(v);
}

// An int for every spatial axis of a (N, *spatial, C) input, or the list given.
std::vector<int> per_axis(const std::optional<IntOrList>& v, const kiln::array& input) {
  if (!v) return {};
  if (auto* n = std::get_if<int>(&*v)) return std::vector<int>(std::max(input.ndim() - 2, 0), *n);
  return std::get<1>(*v);
}

}  // namespace

void init_ops_conv(nb::module_& m) {
  m.def(
      "conv_general",
      [](const ArrayLike& input, const ArrayLike& weight, std::optional<IntOrList> stride,
         std::optional<IntOrList> padding_lo, std::optional<IntOrList> padding_hi,
         std::optional<IntOrList> kernel_dilation, std::optional<IntOrList> input_dilation, int groups, bool flip,
         StreamOrDevice s) {
        kiln::array x = to_array(input);
        return kiln::conv_general(x, to_array(weight), per_axis(stride, x), per_axis(padding_lo, x),
                                  per_axis(padding_hi, x), per_axis(kernel_dilation, x), per_axis(input_dilation, x),
                                  groups, flip, s);
      },
      "input"_a, "weight"_a, "stride"_a = nb::none(), "padding_lo"_a = nb::none(), "padding_hi"_a = nb::none(),
      "kernel_dilation"_a = nb::none(), "input_dilation"_a = nb::none(), "groups"_a = 1, "flip"_a = false,
      nb::kw_only(), "stream"_a = nb::none(),
      "The general convolution of (N, *spatial, C_in) by (C_out, *kernel, C_in / groups): strides, padding "
      "before and after (negative crops), kernel and input dilation, groups, and flip for true convolution.");
  m.def(
      "conv1d",
      [](const ArrayLike& input, const ArrayLike& weight, int stride, int padding, int dilation, int groups,
         StreamOrDevice s) {
        return kiln::conv1d(to_array(input), to_array(weight), stride, padding, dilation, groups, s);
      },
      "input"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1, nb::kw_only(),
      "stream"_a = nb::none(),
      "PyTorch's conv1d, channels-last: input (N, L, C_in), weight (C_out, k, C_in / groups).");
  m.def(
      "conv2d",
      [](const ArrayLike& input, const ArrayLike& weight, const IntOrPair& stride, const IntOrPair& padding,
         const IntOrPair& dilation, int groups, StreamOrDevice s) {
        return kiln::conv2d(to_array(input), to_array(weight), pair_of(stride), pair_of(padding), pair_of(dilation),
                            groups, s);
      },
      "input"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1, nb::kw_only(),
      "stream"_a = nb::none(),
      "PyTorch's conv2d, channels-last: input (N, H, W, C_in), weight (C_out, kh, kw, C_in / groups).");
  m.def(
      "conv3d",
      [](const ArrayLike& input, const ArrayLike& weight, const IntOr3& stride, const IntOr3& padding,
         const IntOr3& dilation, int groups, StreamOrDevice s) {
        return kiln::conv3d(to_array(input), to_array(weight), triple_of(stride), triple_of(padding),
                            triple_of(dilation), groups, s);
      },
      "input"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1, nb::kw_only(),
      "stream"_a = nb::none(), "PyTorch's conv3d, channels-last: input (N, D, H, W, C_in).");
  m.def(
      "conv_transpose1d",
      [](const ArrayLike& input, const ArrayLike& weight, int stride, int padding, int dilation, int output_padding,
         int groups, StreamOrDevice s) {
        return kiln::conv_transpose1d(to_array(input), to_array(weight), stride, padding, dilation, output_padding,
                                      groups, s);
      },
      "input"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "output_padding"_a = 0,
      "groups"_a = 1, nb::kw_only(), "stream"_a = nb::none(),
      "PyTorch's conv_transpose1d, channels-last; the weight is (C_out, k, C_in / groups).");
  m.def(
      "conv_transpose2d",
      [](const ArrayLike& input, const ArrayLike& weight, const IntOrPair& stride, const IntOrPair& padding,
         const IntOrPair& dilation, const IntOrPair& output_padding, int groups, StreamOrDevice s) {
        return kiln::conv_transpose2d(to_array(input), to_array(weight), pair_of(stride), pair_of(padding),
                                      pair_of(dilation), pair_of(output_padding), groups, s);
      },
      "input"_a, "weight"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "output_padding"_a = 0,
      "groups"_a = 1, nb::kw_only(), "stream"_a = nb::none(),
      "PyTorch's conv_transpose2d, channels-last; the weight is (C_out, kh, kw, C_in / groups).");
  m.def(
      "max_pool",
      [](const ArrayLike& input, const IntOrList& kernel, std::optional<IntOrList> stride,
         std::optional<IntOrList> padding, std::optional<IntOrList> dilation, StreamOrDevice s) {
        kiln::array x = to_array(input);
        return kiln::max_pool(x, per_axis(kernel, x), per_axis(stride, x), per_axis(padding, x),
                              per_axis(dilation, x), s);
      },
      "input"_a, "kernel"_a, "stride"_a = nb::none(), "padding"_a = nb::none(), "dilation"_a = nb::none(),
      nb::kw_only(), "stream"_a = nb::none(),
      "Max pooling over the spatial axes of (N, *spatial, C), padding with -inf; stride defaults to kernel.");
  m.def(
      "avg_pool",
      [](const ArrayLike& input, const IntOrList& kernel, std::optional<IntOrList> stride,
         std::optional<IntOrList> padding, bool count_include_pad, StreamOrDevice s) {
        kiln::array x = to_array(input);
        return kiln::avg_pool(x, per_axis(kernel, x), per_axis(stride, x), per_axis(padding, x), count_include_pad, s);
      },
      "input"_a, "kernel"_a, "stride"_a = nb::none(), "padding"_a = nb::none(), "count_include_pad"_a = true,
      nb::kw_only(), "stream"_a = nb::none(),
      "Average pooling over the spatial axes of (N, *spatial, C); stride defaults to kernel.");
  m.def(
      "adaptive_avg_pool",
      [](const ArrayLike& input, const ShapeArg& output, StreamOrDevice s) {
        kiln::array x = to_array(input);
        kiln::Shape out = to_shape(output);
        if (std::holds_alternative<int64_t>(output)) out.assign(std::max(x.ndim() - 2, 0), out[0]);
        return kiln::adaptive_avg_pool(x, out, s);
      },
      "input"_a, "output"_a, nb::kw_only(), "stream"_a = nb::none(),
      "Average pooling of (N, *spatial, C) to the output sizes, as PyTorch's adaptive_avg_pool.");
}

}  // namespace kiln_py
