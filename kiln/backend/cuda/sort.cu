// CUDA kernels: sort, argsort, partition and argpartition, on cub::DeviceSegmentedSort.
//
// Each value is first mapped to an unsigned integer of its width whose order is the sort order
// (all NaNs to the largest key, so they go last and tie, as on the CPU), widened to 32 bits (64
// for 8-byte dtypes), so cub sorts only two key types (that keeps this file's compile time down).
// Many rows sort in one segmented sort; a few long rows sort one at a time with the device-wide
// radix sort (the segmented sort gives each long segment to a single block), limited to the key's
// real bits. The sorted keys map back to values. The gather that makes the keys reads any input
// layout, so rows come out contiguous whatever the axis. Partition and argpartition sort fully,
// which meets their contract.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <cstring>
#include <type_traits>

#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/memory.h"
#include "kiln/primitives_sort.h"

namespace kiln::cuda {

namespace {

template <size_t N>
struct uint_of;
template <>
struct uint_of<1> {
  using type = uint8_t;
};
template <>
struct uint_of<2> {
  using type = uint16_t;
};
template <>
struct uint_of<4> {
  using type = uint32_t;
};
template <>
struct uint_of<8> {
  using type = uint64_t;
};

template <class T>
constexpr bool is_float_v =
    std::is_floating_point_v<T> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>;

// Exponent mask of the float formats, to tell NaNs (all exponent bits, nonzero mantissa).
template <class T>
struct FloatBits;
template <>
struct FloatBits<float16_t> {
  static constexpr uint16_t exp = 0x7c00u;
};
template <>
struct FloatBits<bfloat16_t> {
  static constexpr uint16_t exp = 0x7f80u;
};
template <>
struct FloatBits<float> {
  static constexpr uint32_t exp = 0x7f800000u;
};
template <>
struct FloatBits<double> {
  static constexpr uint64_t exp = 0x7ff0000000000000ull;
};

// The order-preserving key of a value. `merge_zero` maps -0 to +0 so that the two tie (argsort
// must keep them in input order, as the CPU does); sort keeps the sign.
template <class T, class U>
__device__ __forceinline__ U encode(T v, bool merge_zero) {
  U u;
  memcpy(&u, &v, sizeof(U));
  constexpr U sign = U(1) << (8 * sizeof(U) - 1);
  if constexpr (is_float_v<T>) {
    U mag = u & U(~sign);
    if (mag > FloatBits<T>::exp) return U(~U(0));  // every NaN: the largest key
    if (merge_zero && mag == 0) u = 0;
    return (u & sign) ? U(~u) : U(u | sign);
  } else if constexpr (std::is_signed_v<T>) {
    return U(u ^ sign);
  } else {
    return u;  // unsigned integers and bool (0 or 1)
  }
}

template <class T, class U>
__device__ __forceinline__ T decode(U k) {
  constexpr U sign = U(1) << (8 * sizeof(U) - 1);
  U u;
  if constexpr (is_float_v<T>) {
    u = (k & sign) ? U(k ^ sign) : U(~k);  // the NaN key comes back as a positive NaN
  } else if constexpr (std::is_signed_v<T>) {
    u = U(k ^ sign);
  } else {
    u = k;
  }
  T v;
  memcpy(&v, &u, sizeof(U));
  return v;
}

// The key type cub sorts for T: 32 bits, or 64 for 8-byte dtypes. Zero-extending the narrow key
// keeps its order.
template <class T>
using wide_key_t = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;

// keys[i] = key of the i-th element in row-major order of the input with the axis moved last;
// with idx, also idx[i] = i mod n (the position within the row).
template <class T>
__global__ void encode_rows(const T* in, wide_key_t<T>* keys, uint32_t* idx, int64_t total, int64_t n,
                            StridedLayout<1> l, bool merge_zero) {
  using U = typename uint_of<sizeof(T)>::type;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[1];
    l.offsets(i, off);
    keys[i] = encode<T, U>(in[off[0]], merge_zero);
    if (idx) idx[i] = static_cast<uint32_t>(i % n);
  }
}

template <class T>
__global__ void decode_keys(const wide_key_t<T>* keys, T* out, int64_t total) {
  using U = typename uint_of<sizeof(T)>::type;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = decode<T, U>(static_cast<U>(keys[i]));
  }
}

__global__ void row_offsets(int64_t* offsets, int64_t rows, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i <= rows;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    offsets[i] = i * n;
  }
}

// Stream-ordered scratch memory on out's stream, freed (stream-ordered) on scope exit.
class Scratch {
 public:
  Scratch(const array& out, size_t bytes) : out_(out), bytes_(bytes) {
    if (bytes_) ptr_ = allocator::gpu_malloc(bytes_, out.device().index, out.stream().index);
  }
  ~Scratch() {
    if (ptr_) allocator::gpu_free(ptr_, bytes_, out_.device().index, out_.stream().index);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  char* get() const { return static_cast<char*>(ptr_); }

 private:
  const array& out_;
  size_t bytes_;
  void* ptr_ = nullptr;
};

inline size_t round_up(size_t b) { return (b + 255) & ~size_t(255); }

// Sorts keys (and with `arg`, stable indices) one segment per row. K is uint32_t or uint64_t.
template <class K>
void segmented_sort(bool arg, const K* keys_in, K* keys_out, const uint32_t* idx_in, uint32_t* idx_out, int64_t total,
                    int64_t rows, const int64_t* offsets, void* temp, size_t& temp_bytes, cudaStream_t s) {
  cudaError_t err;
  if (arg) {
    err = cub::DeviceSegmentedSort::StableSortPairs(temp, temp_bytes, keys_in, keys_out, idx_in, idx_out, total, rows,
                                                    offsets, offsets + 1, s);
  } else {
    err = cub::DeviceSegmentedSort::SortKeys(temp, temp_bytes, keys_in, keys_out, total, rows, offsets, offsets + 1, s);
  }
  check(err, arg ? "argsort" : "sort");
}

// Sorts one row of n keys (and with `arg`, stable indices) with the device-wide radix sort,
// looking only at bits [0, end_bit).
template <class K>
void radix_sort(bool arg, const K* keys_in, K* keys_out, const uint32_t* idx_in, uint32_t* idx_out, int64_t n,
                int end_bit, void* temp, size_t& temp_bytes, cudaStream_t s) {
  cudaError_t err;
  if (arg) {
    err = cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, idx_in, idx_out, n, 0, end_bit, s);
  } else {
    err = cub::DeviceRadixSort::SortKeys(temp, temp_bytes, keys_in, keys_out, n, 0, end_bit, s);
  }
  check(err, arg ? "argsort" : "sort");
}

template <class T>
void sort_rows(const array& in, array& out, int axis, bool arg, const char* name) {
  using K = wide_key_t<T>;
  Strides out_strides = axis_last_strides(out.shape(), axis);
  if (out.size() == 0) {
    if (arg) alloc_out_like<uint32_t>(out, out_strides, 0);
    else alloc_out_like<T>(out, out_strides, 0);
    return;
  }
  cudaStream_t s = stream_of(out);
  const T* src = in_ptr<T>(in, out);
  const int64_t total = out.size(), n = out.shape(axis), rows = total / n;

  // The input read in row-major order of its shape with the axis moved last.
  Shape shape;
  Strides strides;
  for (int d = 0; d < in.ndim(); ++d) {
    if (d == axis) continue;
    shape.push_back(in.shape(d));
    strides.push_back(in.strides()[d]);
  }
  shape.push_back(n);
  strides.push_back(in.strides()[axis]);
  auto layout = make_layout<1>(shape, {&strides});

  // Scratch: keys, sorted keys, (argsort) row positions, row offsets, cub's storage.
  const bool per_row = n >= (int64_t{1} << 16) && rows <= 16;
  const int end_bit = 8 * static_cast<int>(sizeof(T));
  size_t cub_bytes = 0;
  if (per_row) {
    radix_sort<K>(arg, nullptr, nullptr, nullptr, nullptr, n, end_bit, nullptr, cub_bytes, s);
  } else {
    segmented_sort<K>(arg, nullptr, nullptr, nullptr, nullptr, total, rows, nullptr, nullptr, cub_bytes, s);
  }
  size_t keys_bytes = round_up(total * sizeof(K)), idx_bytes = arg ? round_up(total * sizeof(uint32_t)) : 0;
  size_t off_bytes = per_row ? 0 : round_up((rows + 1) * sizeof(int64_t));
  Scratch scratch(out, 2 * keys_bytes + idx_bytes + off_bytes + cub_bytes);
  char* p = scratch.get();
  K* keys = reinterpret_cast<K*>(p);
  p += keys_bytes;
  K* keys_sorted = reinterpret_cast<K*>(p);
  p += keys_bytes;
  uint32_t* idx = arg ? reinterpret_cast<uint32_t*>(p) : nullptr;
  p += idx_bytes;
  int64_t* offsets = reinterpret_cast<int64_t*>(p);
  p += off_bytes;
  void* cub_temp = p;

  encode_rows<T><<<strided_blocks(out, total), kThreads, 0, s>>>(src, keys, idx, total, n, layout, arg);
  check_launch(name);
  uint32_t* idx_out = arg ? alloc_out_like<uint32_t>(out, out_strides, total) : nullptr;
  if (per_row) {
    // Rows run in stream order, so they can share cub's scratch.
    for (int64_t r = 0; r < rows; ++r) {
      int64_t o = r * n;
      radix_sort<K>(arg, keys + o, keys_sorted + o, arg ? idx + o : nullptr, arg ? idx_out + o : nullptr, n, end_bit,
                    cub_temp, cub_bytes, s);
    }
  } else {
    row_offsets<<<strided_blocks(out, rows + 1), kThreads, 0, s>>>(offsets, rows, n);
    check_launch(name);
    segmented_sort<K>(arg, keys, keys_sorted, idx, idx_out, total, rows, offsets, cub_temp, cub_bytes, s);
  }
  if (!arg) {
    T* dst = alloc_out_like<T>(out, out_strides, total);
    decode_keys<T><<<strided_blocks(out, total), kThreads, 0, s>>>(keys_sorted, dst, total);
    check_launch(name);
  }
}

void sort_any(const array& in, array& out, int axis, bool arg, const char* name) {
  KILN_DISPATCH_REAL(name, in.dtype(), { sort_rows<T>(in, out, axis, arg, name); });
}

void sort_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_any(inputs[0], out, static_cast<const Sort&>(p).axis, false, "sort");
}

void argsort_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_any(inputs[0], out, static_cast<const ArgSort&>(p).axis, true, "argsort");
}

void partition_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_any(inputs[0], out, static_cast<const Partition&>(p).axis, false, "partition");
}

void argpartition_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  sort_any(inputs[0], out, static_cast<const ArgPartition&>(p).axis, true, "argpartition");
}

}  // namespace

void register_gpu_sort() {
  register_kernel(Backend::gpu, "sort", sort_kernel);
  register_kernel(Backend::gpu, "argsort", argsort_kernel);
  register_kernel(Backend::gpu, "partition", partition_kernel);
  register_kernel(Backend::gpu, "argpartition", argpartition_kernel);
}

}  // namespace kiln::cuda
