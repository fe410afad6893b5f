// Sorting along an axis (kiln/ops_sort.h). axis=None sorts the flattened array.
#include "common.h"

namespace kiln_py {

void init_ops_sort(nb::module_& m) {
  m.def(
      "sort",
      [](const ArrayLike& a, std::optional<int> axis, StreamOrDevice s) { return kiln::sort(to_array(a), axis, s); },
      "a"_a, "axis"_a.none() = -1, nb::kw_only(), "stream"_a = nb::none(),
      "The values sorted ascending along axis (NaNs last); None sorts the flattened array.");
  m.def(
      "argsort",
      [](const ArrayLike& a, std::optional<int> axis, StreamOrDevice s) { return kiln::argsort(to_array(a), axis, s); },
      "a"_a, "axis"_a.none() = -1, nb::kw_only(), "stream"_a = nb::none(),
      "uint32 indices that sort a along axis (stable); None sorts the flattened array.");
  m.def(
      "partition", [](const ArrayLike& a, int64_t kth, int axis, StreamOrDevice s) {
        return kiln::partition(to_array(a), kth, axis, s);
      },
      "a"_a, "kth"_a, "axis"_a = -1, nb::kw_only(), "stream"_a = nb::none(),
      "Puts the kth smallest element at position kth, smaller ones before it and larger ones after.");
  m.def(
      "argpartition", [](const ArrayLike& a, int64_t kth, int axis, StreamOrDevice s) {
        return kiln::argpartition(to_array(a), kth, axis, s);
      },
      "a"_a, "kth"_a, "axis"_a = -1, nb::kw_only(), "stream"_a = nb::none(),
      "uint32 indices that partition a as partition() would.");
  m.def(
      "topk", [](const ArrayLike& a, int k, int axis, StreamOrDevice s) { return kiln::topk(to_array(a), k, axis, s); },
      "a"_a, "k"_a, "axis"_a = -1, nb::kw_only(), "stream"_a = nb::none(),
      "The k largest values along axis, in descending order.");
}

}  // namespace kiln_py
