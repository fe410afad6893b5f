// Kernels of the layout primitives. They move no data: the output shares the input's buffer
// with new strides and offset, so one implementation serves every backend. Reshape of a layout
// that no strides can describe, and contiguous of a non-contiguous one, fall back to the
// backend's own copy kernel.
#include "kiln/backend/kernels.h"
#include "kiln/primitives_shape.h"

namespace kiln {

namespace {

// Strides that give `shape` the same elements (in row-major order) as `in`, if any exist.
bool reshape_strides(const array& in, const Shape& shape, Strides& out) {
  if (in.row_contiguous()) {
    out = row_major_strides(shape);
    return true;
  }
  // Group input axes (ignoring length-1 axes) into runs that are contiguous among themselves;
  // each output axis must fall within one run.
  Shape ish;
  Strides ist;
  for (int i = 0; i < in.ndim(); ++i) {
    if (in.shape()[i] != 1) {
      ish.push_back(in.shape()[i]);
      ist.push_back(in.strides()[i]);
    }
  }
  out.assign(shape.size(), 0);
  size_t oi = 0, ii = 0;
  while (oi < shape.size() && shape[oi] == 1) out[oi++] = 0;
  while (ii < ish.size()) {
    // Take input axes [ii, ij) and output axes [oi, oj) with equal products.
    size_t ij = ii + 1, oj = oi + 1;
    int64_t ip = ish[ii], op = oi < shape.size() ? shape[oi] : 1;
    if (oi >= shape.size()) return false;
    while (ip != op) {
      if (ip < op) {
        if (ij >= ish.size()) return false;
        ip *= ish[ij++];
      } else {
        if (oj >= shape.size()) return false;
        op *= shape[oj++];
      }
    }
    for (size_t k = ii; k + 1 < ij; ++k) {
      if (ist[k] != ist[k + 1] * ish[k + 1]) return false;
    }
    int64_t stride = ist[ij - 1];
    for (size_t k = oj; k-- > oi;) {
      out[k] = stride;
      stride *= shape[k];
    }
    ii = ij;
    oi = oj;
    while (oi < shape.size() && shape[oi] == 1) out[oi++] = 0;
  }
  return oi == shape.size();
}

template <Backend B>
void reshape_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  Strides strides;
  if (in.size() == 0 || reshape_strides(in, out.shape(), strides)) {
    if (in.size() == 0) strides = row_major_strides(out.shape());
    out.set_view(in, std::move(strides), in.offset());
    return;
  }
  find_kernel(B, "copy")(p, inputs, out);
}

template <Backend B>
void contiguous_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  if (in.row_contiguous()) {
    out.set_view(in, row_major_strides(out.shape()), in.offset());
    return;
  }
  find_kernel(B, "copy")(p, inputs, out);
}

void transpose_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& t = static_cast<const Transpose&>(p);
  const array& in = inputs[0];
  Strides strides(in.ndim());
  for (int i = 0; i < in.ndim(); ++i) strides[i] = in.strides()[t.axes[i]];
  out.set_view(in, std::move(strides), in.offset());
}

void broadcast_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  int lead = out.ndim() - in.ndim();
  Strides strides(out.ndim(), 0);
  for (int i = 0; i < in.ndim(); ++i) {
    strides[lead + i] = in.shape()[i] == 1 ? 0 : in.strides()[i];
  }
  out.set_view(in, std::move(strides), in.offset());
}

void slice_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& s = static_cast<const Slice&>(p);
  const array& in = inputs[0];
  Strides strides(in.ndim());
  int64_t offset = in.offset();
  for (int i = 0; i < in.ndim(); ++i) {
    strides[i] = in.strides()[i] * s.step[i];
    if (out.shape()[i] > 0) offset += s.start[i] * in.strides()[i];
  }
  if (out.size() == 0) offset = in.offset();
  out.set_view(in, std::move(strides), offset);
}

void as_strided_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& s = static_cast<const AsStrided&>(p);
  out.set_view(inputs[0], s.strides, inputs[0].offset() + s.offset);
}

// The input is row-contiguous (the front end makes it so); only the element size changes.
void view_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  int64_t byte_offset = in.offset() * static_cast<int64_t>(in.itemsize());
  int64_t item = static_cast<int64_t>(out.itemsize());
  if (byte_offset % item != 0) {
    fail<ValueError>("[view] the data starts at byte ", byte_offset, ", which is not aligned to ", out.dtype());
  }
  out.set_view(in, row_major_strides(out.shape()), byte_offset / item);
}

template <Backend B>
void register_views() {
  register_kernel(B, "reshape", reshape_kernel<B>);
  register_kernel(B, "contiguous", contiguous_kernel<B>);
  register_kernel(B, "transpose", transpose_kernel);
  register_kernel(B, "broadcast_to", broadcast_kernel);
  register_kernel(B, "slice", slice_kernel);
  register_kernel(B, "as_strided", as_strided_kernel);
  register_kernel(B, "view", view_kernel);
}

}  // namespace

void register_view_kernels(Backend backend) {
  if (backend == Backend::cpu) {
    register_views<Backend::cpu>();
  } else {
    register_views<Backend::gpu>();
  }
}

}  // namespace kiln
