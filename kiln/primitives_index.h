// Primitives of the structural and indexing operations. Kernels see index arrays already
// converted to int32 or int64 (all of one node share one type) and broadcast to one shape.
#pragma once

#include <utility>

#include "kiln/ops_index.h"
#include "kiln/primitive.h"

namespace kiln {

// Inputs of one dtype and rank, equal except along axis; the output is row-contiguous.
class Concatenate : public Primitive {
 public:
  explicit Concatenate(int axis) : axis(axis) {}
  const char* name() const override { return "concatenate"; }
  void print(std::ostream& os) const override;
  int axis;
};

// Inputs {src, update}: out = src with out[start + i * step] = update[i] per axis. start is
// normalized (non-negative) and update already has the region's shape (possibly broadcast).
class SliceUpdate : public Primitive {
 public:
  SliceUpdate(Shape start, Shape step) : start(std::move(start)), step(std::move(step)) {}
  const char* name() const override { return "slice_update"; }
  void print(std::ostream& os) const override;
  Shape start;
  Shape step;
};

// Inputs {src, update, start}: update (row-contiguous, src's shape but along axis) written into
// src from index clamp(start, 0, src.shape(axis) - update.shape(axis)) of axis; start an int32
// scalar.
class DynamicSliceUpdate : public Primitive {
 public:
  explicit DynamicSliceUpdate(int axis) : axis(axis) {}
  const char* name() const override { return "dynamic_slice_update"; }
  int axis;
};

// Inputs {a, indices...}: see gather() in ops_index.h. Output shape I + slice_sizes. Indices are
// wrapped when negative, then clamped to [0, a.shape(axis) - slice_size].
class Gather : public Primitive {
 public:
  Gather(std::vector<int> axes, Shape slice_sizes) : axes(std::move(axes)), slice_sizes(std::move(slice_sizes)) {}
  const char* name() const override { return "gather"; }
  void print(std::ostream& os) const override;
  std::vector<int> axes;
  Shape slice_sizes;
};

// Inputs {a, indices..., updates}: see scatter() in ops_index.h. updates has shape I + block
// shape and a's dtype. An update whose wrapped index leaves [0, a.shape(axis) - block size] is
// dropped.
class Scatter : public Primitive {
 public:
  Scatter(std::vector<int> axes, ScatterMode mode) : axes(std::move(axes)), mode(mode) {}
  const char* name() const override { return "scatter"; }
  void print(std::ostream& os) const override;
  std::vector<int> axes;
  ScatterMode mode;
};

// A view of diagonal `offset` of the axis1 x axis2 planes, appended as the last axis. It works
// from the input's actual strides, so no input is ever copied (as_strided would need a
// row-contiguous input).
class Diagonal : public Primitive {
 public:
  Diagonal(int offset, int axis1, int axis2) : offset(offset), axis1(axis1), axis2(axis2) {}
  const char* name() const override { return "diagonal"; }
  void print(std::ostream& os) const override;
  // Makes `out` the view of `in` (both backends share this).
  void make_view(const array& in, array& out) const;
  int offset;
  int axis1;
  int axis2;
};

}  // namespace kiln
