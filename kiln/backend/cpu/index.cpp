// CPU kernels of the structural and indexing primitives: concatenate, slice_update, gather,
// scatter and the diagonal view. Kernels that only move elements dispatch on the element size.
#include <algorithm>
#include <cstring>

#include "kiln/backend/common/scatter_ops.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/backend/common/bytes.h"
#include "kiln/primitives_index.h"

namespace kiln::cpu {

namespace {

// Copies `in` (any layout) to dst, laid out with dst_strides over in's shape.
template <class U>
void strided_copy(const array& in, U* dst, const Strides& dst_strides) {
  if (in.size() == 0) return;
  const U* src = in.host_data<U>();
  auto c = collapse<2>(in.shape(), {&in.strides(), &dst_strides});
  parallel_for(in.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for_each_strided(c, b, e, [&](const std::array<int64_t, 2>& o) { dst[o[1]] = src[o[0]]; });
  });
}

void concatenate_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const int axis = static_cast<const Concatenate&>(p).axis;
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = allocate<U>(out);
    Strides os = row_major_strides(out.shape());
    int64_t pos = 0;
    for (auto& in : inputs) {
      strided_copy<U>(in, dst + pos * os[axis], os);
      pos += in.shape()[axis];
    }
  });
}

void slice_update_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& su = static_cast<const SliceUpdate&>(p);
  if (donate_buffer(inputs[0], out)) {
    out.buffer()->read_host();  // current on the host before the partial write
  } else {
    find_kernel(Backend::cpu, "copy")(p, inputs, out);  // out = row-contiguous copy of src
  }
  Strides os = row_major_strides(out.shape());
  Strides rs(out.ndim());
  int64_t off = 0;
  for (int d = 0; d < out.ndim(); ++d) {
    rs[d] = os[d] * su.step[d];
    off += su.start[d] * os[d];
  }
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    strided_copy<U>(inputs[1], out.host_data_mut<U>() + off, rs);
  });
}

// The update's rows (outer, len, inner) land at rows (outer, start + a, inner) of the output.
void dynamic_slice_update_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const int axis = static_cast<const DynamicSliceUpdate&>(p).axis;
  if (donate_buffer(inputs[0], out)) {
    out.buffer()->read_host();
  } else {
    find_kernel(Backend::cpu, "copy")(p, inputs, out);
  }
  const array& upd = inputs[1];
  const int64_t dim = out.shape(axis), len = upd.shape(axis);
  int64_t inner = 1, outer = 1;
  for (int d = axis + 1; d < out.ndim(); ++d) inner *= out.shape(d);
  for (int d = 0; d < axis; ++d) outer *= out.shape(d);
  const int64_t start = std::clamp<int64_t>(inputs[2].host_data<int32_t>()[0], 0, dim - len);
  const size_t item = out.itemsize();
  const char* src = static_cast<const char*>(upd.buffer()->read_host()) + upd.offset() * item;
  char* dst = static_cast<char*>(out.buffer()->write_host());
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(dst + ((o * dim + start) * inner) * item, src + (o * len * inner) * item, len * inner * item);
  }
}

// The index arrays of a gather or scatter node: each is read through its strides over the
// broadcast index shape, and moves along one axis of the indexed array (size n, block size
// `block`, element stride `stride`).
struct IndexArgs {
  Shape shape;  // the broadcast index shape I
  std::vector<const void*> ptr;
  std::vector<const Strides*> strides;
  std::vector<int64_t> n, block, stride;
  bool is64 = false;

  int64_t read(size_t k, int64_t off) const {
    return is64 ? static_cast<const int64_t*>(ptr[k])[off] : static_cast<const int32_t*>(ptr[k])[off];
  }

  // Offset of the block of index position i. Indices wrap when negative; then out-of-range
  // ones clamp (kClamp) or make this return false.
  template <bool kClamp>
  bool block_offset(int64_t i, int64_t& base) const {
    const size_t k_n = ptr.size();
    int64_t offs[16] = {};
    std::vector<int64_t> big;
    int64_t* o = offs;
    if (k_n > 16) {
      big.assign(k_n, 0);
      o = big.data();
    }
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0 && i > 0; --d) {
      int64_t c = i % shape[d];
      i /= shape[d];
      for (size_t k = 0; k < k_n; ++k) o[k] += c * (*strides[k])[d];
    }
    base = 0;
    for (size_t k = 0; k < k_n; ++k) {
      int64_t v = read(k, o[k]);
      if (v < 0) v += n[k];
      if (v < 0 || v > n[k] - block[k]) {
        if (!kClamp) return false;
        v = std::clamp<int64_t>(v, 0, n[k] - block[k]);
      }
      base += v * stride[k];
    }
    return true;
  }
};

// inputs[1 .. 1 + axes.size()) are the index arrays.
IndexArgs index_args(const std::vector<array>& inputs, const std::vector<int>& axes, const Shape& shape,
                     const Shape& block, const Strides& strides, const Shape& idx_shape) {
  IndexArgs ia;
  ia.shape = idx_shape;
  for (size_t k = 0; k < axes.size(); ++k) {
    const array& idx = inputs[1 + k];
    ia.is64 = idx.dtype() == int64;
    ia.ptr.push_back(ia.is64 ? static_cast<const void*>(idx.host_data<int64_t>())
                             : static_cast<const void*>(idx.host_data<int32_t>()));
    ia.strides.push_back(&idx.strides());
    ia.n.push_back(shape[axes[k]]);
    ia.block.push_back(block[axes[k]]);
    ia.stride.push_back(strides[axes[k]]);
  }
  return ia;
}

void gather_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& g = static_cast<const Gather&>(p);
  const array& a = inputs[0];
  const int ni = out.ndim() - a.ndim();
  Shape idx_shape(out.shape().begin(), out.shape().begin() + ni);
  IndexArgs ia = index_args(inputs, g.axes, a.shape(), g.slice_sizes, a.strides(), idx_shape);
  const int64_t n_block = shape_size(g.slice_sizes);
  dispatch_bytes(a.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = allocate<U>(out);
    if (out.size() == 0) return;
    const U* src = a.host_data<U>();
    auto c = collapse<1>(g.slice_sizes, {&a.strides()});
    const bool flat = c.shape.size() == 1;
    const int64_t inner = c.strides[0][0];
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      // Runs of output positions share one block: [pos, pos + run) is block i, from element j.
      for (int64_t pos = b; pos < e;) {
        int64_t i = pos / n_block, j = pos % n_block;
        int64_t jend = std::min(n_block, j + (e - pos));
        int64_t base;
        ia.block_offset<true>(i, base);
        U* d = dst + pos;
        if (flat) {
          for (int64_t t = j; t < jend; ++t) *d++ = src[base + t * inner];
        } else {
          for_each_strided(c, j, jend, [&](const std::array<int64_t, 1>& o) { *d++ = src[base + o[0]]; });
        }
        pos += jend - j;
      }
    });
  });
}

template <ScatterMode M, class T>
void scatter_into(const array& upd, const IndexArgs& ia, int ni, T* dst, const Strides& out_strides) {
  Shape block(upd.shape().begin() + ni, upd.shape().end());
  Strides ustr_block(upd.strides().begin() + ni, upd.strides().end());
  const int64_t n_block = shape_size(block);
  const int64_t n_idx = shape_size(ia.shape);
  const T* u = upd.host_data<T>();
  auto c = collapse<2>(block, {&out_strides, &ustr_block});
  const bool flat = c.shape.size() == 1;
  const int64_t ostep = c.strides[0][0], ustep = c.strides[1][0];
  // Updates collide only at equal index values when every indexed axis has block size 1; then
  // threads can split the block positions and each walks all indices in order (so the last of
  // duplicate updates wins, deterministically). Otherwise one thread does it all.
  bool split = std::all_of(ia.block.begin(), ia.block.end(), [](int64_t b) { return b == 1; });
  int64_t grain = split ? std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n_idx, 1)) : n_block;
  parallel_for(n_block, grain, [&](int64_t jb, int64_t je) {
    for (int64_t i = 0; i < n_idx; ++i) {
      int64_t base;
      if (!ia.block_offset<false>(i, base)) continue;
      int64_t ubase = 0;
      for (int64_t d = ni - 1, rem = i; d >= 0; --d) {
        ubase += (rem % ia.shape[d]) * upd.strides()[d];
        rem /= ia.shape[d];
      }
      if (flat) {
        for (int64_t j = jb; j < je; ++j) {
          T& x = dst[base + j * ostep];
          x = ops::scatter_combine<M, T>(x, u[ubase + j * ustep]);
        }
      } else {
        for_each_strided(c, jb, je, [&](const std::array<int64_t, 2>& o) {
          T& x = dst[base + o[0]];
          x = ops::scatter_combine<M, T>(x, u[ubase + o[1]]);
        });
      }
    }
  });
}

void scatter_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& sc = static_cast<const Scatter&>(p);
  const array& a = inputs[0];
  const array& upd = inputs.back();
  find_kernel(Backend::cpu, "copy")(p, inputs, out);  // out = row-contiguous copy of a
  const int ni = upd.ndim() - a.ndim();
  Shape idx_shape(upd.shape().begin(), upd.shape().begin() + ni);
  Shape block(upd.shape().begin() + ni, upd.shape().end());
  Strides os = row_major_strides(out.shape());
  IndexArgs ia = index_args(inputs, sc.axes, a.shape(), block, os, idx_shape);
  if (upd.size() == 0) return;
  ops::visit_scatter_mode(sc.mode, [&](auto mode) {
    KILN_DISPATCH_ALL("scatter", out.dtype(), {
      scatter_into<decltype(mode)::value, T>(upd, ia, ni, out.host_data_mut<T>(), os);
    });
  });
}

void diagonal_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  static_cast<const Diagonal&>(p).make_view(inputs[0], out);
}

}  // namespace

void register_cpu_index() {
  register_kernel(Backend::cpu, "concatenate", concatenate_kernel);
  register_kernel(Backend::cpu, "slice_update", slice_update_kernel);
  register_kernel(Backend::cpu, "dynamic_slice_update", dynamic_slice_update_kernel);
  register_kernel(Backend::cpu, "gather", gather_kernel);
  register_kernel(Backend::cpu, "scatter", scatter_kernel);
  register_kernel(Backend::cpu, "diagonal", diagonal_kernel);
}

}  // namespace kiln::cpu
