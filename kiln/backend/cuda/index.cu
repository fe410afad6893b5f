// CUDA kernels of the structural and indexing primitives: concatenate, slice_update, gather,
// scatter and the diagonal view. Grid-stride loops over the output (over the updates for
// scatter) with int64 index arithmetic. Kernels that only move elements are instantiated per
// element size, not per dtype; scatter, which computes, per dtype with the mode chosen at run
// time.
#include <cstring>
#include <type_traits>

#include "kiln/backend/common/scatter_ops.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/backend/common/bytes.h"
#include "kiln/primitives_index.h"

namespace kiln::cuda {

namespace {

template <class U>
__global__ void copy_into(const U* in, U* out, int64_t n, StridedLayout<2> l) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    l.offsets(i, off);
    out[off[1]] = in[off[0]];
  }
}

// Copies `in` (any layout) to dst, laid out with dst_strides over in's shape, on out's stream.
template <class U>
void launch_copy_into(const array& in, U* dst, const Strides& dst_strides, const array& out, const char* op) {
  int64_t n = in.size();
  if (n == 0) return;
  const U* src = in_ptr<U>(in, out);
  auto l = make_layout<2>(in.shape(), {&in.strides(), &dst_strides});
  if (widen_to_16_bytes(l, sizeof(U), src, dst)) {  // e.g. whole head rows into a KV cache
    const int64_t n16 = n * static_cast<int64_t>(sizeof(U)) / 16;
    copy_into<uint4><<<strided_blocks(out, n16), kThreads, 0, stream_of(out)>>>(
        reinterpret_cast<const uint4*>(src), reinterpret_cast<uint4*>(dst), n16, l);
  } else {
    copy_into<U><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(src, dst, n, l);
  }
  check_launch(op);
}

template <class U>
U* gpu_out(array& out) {
  return static_cast<U*>(out.buffer()->write_gpu(out.device().index, out.stream().index));
}

void concatenate_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const int axis = static_cast<const Concatenate&>(p).axis;
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = alloc_out<U>(out);
    Strides os = row_major_strides(out.shape());
    int64_t pos = 0;
    for (auto& in : inputs) {
      launch_copy_into<U>(in, dst + pos * os[axis], os, out, "concatenate");
      pos += in.shape()[axis];
    }
  });
}

void slice_update_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& su = static_cast<const SliceUpdate&>(p);
  if (donate_buffer(inputs[0], out)) {
    out.buffer()->read_gpu(out.device().index, out.stream().index);  // current on the GPU first
  } else {
    find_kernel(Backend::gpu, "copy")(p, inputs, out);  // out = row-contiguous copy of src
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
    launch_copy_into<U>(inputs[1], gpu_out<U>(out) + off, rs, out, "slice_update");
  });
}

template <class U>
__global__ void dynamic_update_dev(const U* __restrict__ upd, U* __restrict__ out, const int32_t* __restrict__ start,
                                   int64_t n, int64_t dim, int64_t len, int64_t inner) {
  const int64_t s0 = min(max(static_cast<int64_t>(*start), int64_t{0}), dim - len);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t in = i % inner, a = (i / inner) % len, o = i / (inner * len);
    out[(o * dim + s0 + a) * inner + in] = upd[i];
  }
}

// The update's rows (outer, len, inner) land at rows (outer, start + a, inner); start is read on
// the device.
void dynamic_slice_update_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const int axis = static_cast<const DynamicSliceUpdate&>(p).axis;
  if (donate_buffer(inputs[0], out)) {
    out.buffer()->read_gpu(out.device().index, out.stream().index);
  } else {
    find_kernel(Backend::gpu, "copy")(p, inputs, out);
  }
  const array& upd = inputs[1];
  const int64_t dim = out.shape(axis), len = upd.shape(axis), n = upd.size();
  int64_t inner = 1;
  for (int d = axis + 1; d < out.ndim(); ++d) inner *= out.shape(d);
  if (n == 0) return;
  const int32_t* start = in_ptr<int32_t>(inputs[2], out);
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    dynamic_update_dev<U><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(in_ptr<U>(upd, out), gpu_out<U>(out),
                                                                                   start, n, dim, len, inner);
    check_launch("dynamic_slice_update");
  });
}

// ---- gather and scatter ----

constexpr int kMaxIdx = kMaxDims;

// Everything a gather or scatter thread needs, passed by value. Index position i (row-major over
// the index shape I) reads each index array k through idx_strides[k]; row kMaxIdx holds the
// updates' strides over I (scatter only). Block position j (row-major over block_shape) is at
// block_strides[0] in the indexed array and block_strides[1] in the updates.
struct IndexParams {
  int nidx;
  int idx_ndim;
  int block_ndim;
  bool is64;
  int64_t n_block;
  int64_t idx_shape[kMaxDims];
  int64_t idx_strides[kMaxIdx + 1][kMaxDims];
  const void* idx[kMaxIdx];
  int64_t n[kMaxIdx];       // size of the indexed axis
  int64_t block[kMaxIdx];   // block size along it
  int64_t stride[kMaxIdx];  // element stride of that axis in the indexed array
  int64_t block_shape[kMaxDims];
  int64_t block_strides[2][kMaxDims];

  // Offset of the block of index position i in the indexed array, and of its updates. Indices
  // wrap when negative; out-of-range ones then clamp (kClamp) or make this return false.
  template <bool kClamp>
  __device__ __forceinline__ bool block_offset(int64_t i, int64_t& base, int64_t& ubase) const {
    int64_t o[kMaxIdx + 1];
#pragma unroll
    for (int k = 0; k <= kMaxIdx; ++k) o[k] = 0;
    for (int d = idx_ndim - 1; d >= 0; --d) {
      int64_t c = i % idx_shape[d];
      i /= idx_shape[d];
#pragma unroll
      for (int k = 0; k <= kMaxIdx; ++k) o[k] += c * idx_strides[k][d];
    }
    ubase = o[kMaxIdx];
    base = 0;
    bool ok = true;
#pragma unroll
    for (int k = 0; k < kMaxIdx; ++k) {
      if (k < nidx) {
        int64_t v = is64 ? static_cast<const int64_t*>(idx[k])[o[k]] : static_cast<const int32_t*>(idx[k])[o[k]];
        if (v < 0) v += n[k];
        int64_t hi = n[k] - block[k];
        if (v < 0 || v > hi) {
          if (kClamp) {
            v = v < 0 ? 0 : hi;
          } else {
            ok = false;
          }
        }
        base += v * stride[k];
      }
    }
    return ok;
  }

  // Offsets of block position j in the indexed array (off[0]) and the updates (off[1]).
  __device__ __forceinline__ void block_pos(int64_t j, int64_t& a, int64_t& u) const {
    a = 0;
    u = 0;
    for (int d = block_ndim - 1; d >= 0; --d) {
      int64_t c = j % block_shape[d];
      j /= block_shape[d];
      a += c * block_strides[0][d];
      u += c * block_strides[1][d];
    }
  }
};

// Drops axes of length 1 and merges adjacent axes wherever every stride row allows it, writing
// the result into fixed arrays of kMaxDims. Returns the number of axes.
int collapse_rows(const Shape& shape, const std::vector<const Strides*>& rows, int64_t* out_shape,
                  const std::vector<int64_t*>& out_rows, const char* op) {
  int nd = 0;
  const size_t nr = rows.size();
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (size_t r = 0; merge && r < nr; ++r) merge = out_rows[r][nd - 1] == (*rows[r])[d] * shape[d];
    if (merge) {
      out_shape[nd - 1] *= shape[d];
      for (size_t r = 0; r < nr; ++r) out_rows[r][nd - 1] = (*rows[r])[d];
      continue;
    }
    if (nd == kMaxDims) fail<ValueError>("[", op, "] more than ", kMaxDims, " non-mergeable axes are not supported on the GPU");
    out_shape[nd] = shape[d];
    for (size_t r = 0; r < nr; ++r) out_rows[r][nd] = (*rows[r])[d];
    ++nd;
  }
  return nd;
}

// inputs[1 .. 1 + axes.size()) are the index arrays; upd_strides (over I) may be null.
IndexParams index_params(const std::vector<array>& inputs, const std::vector<int>& axes, const array& out,
                         const Shape& shape, const Shape& block, const Strides& strides, const Shape& idx_shape,
                         const Strides* upd_idx_strides, const Strides& block_a, const Strides& block_u,
                         const char* op) {
  IndexParams p{};
  if (axes.size() > static_cast<size_t>(kMaxIdx)) {
    fail<ValueError>("[", op, "] more than ", kMaxIdx, " index arrays are not supported on the GPU");
  }
  p.nidx = static_cast<int>(axes.size());
  std::vector<const Strides*> rows;
  std::vector<int64_t*> out_rows;
  for (int k = 0; k < p.nidx; ++k) {
    const array& idx = inputs[1 + k];
    p.is64 = idx.dtype() == int64;
    p.idx[k] = p.is64 ? static_cast<const void*>(in_ptr<int64_t>(idx, out))
                      : static_cast<const void*>(in_ptr<int32_t>(idx, out));
    p.n[k] = shape[axes[k]];
    p.block[k] = block[axes[k]];
    p.stride[k] = strides[axes[k]];
    rows.push_back(&idx.strides());
    out_rows.push_back(p.idx_strides[k]);
  }
  Strides zeros(idx_shape.size(), 0);
  rows.push_back(upd_idx_strides ? upd_idx_strides : &zeros);
  out_rows.push_back(p.idx_strides[kMaxIdx]);
  p.idx_ndim = collapse_rows(idx_shape, rows, p.idx_shape, out_rows, op);
  p.block_ndim = collapse_rows(block, {&block_a, &block_u}, p.block_shape,
                               {p.block_strides[0], p.block_strides[1]}, op);
  p.n_block = shape_size(block);
  return p;
}

template <class U>
__global__ void gather_dev(const U* __restrict__ src, U* __restrict__ out, int64_t n, IndexParams p) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t pos = i / p.n_block;
    int64_t base, ubase, a, u;
    p.block_offset<true>(pos, base, ubase);
    p.block_pos(i - pos * p.n_block, a, u);
    out[i] = src[base + a];
  }
}

// Whole slices that are contiguous runs of 16-byte vectors (an embedding's rows): a thread per
// vector, one index lookup per vector instead of per element.
template <class U>
__global__ void gather_rows_dev(const U* __restrict__ src, uint4* __restrict__ out, int64_t n, int64_t per_row,
                                IndexParams p) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pos = i / per_row;
    int64_t base, ubase;
    p.block_offset<true>(pos, base, ubase);
    out[i] = reinterpret_cast<const uint4*>(src + base)[i - pos * per_row];
  }
}

void gather_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& g = static_cast<const Gather&>(prim);
  const array& a = inputs[0];
  const int ni = out.ndim() - a.ndim();
  Shape idx_shape(out.shape().begin(), out.shape().begin() + ni);
  dispatch_bytes(a.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = alloc_out<U>(out);
    int64_t n = out.size();
    if (n == 0) return;
    const U* src = in_ptr<U>(a, out);
    Strides none(a.ndim(), 0);
    IndexParams p = index_params(inputs, g.axes, out, a.shape(), g.slice_sizes, a.strides(), idx_shape, nullptr,
                                 a.strides(), none, "gather");
    constexpr int64_t vw = 16 / sizeof(U);
    bool rows = p.block_ndim == 1 && p.block_strides[0][0] == 1 && p.n_block % vw == 0 && aligned16(src) &&
                aligned16(dst);
    for (int k = 0; rows && k < p.nidx; ++k) rows = p.stride[k] % vw == 0;
    if (rows) {
      gather_rows_dev<U><<<strided_blocks(out, n / vw), kThreads, 0, stream_of(out)>>>(
          src, reinterpret_cast<uint4*>(dst), n / vw, p.n_block / vw, p);
      check_launch("gather");
      return;
    }
    gather_dev<U><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(src, dst, n, p);
    check_launch("gather");
  });
}

// Applies scatter_combine<M> to *addr atomically. Native atomics where CUDA has them for the
// type; otherwise a compare-and-swap loop (on the aligned 32-bit word holding the element for
// 1- and 2-byte types).
template <ScatterMode M, class T>
__device__ __forceinline__ void cas_combine(T* addr, T v) {
  if constexpr (sizeof(T) == 8) {
    auto* w = reinterpret_cast<unsigned long long*>(addr);
    unsigned long long old = *w, assumed;
    do {
      assumed = old;
      T cur, nv;
      memcpy(&cur, &assumed, 8);
      nv = ops::scatter_combine<M, T>(cur, v);
      unsigned long long bits;
      memcpy(&bits, &nv, 8);
      old = atomicCAS(w, assumed, bits);
    } while (assumed != old);
  } else if constexpr (sizeof(T) == 4) {
    auto* w = reinterpret_cast<unsigned int*>(addr);
    unsigned int old = *w, assumed;
    do {
      assumed = old;
      T cur, nv;
      memcpy(&cur, &assumed, 4);
      nv = ops::scatter_combine<M, T>(cur, v);
      unsigned int bits;
      memcpy(&bits, &nv, 4);
      old = atomicCAS(w, assumed, bits);
    } while (assumed != old);
  } else {
    using B = std::conditional_t<sizeof(T) == 1, uint8_t, uint16_t>;
    uintptr_t at = reinterpret_cast<uintptr_t>(addr);
    auto* w = reinterpret_cast<unsigned int*>(at & ~uintptr_t{3});
    const unsigned shift = static_cast<unsigned>(at & 3) * 8;
    const unsigned mask = ((1u << (8 * sizeof(T))) - 1u) << shift;
    unsigned int old = *w, assumed;
    do {
      assumed = old;
      B b = static_cast<B>((assumed & mask) >> shift);
      T cur, nv;
      memcpy(&cur, &b, sizeof(T));
      nv = ops::scatter_combine<M, T>(cur, v);
      memcpy(&b, &nv, sizeof(T));
      old = atomicCAS(w, assumed, (assumed & ~mask) | (static_cast<unsigned>(b) << shift));
    } while (assumed != old);
  }
}

template <ScatterMode M, class T>
__device__ __forceinline__ void atomic_combine(T* addr, T v) {
  using LL = long long;
  using ULL = unsigned long long;
  if constexpr (M == ScatterMode::set) {
    *addr = v;
  } else if constexpr (M == ScatterMode::add && (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                                 std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>)) {
    atomicAdd(addr, v);
  } else if constexpr (M == ScatterMode::add && (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>)) {
    atomicAdd(reinterpret_cast<ULL*>(addr), static_cast<ULL>(v));  // two's complement: same bits
  } else if constexpr ((M == ScatterMode::max || M == ScatterMode::min) &&
                       (std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>)) {
    if constexpr (M == ScatterMode::max) {
      atomicMax(addr, v);
    } else {
      atomicMin(addr, v);
    }
  } else if constexpr ((M == ScatterMode::max || M == ScatterMode::min) && std::is_same_v<T, int64_t>) {
    if constexpr (M == ScatterMode::max) {
      atomicMax(reinterpret_cast<LL*>(addr), static_cast<LL>(v));
    } else {
      atomicMin(reinterpret_cast<LL*>(addr), static_cast<LL>(v));
    }
  } else if constexpr ((M == ScatterMode::max || M == ScatterMode::min) && std::is_same_v<T, uint64_t>) {
    if constexpr (M == ScatterMode::max) {
      atomicMax(reinterpret_cast<ULL*>(addr), static_cast<ULL>(v));
    } else {
      atomicMin(reinterpret_cast<ULL*>(addr), static_cast<ULL>(v));
    }
  } else {
    cas_combine<M, T>(addr, v);
  }
}

template <class T>
__global__ void scatter_dev(const T* __restrict__ upd, T* out, int64_t n, IndexParams p, ScatterMode mode) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t pos = i / p.n_block;
    int64_t base, ubase, a, u;
    if (!p.block_offset<false>(pos, base, ubase)) continue;
    p.block_pos(i - pos * p.n_block, a, u);
    T* dst = out + base + a;
    T v = upd[ubase + u];
    switch (mode) {  // uniform across the grid
      case ScatterMode::set: atomic_combine<ScatterMode::set, T>(dst, v); break;
      case ScatterMode::add: atomic_combine<ScatterMode::add, T>(dst, v); break;
      case ScatterMode::max: atomic_combine<ScatterMode::max, T>(dst, v); break;
      case ScatterMode::min: atomic_combine<ScatterMode::min, T>(dst, v); break;
      case ScatterMode::prod: atomic_combine<ScatterMode::prod, T>(dst, v); break;
    }
  }
}

void scatter_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& sc = static_cast<const Scatter&>(prim);
  const array& a = inputs[0];
  const array& upd = inputs.back();
  find_kernel(Backend::gpu, "copy")(prim, inputs, out);  // out = row-contiguous copy of a
  int64_t n = upd.size();
  if (n == 0) return;
  const int ni = upd.ndim() - a.ndim();
  Shape idx_shape(upd.shape().begin(), upd.shape().begin() + ni);
  Shape block(upd.shape().begin() + ni, upd.shape().end());
  Strides upd_idx(upd.strides().begin(), upd.strides().begin() + ni);
  Strides upd_block(upd.strides().begin() + ni, upd.strides().end());
  Strides os = row_major_strides(out.shape());
  IndexParams p =
      index_params(inputs, sc.axes, out, a.shape(), block, os, idx_shape, &upd_idx, os, upd_block, "scatter");
  KILN_DISPATCH_ALL("scatter", out.dtype(), {
    const T* u = in_ptr<T>(upd, out);
    scatter_dev<T><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(u, gpu_out<T>(out), n, p, sc.mode);
  });
  check_launch("scatter");
}

void diagonal_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  static_cast<const Diagonal&>(p).make_view(inputs[0], out);
}

}  // namespace

void register_gpu_index() {
  register_kernel(Backend::gpu, "concatenate", concatenate_kernel);
  register_kernel(Backend::gpu, "slice_update", slice_update_kernel);
  register_kernel(Backend::gpu, "dynamic_slice_update", dynamic_slice_update_kernel);
  register_kernel(Backend::gpu, "gather", gather_kernel);
  register_kernel(Backend::gpu, "scatter", scatter_kernel);
  register_kernel(Backend::gpu, "diagonal", diagonal_kernel);
}

}  // namespace kiln::cuda
