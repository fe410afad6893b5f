// CPU kernels: sort, argsort, partition and argpartition. Each row along the axis is gathered
// into a contiguous buffer, NaNs are moved behind the numbers, and the numbers are sorted (or
// selected) with std algorithms; rows run in parallel.
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_sort.h"

namespace kiln::cpu {

namespace {

// Rows sort in key type K: the 16-bit floats widen to float (exactly), all else sorts as itself.
template <class T>
using key_t = std::conditional_t<std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>, float, T>;

template <class K>
bool is_nan(K x) {
  if constexpr (std::is_floating_point_v<K>) {
    return x != x;
  } else {
    return false;
  }
}

// The rows of an array along one axis: row r holds in[offset(r) + j * stride], j < n, with rows
// numbered in row-major order of the other axes (the order the output stores them in).
struct Rows {
  int64_t n = 0;
  int64_t stride = 0;
  int64_t count = 0;
  Shape outer;
  Strides outer_strides;

  int64_t offset(int64_t r) const {
    int64_t off = 0;
    for (int d = static_cast<int>(outer.size()) - 1; d >= 0; --d) {
      off += (r % outer[d]) * outer_strides[d];
      r /= outer[d];
    }
    return off;
  }
};

Rows rows_of(const array& in, int axis) {
  Rows r;
  r.n = in.shape(axis);
  r.stride = in.strides()[axis];
  for (int d = 0; d < in.ndim(); ++d) {
    if (d == axis) continue;
    r.outer.push_back(in.shape(d));
    r.outer_strides.push_back(in.strides()[d]);
  }
  r.count = r.n == 0 ? 0 : in.size() / r.n;
  return r;
}

enum class Mode { sort, argsort, partition, argpartition };

constexpr bool is_arg(Mode m) { return m == Mode::argsort || m == Mode::argpartition; }

// Sorts (or selects around kth in) one row of keys; NaNs end up last, all after the numbers.
template <Mode M, class K>
void order_values(K* b, K* e, int64_t kth) {
  K* mid = e;
  if constexpr (std::is_floating_point_v<K>) mid = std::partition(b, e, [](K x) { return !is_nan(x); });
  if constexpr (M == Mode::sort) {
    std::sort(b, mid);
  } else if (kth < mid - b) {  // otherwise the kth element is a NaN and the row is partitioned
    std::nth_element(b, b + kth, mid);
  }
}

// The same for (key, index) pairs. argsort is stable: NaNs keep their order and equal keys too.
template <Mode M, class K>
void order_pairs(std::pair<K, uint32_t>* b, std::pair<K, uint32_t>* e, int64_t kth) {
  using P = std::pair<K, uint32_t>;
  auto less = [](const P& x, const P& y) { return x.first < y.first; };
  auto number = [](const P& x) { return !is_nan(x.first); };
  P* mid = e;
  if constexpr (M == Mode::argsort) {
    if constexpr (std::is_floating_point_v<K>) mid = std::stable_partition(b, e, number);
    std::stable_sort(b, mid, less);
  } else {
    if constexpr (std::is_floating_point_v<K>) mid = std::partition(b, e, number);
    if (kth < mid - b) std::nth_element(b, b + kth, mid, less);
  }
}

template <class T, Mode M>
void sort_rows(const array& in, array& out, int axis, int64_t kth) {
  using K = key_t<T>;
  using O = std::conditional_t<is_arg(M), uint32_t, T>;
  O* dst = allocate_like<O>(out, axis_last_strides(out.shape(), axis), out.size());
  if (out.size() == 0) return;
  const T* src = in.host_data<T>();
  Rows rows = rows_of(in, axis);
  const int64_t n = rows.n;
  parallel_for(rows.count, std::max<int64_t>(1, (int64_t{1} << 14) / n), [&](int64_t begin, int64_t end) {
    std::vector<K> keys;
    std::vector<std::pair<K, uint32_t>> pairs;
    for (int64_t r = begin; r < end; ++r) {
      const T* row = src + rows.offset(r);
      O* o = dst + r * n;
      if constexpr (is_arg(M)) {
        pairs.resize(n);
        for (int64_t j = 0; j < n; ++j) pairs[j] = {static_cast<K>(row[j * rows.stride]), static_cast<uint32_t>(j)};
        order_pairs<M>(pairs.data(), pairs.data() + n, kth);
        for (int64_t j = 0; j < n; ++j) o[j] = pairs[j].second;
      } else if constexpr (std::is_same_v<K, T>) {
        // Sort in place in the output row.
        for (int64_t j = 0; j < n; ++j) o[j] = row[j * rows.stride];
        order_values<M>(o, o + n, kth);
      } else {
        keys.resize(n);
        for (int64_t j = 0; j < n; ++j) keys[j] = static_cast<K>(row[j * rows.stride]);
        order_values<M>(keys.data(), keys.data() + n, kth);
        for (int64_t j = 0; j < n; ++j) o[j] = T(keys[j]);
      }
    }
  });
}

template <Mode M>
void sort_dispatch(const char* name, const array& in, array& out, int axis, int64_t kth) {
  KILN_DISPATCH_REAL(name, in.dtype(), { sort_rows<T, M>(in, out, axis, kth); });
}

void sort_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_dispatch<Mode::sort>("sort", inputs[0], out, static_cast<const Sort&>(p).axis, 0);
}

void argsort_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_dispatch<Mode::argsort>("argsort", inputs[0], out, static_cast<const ArgSort&>(p).axis, 0);
}

void partition_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const Partition&>(p);
  sort_dispatch<Mode::partition>("partition", inputs[0], out, prim.axis, prim.kth);
}

void argpartition_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const ArgPartition&>(p);
  sort_dispatch<Mode::argpartition>("argpartition", inputs[0], out, prim.axis, prim.kth);
}

}  // namespace

void register_cpu_sort() {
  register_kernel(Backend::cpu, "sort", sort_kernel);
  register_kernel(Backend::cpu, "argsort", argsort_kernel);
  register_kernel(Backend::cpu, "partition", partition_kernel);
  register_kernel(Backend::cpu, "argpartition", argpartition_kernel);
}

}  // namespace kiln::cpu
