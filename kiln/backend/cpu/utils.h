// Helpers shared by the CPU kernels: output allocation and strided iteration.
#pragma once

#include <array>
#include <vector>

#include "kiln/array.h"
#include "kiln/backend/cpu/parallel.h"

namespace kiln::cpu {

// Gives `out` a new row-contiguous host buffer and returns its first element.
template <class T>
T* allocate(array& out) {
  out.set_data(std::make_shared<Buffer>(out.nbytes()));
  return out.host_data_mut<T>();
}

// Gives `out` a new host buffer with the given strides (which must be dense).
template <class T>
T* allocate_like(array& out, const Strides& strides, int64_t data_size) {
  out.set_data(std::make_shared<Buffer>(data_size * sizeof(T)), strides, 0);
  return out.host_data_mut<T>();
}

// Shape and per-operand strides with adjacent axes merged wherever every operand allows it,
// and axes of length 1 dropped. Iterating the result visits the same elements in the same order.
template <size_t N>
struct Collapsed {
  Shape shape;
  std::array<Strides, N> strides;
};

template <size_t N>
Collapsed<N> collapse(const Shape& shape, const std::array<const Strides*, N>& strides) {
  Collapsed<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !c.shape.empty();
    if (merge) {
      for (size_t k = 0; k < N; ++k) {
        if (c.strides[k].back() != (*strides[k])[d] * shape[d]) merge = false;
      }
    }
    if (merge) {
      c.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) c.strides[k].back() = (*strides[k])[d];
    } else {
      c.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) c.strides[k].push_back((*strides[k])[d]);
    }
  }
  if (c.shape.empty()) {
    c.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) c.strides[k].push_back(0);
  }
  return c;
}

// Calls fn(offsets) for every element of the collapsed iteration space, in row-major order,
// restricted to the flat range [begin, end). offsets[k] is the element offset of operand k.
template <size_t N, class F>
void for_each_strided(const Collapsed<N>& c, int64_t begin, int64_t end, F&& fn) {
  const int nd = static_cast<int>(c.shape.size());
  std::vector<int64_t> idx(nd, 0);
  std::array<int64_t, N> off{};
  int64_t rem = begin;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % c.shape[d];
    rem /= c.shape[d];
    for (size_t k = 0; k < N; ++k) off[k] += idx[d] * c.strides[k][d];
  }
  const int64_t inner = c.shape[nd - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = c.strides[k][nd - 1];
  int64_t i = begin;
  while (i < end) {
    int64_t run = std::min(inner - idx[nd - 1], end - i);
    for (int64_t j = 0; j < run; ++j) {
      fn(off);
      for (size_t k = 0; k < N; ++k) off[k] += inner_stride[k];
    }
    i += run;
    idx[nd - 1] += run;
    for (size_t k = 0; k < N; ++k) off[k] -= inner_stride[k] * idx[nd - 1];
    for (int d = nd - 1; d > 0 && idx[d] >= c.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
    for (size_t k = 0; k < N; ++k) {
      off[k] = 0;
      for (int d = 0; d < nd; ++d) off[k] += idx[d] * c.strides[k][d];
    }
  }
}

// Elements per parallel chunk for cheap elementwise work.
inline constexpr int64_t kElementwiseGrain = 1 << 15;

}  // namespace kiln::cpu
