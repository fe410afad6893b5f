// Shape and layout operations. Views (reshape of contiguous data, transpose, broadcast, slices,
// expand/squeeze) never copy.
#pragma once

#include <vector>

#include "kiln/array.h"

namespace kiln {

// Normalizes a possibly negative axis for an array of `ndim` dimensions, or throws IndexError
// naming the op.
int normalize_axis(int axis, int ndim, const char* op);
// Broadcast shape of two shapes (NumPy rules), or ValueError naming the op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast_shapes");

array reshape(const array& a, Shape shape, StreamOrDevice s = {});  // one -1 allowed
array flatten(const array& a, int start_axis = 0, int end_axis = -1, StreamOrDevice s = {});
array transpose(const array& a, std::vector<int> axes, StreamOrDevice s = {});
array transpose(const array& a, StreamOrDevice s = {});  // reverses the axes
array swapaxes(const array& a, int axis1, int axis2, StreamOrDevice s = {});
array moveaxis(const array& a, int source, int destination, StreamOrDevice s = {});
array broadcast_to(const array& a, const Shape& shape, StreamOrDevice s = {});
std::vector<array> broadcast_arrays(const std::vector<array>& arrays, StreamOrDevice s = {});
array expand_dims(const array& a, int axis, StreamOrDevice s = {});
array expand_dims(const array& a, std::vector<int> axes, StreamOrDevice s = {});
array squeeze(const array& a, StreamOrDevice s = {});
array squeeze(const array& a, std::vector<int> axes, StreamOrDevice s = {});

// Python-style slicing: start/stop/step per axis; stop is exclusive; negative values count from
// the end; out-of-range bounds clamp as in Python.
array slice(const array& a, Shape start, Shape stop, Shape step = {}, StreamOrDevice s = {});
// A strided view with explicit element strides and offset (relative to a's first element).
array as_strided(const array& a, Shape shape, Strides strides, int64_t offset = 0, StreamOrDevice s = {});

}  // namespace kiln
