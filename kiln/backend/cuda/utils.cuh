// Helpers shared by the CUDA kernels: output allocation, input pointers, strided indexing and
// launch checks.
#pragma once

#include <cuda_runtime.h>

#include <array>

#include "kiln/array.h"
#include "kiln/backend/cuda/cuda_backend.h"

namespace kiln::cuda {

// Device pointer to the first element of an input, copied to the GPU first if needed.
template <class T>
const T* in_ptr(const array& in, const array& out) {
  return static_cast<const T*>(in.buffer()->read_gpu(out.device().index, out.stream().index)) + in.offset();
}

// Gives `out` a new row-contiguous GPU buffer and returns its first element.
template <class T>
T* alloc_out(array& out) {
  out.set_data(std::make_shared<Buffer>(out.nbytes()));
  return static_cast<T*>(out.buffer()->write_gpu(out.device().index, out.stream().index));
}

// A new GPU buffer with the given dense strides.
template <class T>
T* alloc_out_like(array& out, const Strides& strides, int64_t data_size) {
  out.set_data(std::make_shared<Buffer>(data_size * sizeof(T)), strides, 0);
  return static_cast<T*>(out.buffer()->write_gpu(out.device().index, out.stream().index));
}

inline void check_launch(const char* op) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) check(err, op);
}

inline int num_sms(const array& out) { return device_props(out.device().index).multiProcessorCount; }

inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 0x7fffffff ? 0x7fffffff : b));
}

// Shape and strides of up to N operands, with mergeable axes merged (see cpu::collapse), passed
// to kernels by value. kMaxDims bounds the dimensions after merging.
inline constexpr int kMaxDims = 10;

template <int N>
struct StridedLayout {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];

  // Element offsets of flat (row-major) index i for each operand.
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = i % shape[d];
      i /= shape[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

template <int N>
StridedLayout<N> make_layout(const Shape& shape, const std::array<const Strides*, N>& strides) {
  StridedLayout<N> l{};
  l.ndim = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = l.ndim > 0;
    for (int k = 0; merge && k < N; ++k) {
      if (l.strides[k][l.ndim - 1] != (*strides[k])[d] * shape[d]) merge = false;
    }
    if (merge) {
      l.shape[l.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) l.strides[k][l.ndim - 1] = (*strides[k])[d];
    } else {
      if (l.ndim == kMaxDims) fail<ValueError>("[cuda] arrays of more than ", kMaxDims, " non-mergeable axes are not supported");
      l.shape[l.ndim] = shape[d];
      for (int k = 0; k < N; ++k) l.strides[k][l.ndim] = (*strides[k])[d];
      ++l.ndim;
    }
  }
  if (l.ndim == 0) {
    l.ndim = 1;
    l.shape[0] = 1;
    for (int k = 0; k < N; ++k) l.strides[k][0] = 0;
  }
  return l;
}

// When both operands' innermost axis is contiguous and every other stride, the innermost size and
// both pointers are multiples of 16 bytes, rewrites l in units of 16 bytes and returns true: the
// copy then moves whole vectors (a slice of a row, or a transposition of whole head rows).
inline bool widen_to_16_bytes(StridedLayout<2>& l, size_t item, const void* src, const void* dst) {
  if (item >= 16 || 16 % item != 0) return false;
  const int64_t w = 16 / static_cast<int64_t>(item);
  const int last = l.ndim - 1;
  if (reinterpret_cast<uintptr_t>(src) % 16 || reinterpret_cast<uintptr_t>(dst) % 16) return false;
  if (l.strides[0][last] != 1 || l.strides[1][last] != 1 || l.shape[last] % w != 0) return false;
  for (int k = 0; k < 2; ++k) {
    for (int d = 0; d < last; ++d) {
      if (l.strides[k][d] % w != 0) return false;
    }
  }
  l.shape[last] /= w;
  for (int k = 0; k < 2; ++k) {
    for (int d = 0; d < last; ++d) l.strides[k][d] /= w;
  }
  return true;
}

// A fixed number of elements loaded or stored as one aligned vector.
template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace kiln::cuda
