// Sorting primitives. Every kernel gives its output a dense layout with the sorted axis innermost
// (row-contiguous when it is the last axis), so each sorted row is one contiguous run.
#pragma once

#include "kiln/primitive.h"

namespace kiln {

// Sorted values along a normalized axis.
class Sort : public Primitive {
 public:
  explicit Sort(int axis) : axis(axis) {}
  const char* name() const override { return "sort"; }
  int axis;
};

// Stable sorting indices (uint32) along a normalized axis.
class ArgSort : public Primitive {
 public:
  explicit ArgSort(int axis) : axis(axis) {}
  const char* name() const override { return "argsort"; }
  int axis;
};

// Values partitioned around the normalized position kth along a normalized axis. The CPU selects
// (nth_element); the CUDA kernel sorts, which also meets the contract.
class Partition : public Primitive {
 public:
  Partition(int64_t kth, int axis) : kth(kth), axis(axis) {}
  const char* name() const override { return "partition"; }
  int64_t kth;
  int axis;
};

// uint32 indices that partition around kth, as Partition.
class ArgPartition : public Primitive {
 public:
  ArgPartition(int64_t kth, int axis) : kth(kth), axis(axis) {}
  const char* name() const override { return "argpartition"; }
  int64_t kth;
  int axis;
};

// Output strides that keep out's dense buffer in row-major order of its shape with `axis` moved
// last: each row along `axis` is contiguous. Shared by the CPU and CUDA kernels.
inline Strides axis_last_strides(const Shape& shape, int axis) {
  Strides st(shape.size());
  int64_t n = shape.empty() ? 1 : shape[axis];
  int64_t acc = n;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (i == axis) continue;
    st[i] = acc;
    acc *= shape[i];
  }
  if (!shape.empty()) st[axis] = 1;
  return st;
}

}  // namespace kiln
