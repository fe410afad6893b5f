// Reductions, arg-reductions, softmax and scans (kiln/ops_reduce.h). `axis` is None (every axis),
// an int or a list of ints.
#include "common.h"

namespace kiln_py {

using kiln::array;

namespace {

// The flattened array and axis 0, for NumPy's axis=None in scans and arg-reductions.
array flat(const array& a) { return kiln::reshape(a, {-1}); }

}  // namespace

void init_ops_reduce(nb::module_& m) {
#define KILN_PY_REDUCTION(name, doc)                                                                \
  m.def(                                                                                            \
      #name,                                                                                        \
      [](const ArrayLike& a, std::optional<AxisArg> axis, bool keepdims, StreamOrDevice s) {        \
        array x = to_array(a);                                                                      \
        if (!axis) return kiln::name(x, keepdims, s);                                               \
        return kiln::name(x, to_axes(*axis), keepdims, s);                                          \
      },                                                                                            \
      "a"_a, "axis"_a = nb::none(), "keepdims"_a = false, nb::kw_only(), "stream"_a = nb::none(), doc);
  KILN_PY_REDUCTION(sum, "The sum over the axes (small integers widen to 32 bits).")
  KILN_PY_REDUCTION(prod, "The product over the axes.")
  KILN_PY_REDUCTION(max, "The maximum over the axes (NaN propagates).")
  KILN_PY_REDUCTION(min, "The minimum over the axes (NaN propagates).")
  KILN_PY_REDUCTION(all, "Whether every element over the axes is true.")
  KILN_PY_REDUCTION(any, "Whether some element over the axes is true.")
  KILN_PY_REDUCTION(mean, "The mean over the axes (integers give float32).")
  KILN_PY_REDUCTION(logsumexp, "log(sum(exp(a))) over the axes, without overflow.")
#undef KILN_PY_REDUCTION

#define KILN_PY_MOMENT(name, doc)                                                                      \
  m.def(                                                                                               \
      #name,                                                                                           \
      [](const ArrayLike& a, std::optional<AxisArg> axis, bool keepdims, int ddof, StreamOrDevice s) { \
        array x = to_array(a);                                                                         \
        if (!axis) return kiln::name(x, keepdims, ddof, s);                                            \
        return kiln::name(x, to_axes(*axis), keepdims, ddof, s);                                       \
      },                                                                                               \
      "a"_a, "axis"_a = nb::none(), "keepdims"_a = false, "ddof"_a = 0, nb::kw_only(),                 \
      "stream"_a = nb::none(), doc);
  KILN_PY_MOMENT(var, "The variance over the axes, dividing by n - ddof.")
  KILN_PY_MOMENT(std, "The standard deviation over the axes, dividing by n - ddof.")
#undef KILN_PY_MOMENT

#define KILN_PY_ARG_REDUCTION(name, doc)                                                   \
  m.def(                                                                                   \
      #name,                                                                               \
      [](const ArrayLike& a, std::optional<int> axis, bool keepdims, StreamOrDevice s) {   \
        array x = to_array(a);                                                             \
        if (!axis) return kiln::name(x, keepdims, s);                                      \
        return kiln::name(x, *axis, keepdims, s);                                          \
      },                                                                                   \
      "a"_a, "axis"_a = nb::none(), "keepdims"_a = false, nb::kw_only(), "stream"_a = nb::none(), doc);
  KILN_PY_ARG_REDUCTION(argmax, "uint32 index of the first maximum along axis (of the flattened array for None).")
  KILN_PY_ARG_REDUCTION(argmin, "uint32 index of the first minimum along axis (of the flattened array for None).")
#undef KILN_PY_ARG_REDUCTION

#define KILN_PY_SOFTMAX(name, doc)                                                    \
  m.def(                                                                              \
      #name,                                                                          \
      [](const ArrayLike& a, std::optional<AxisArg> axis, StreamOrDevice s) {         \
        array x = to_array(a);                                                        \
        if (!axis) return kiln::name(x, s);                                           \
        return kiln::name(x, to_axes(*axis), s);                                      \
      },                                                                              \
      "a"_a, "axis"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(), doc);
  KILN_PY_SOFTMAX(softmax, "exp(a) / sum(exp(a)) over the axes (None: the last axis), computed stably.")
  KILN_PY_SOFTMAX(log_softmax, "The logarithm of softmax over the axes (None: the last axis).")
#undef KILN_PY_SOFTMAX

#define KILN_PY_SCAN(name, doc)                                                                            \
  m.def(                                                                                                   \
      #name,                                                                                               \
      [](const ArrayLike& a, std::optional<int> axis, bool reverse, bool inclusive, StreamOrDevice s) {    \
        array x = to_array(a);                                                                             \
        if (!axis) return kiln::name(flat(x), 0, reverse, inclusive, s);                                   \
        return kiln::name(x, *axis, reverse, inclusive, s);                                                \
      },                                                                                                   \
      "a"_a, "axis"_a = nb::none(), "reverse"_a = false, "inclusive"_a = true, nb::kw_only(),              \
      "stream"_a = nb::none(), doc);
  KILN_PY_SCAN(cumsum, "Running sum along axis (of the flattened array for None).")
  KILN_PY_SCAN(cumprod, "Running product along axis (of the flattened array for None).")
  KILN_PY_SCAN(cummax, "Running maximum along axis (of the flattened array for None).")
  KILN_PY_SCAN(cummin, "Running minimum along axis (of the flattened array for None).")
#undef KILN_PY_SCAN
}

}  // namespace kiln_py
