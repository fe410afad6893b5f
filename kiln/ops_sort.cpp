#include "kiln/ops_sort.h"

#include <limits>

#include "kiln/ops_shape.h"
#include "kiln/primitives_sort.h"

namespace kiln {

namespace {

void check_sortable(const array& a, const char* op) {
  if (is_complex(a.dtype())) fail<TypeError>("[", op, "] complex64 input is not supported");
}

// The array to sort and its normalized axis; an empty axis means the flattened array.
std::pair<array, int> sort_input(const array& a, std::optional<int> axis, const char* op, Stream st) {
  check_sortable(a, op);
  if (!axis) return {flatten(a, 0, -1, st), 0};
  return {a, normalize_axis(*axis, a.ndim(), op)};
}

// Indices are uint32, so an axis must have at most 2^32 elements.
void check_index_range(const array& a, int axis, const char* op) {
  if (a.shape(axis) > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()) + 1) {
    fail<ValueError>("[", op, "] axis ", axis, " has ", a.shape(axis), " elements; uint32 indices allow at most 2^32");
  }
}

int64_t normalize_kth(int64_t kth, const array& a, int axis, const char* op) {
  int64_t n = a.shape(axis);
  if (kth < -n || kth >= n) {
    fail<ValueError>("[", op, "] kth ", kth, " is out of range for axis ", axis, " of size ", n);
  }
  return kth < 0 ? kth + n : kth;
}

// The elements [start, start + len) along `axis`, reversed when `reverse` (read from the end).
array take_run(const array& a, int axis, int64_t start, int64_t len, bool reverse, Stream st) {
  Shape b(a.ndim(), 0), e = a.shape(), step(a.ndim(), 1);
  if (!reverse) {
    b[axis] = start;
    e[axis] = start + len;
  } else {
    b[axis] = start + len - 1;
    // A stop of -1 would count from the end; anything below -n means "past the front".
    e[axis] = start > 0 ? start - 1 : -a.shape(axis) - 1;
    step[axis] = -1;
  }
  return slice(a, std::move(b), std::move(e), std::move(step), st);
}

}  // namespace

array sort(const array& a, std::optional<int> axis, StreamOrDevice s) {
  Stream st = to_stream(s);
  auto [x, ax] = sort_input(a, axis, "sort", st);
  return array(x.shape(), x.dtype(), std::make_shared<Sort>(ax), {x}, st);
}

array argsort(const array& a, std::optional<int> axis, StreamOrDevice s) {
  Stream st = to_stream(s);
  auto [x, ax] = sort_input(a, axis, "argsort", st);
  check_index_range(x, ax, "argsort");
  return array(x.shape(), uint32, std::make_shared<ArgSort>(ax), {x}, st);
}

array partition(const array& a, int64_t kth, int axis, StreamOrDevice s) {
  check_sortable(a, "partition");
  int ax = normalize_axis(axis, a.ndim(), "partition");
  int64_t k = normalize_kth(kth, a, ax, "partition");
  return array(a.shape(), a.dtype(), std::make_shared<Partition>(k, ax), {a}, to_stream(s));
}

array argpartition(const array& a, int64_t kth, int axis, StreamOrDevice s) {
  check_sortable(a, "argpartition");
  int ax = normalize_axis(axis, a.ndim(), "argpartition");
  check_index_range(a, ax, "argpartition");
  int64_t k = normalize_kth(kth, a, ax, "argpartition");
  return array(a.shape(), uint32, std::make_shared<ArgPartition>(k, ax), {a}, to_stream(s));
}

array topk(const array& a, int k, int axis, StreamOrDevice s) {
  check_sortable(a, "topk");
  int ax = normalize_axis(axis, a.ndim(), "topk");
  int64_t n = a.shape(ax);
  if (k < 0 || k > n) fail<ValueError>("[topk] k = ", k, " is out of range for axis ", ax, " of size ", n);
  Stream st = to_stream(s);
  if (k == 0 || k == n || st.device.type == Device::gpu) {
    // The CUDA partition is a full sort anyway, so sorting once is cheapest there.
    return take_run(sort(a, ax, st), ax, n - k, k, true, st);
  }
  // CPU: select the k largest in linear time, then sort only those.
  array top = take_run(partition(a, n - k, ax, st), ax, n - k, k, false, st);
  return take_run(sort(top, ax, st), ax, 0, k, true, st);
}

}  // namespace kiln
