// Structural and indexing operations: joining, splitting, padding, tiling, rolling, flipping,
// triangles and diagonals, strided updates, and integer-array indexing (take, gather, scatter).
// NumPy semantics unless a comment says otherwise.
//
// Out-of-range indices (take, take_along_axis, put_along_axis, gather, scatter). Negative
// indices count from the end of the axis. Beyond that:
// - When an index array is already evaluated and its data is on the host (arrays made from C++
//   values, or anything evaluated on the CPU), the front end checks it and throws IndexError
//   naming the first bad index, before building the graph.
// - Otherwise (the indices are themselves lazy or live on the GPU) they cannot be checked
//   without waiting for the device, so the kernels do not check them; instead both backends
//   behave identically and never touch memory outside the array: reads (take, gather, ...)
//   clamp the index into the valid range, and writes (put_along_axis, scatter) drop updates
//   whose index is out of range.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln {

// Joins arrays along an existing axis; dtypes promote as in NumPy.
array concatenate(const std::vector<array>& arrays, int axis = 0, StreamOrDevice s = {});
// Joins arrays of one shape along a new axis.
array stack(const std::vector<array>& arrays, int axis = 0, StreamOrDevice s = {});
// Views of `num_sections` equal parts along axis (the axis must divide evenly).
std::vector<array> split(const array& a, int num_sections, int axis = 0, StreamOrDevice s = {});
// Views a[:i0], a[i0:i1], ..., a[ik:] along axis (indices follow Python's slice rules).
std::vector<array> split(const array& a, const std::vector<int64_t>& indices, int axis = 0, StreamOrDevice s = {});

enum class PadMode {
  constant,  // fill with `value`
  edge,      // repeat the edge element
  reflect,   // mirror without repeating the edge: [1 2 3] padded by 2 gives [3 2 1 2 3 2 1]
};
// Pads by (before, after) per axis; one pair applies to every axis. `value` (a scalar, cast to
// a's dtype) is used by the constant mode only.
array pad(const array& a, std::vector<std::pair<int64_t, int64_t>> widths, PadMode mode = PadMode::constant,
          const array& value = array(0), StreamOrDevice s = {});

// Repeats the whole array reps[i] times along axis i (reps and shape are aligned at the end,
// the shorter one padded with leading 1s).
array tile(const array& a, Shape reps, StreamOrDevice s = {});
// Repeats each element `repeats` times along axis (on the flattened array when axis is empty).
array repeat(const array& a, int64_t repeats, std::optional<int> axis = {}, StreamOrDevice s = {});
// Rotates elements by shift along axis (on the flattened array when axis is empty).
array roll(const array& a, int64_t shift, std::optional<int> axis = {}, StreamOrDevice s = {});
// Rolls along several axes; one shift applies to every axis; repeated axes add their shifts.
array roll(const array& a, Shape shifts, std::vector<int> axes, StreamOrDevice s = {});
// Reverses the order of elements along the axes (all when empty). A view, no copy.
array flip(const array& a, std::optional<std::vector<int>> axes = {}, StreamOrDevice s = {});

// Zeroes the elements above diagonal k (tril) or below it (triu) of the last two axes. A 1-d
// input is treated as the rows of a square matrix, as NumPy does.
array tril(const array& a, int k = 0, StreamOrDevice s = {});
array triu(const array& a, int k = 0, StreamOrDevice s = {});
// The diagonal `offset` of the axis1 x axis2 planes, as a new last axis. A view, no copy.
array diagonal(const array& a, int offset = 0, int axis1 = 0, int axis2 = 1, StreamOrDevice s = {});

// A copy of src with src[start:stop:step] (Python slice rules per axis; negative steps allowed)
// replaced by update, which is broadcast to that region and cast to src's dtype.
array slice_update(const array& src, const array& update, Shape start, Shape stop, Shape step = {},
                   StreamOrDevice s = {});
// A copy of src with update written from position `start` along `axis`, where start is an integer
// scalar array read when the kernel runs (clamped so that the update fits), so a replayed graph
// can move it. update has src's shape except along axis. Written in place when src's buffer is
// not shared (a KV cache).
array dynamic_slice_update(const array& src, const array& update, const array& start, int axis,
                           StreamOrDevice s = {});

// Elements at integer indices along axis (of the flattened array when axis is empty); the
// indices' shape takes the place of that axis.
array take(const array& a, const array& indices, std::optional<int> axis = {}, StreamOrDevice s = {});
// out[..., i, ...] = a[..., indices[..., i, ...], ...] along axis; indices has a's rank and
// broadcasts with a on the other axes.
array take_along_axis(const array& a, const array& indices, int axis, StreamOrDevice s = {});
// A copy of a with a[..., indices[..., i, ...], ...] = values[..., i, ...] along axis. With
// repeated indices, the CPU keeps the last value; on the GPU which one wins is unspecified.
array put_along_axis(const array& a, const array& indices, const array& values, int axis, StreamOrDevice s = {});

// MLX's gather. The index arrays broadcast to a shape I; indices[k] indexes axis axes[k]. The
// result has shape I + slice_sizes: for each position i of I, the block of a of size
// slice_sizes (one entry per axis of a) starting at indices[k][i] on axis axes[k] and 0 on the
// other axes.
array gather(const array& a, const std::vector<array>& indices, const std::vector<int>& axes, Shape slice_sizes,
             StreamOrDevice s = {});

enum class ScatterMode { set, add, max, min, prod };
// MLX's scatter: a copy of a where, for each position i of the broadcast index shape I, the block
// updates[i] (updates has shape I + block shape, one block entry per axis of a) is combined into
// a at the start given by indices[k][i] on axis axes[k] (0 on the other axes). Repeated indices
// combine: add, max, min and prod accumulate every update (on the GPU with atomics, so float
// sums may round in any order); with set, the CPU keeps the last update and on the GPU which one
// wins is unspecified. max and min propagate NaN. On bool arrays add is logical or, prod logical
// and.
array scatter(const array& a, const std::vector<array>& indices, const array& updates, const std::vector<int>& axes,
              ScatterMode mode = ScatterMode::set, StreamOrDevice s = {});

}  // namespace kiln
