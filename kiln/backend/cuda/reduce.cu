// CUDA kernels of the reductions (sum, prod, max, min, all, any), the arg-reductions and the fused
// softmax. The layout plan (reduce::reduce_layout) picks the kernel of a reduction:
//  rows (each output's elements contiguous): a thread, a warp or a block per output by length,
//    reading 16-byte vectors; long rows with few outputs are split over several blocks (about
//    four per SM in all) whose partial results a second kernel combines, so a full reduction is
//    a deterministic two-pass reduction;
//  columns (neighbouring outputs contiguous): threads across the columns, each reading 16 bytes
//    of neighbouring columns per reduced row (coalesced), rows spread over the block and, when
//    there are few outputs, over several blocks;
//  general: like rows, gathering each element through the strides.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cuda/utils.cuh"
#include "kiln/backend/cuda/warp.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/memory.h"
#include "kiln/primitives_reduce.h"

namespace kiln::cuda {

namespace {

using reduce::ReduceLayout;

constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / 32;

template <class T>
constexpr int vec_width() {
  return static_cast<int>(16 / sizeof(T));
}

template <class V>
__device__ __forceinline__ V shfl_xor_any(V v, int mask) {
  return shuffle_words(v, [mask](auto w) { return __shfl_xor_sync(0xffffffffu, w, mask); });
}

// Butterfly reduction: every lane ends with the same value (each step combines a commutative
// pair, so both lanes compute it identically).
template <class Op, class A>
__device__ __forceinline__ A warp_reduce(A v, Op op) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = op(v, shfl_xor_any(v, m));
  return v;
}

// Block-wide reduction (blockDim.x a multiple of 32); the result is valid in thread 0. `smem`
// holds 32 values.
template <class Op, class A>
__device__ __forceinline__ A block_reduce(A v, Op op, A* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? smem[lane] : Op::init();
    v = warp_reduce(v, op);
  }
  return v;
}

// Shared memory for n values of a type that may have a default member initializer (which
// __shared__ variables cannot have).
#define KILN_SHARED_ARRAY(A, name, n)                          \
  __shared__ __align__(16) unsigned char name##_raw[(n) * sizeof(A)]; \
  A* name = reinterpret_cast<A*>(name##_raw)

// Reduces p[tid], p[tid + nt], ... of a contiguous span: unaligned head elements one by one, then
// 16-byte vectors, four in flight per thread, then the tail.
template <class Op, class T>
__device__ __forceinline__ typename Op::Acc reduce_span(const T* __restrict__ p, int64_t len, int64_t tid, int64_t nt) {
  using A = typename Op::Acc;
  constexpr int N = vec_width<T>();
  Op op;
  A acc = Op::init();
  int64_t head = static_cast<int64_t>(((16 - (reinterpret_cast<uintptr_t>(p) & 15)) & 15) / sizeof(T));
  if (head > len) head = len;
  for (int64_t i = tid; i < head; i += nt) acc = op(acc, Op::load(p[i]));
  const Vec<T, N>* v = reinterpret_cast<const Vec<T, N>*>(p + head);
  const int64_t nv = (len - head) / N;
  int64_t i = tid;
  for (; i + 3 * nt < nv; i += 4 * nt) {
    Vec<T, N> a = v[i], b = v[i + nt], c = v[i + 2 * nt], d = v[i + 3 * nt];
#pragma unroll
    for (int k = 0; k < N; ++k) acc = op(acc, Op::load(a.v[k]));
#pragma unroll
    for (int k = 0; k < N; ++k) acc = op(acc, Op::load(b.v[k]));
#pragma unroll
    for (int k = 0; k < N; ++k) acc = op(acc, Op::load(c.v[k]));
#pragma unroll
    for (int k = 0; k < N; ++k) acc = op(acc, Op::load(d.v[k]));
  }
  for (; i < nv; i += nt) {
    Vec<T, N> a = v[i];
#pragma unroll
    for (int k = 0; k < N; ++k) acc = op(acc, Op::load(a.v[k]));
  }
  for (int64_t j = head + nv * N + tid; j < len; j += nt) acc = op(acc, Op::load(p[j]));
  return acc;
}

// rows and general layouts.
struct RowPlan {
  StridedLayout<1> kept;  // output index -> offset of its first element
  StridedLayout<1> red;   // reduced index -> offset (general layout only)
  int64_t n_out;
  int64_t len;  // reduced elements per output
  int64_t seg;  // reduced elements per block when rows are split
  int nsplit;
  bool contig;  // rows layout: the reduced elements are contiguous
};

// Reduces the elements [b, e) of the output whose first element is x.
template <class Op, class T>
__device__ __forceinline__ typename Op::Acc reduce_part(const T* __restrict__ x, const RowPlan& p, int64_t b, int64_t e,
                                                        int64_t tid, int64_t nt) {
  if (p.contig) return reduce_span<Op, T>(x + b, e - b, tid, nt);
  Op op;
  typename Op::Acc acc = Op::init();
  for (int64_t j = b + tid; j < e; j += nt) {
    int64_t off[1];
    p.red.offsets(j, off);
    acc = op(acc, Op::load(x[off[0]]));
  }
  return acc;
}

// Short reductions: a thread per output.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock) reduce_thread_kernel(const T* __restrict__ x, RowPlan p, Out* __restrict__ out) {
  Op op;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < p.n_out;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t base[1];
    p.kept.offsets(o, base);
    typename Op::Acc acc = Op::init();
    for (int64_t j = 0; j < p.len; ++j) {
      int64_t off[1] = {j};
      if (!p.contig) p.red.offsets(j, off);
      acc = op(acc, Op::load(x[base[0] + off[0]]));
    }
    out[o] = convert<Out>(acc);
  }
}

// Medium reductions: a warp per output.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock) reduce_warp_kernel(const T* __restrict__ x, RowPlan p, Out* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (o >= p.n_out) return;  // the whole warp leaves together
  int64_t base[1];
  p.kept.offsets(o, base);
  auto acc = reduce_part<Op, T>(x + base[0], p, 0, p.len, lane, 32);
  acc = warp_reduce(acc, Op{});
  if (lane == 0) out[o] = convert<Out>(acc);
}

// Long reductions: a block per (output, split). With one split the block writes the output,
// otherwise its partial result.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock)
    reduce_block_kernel(const T* __restrict__ x, RowPlan p, Out* __restrict__ out, typename Op::Acc* __restrict__ partial) {
  using A = typename Op::Acc;
  KILN_SHARED_ARRAY(A, smem, 32);
  const int64_t o = blockIdx.x / p.nsplit;
  const int64_t split = blockIdx.x % p.nsplit;
  int64_t base[1];
  p.kept.offsets(o, base);
  const int64_t b = split * p.seg, e = min(p.len, b + p.seg);
  A acc = reduce_part<Op, T>(x + base[0], p, b, e, threadIdx.x, blockDim.x);
  acc = block_reduce(acc, Op{}, smem);
  if (threadIdx.x == 0) {
    if (p.nsplit == 1) {
      out[o] = convert<Out>(acc);
    } else {
      partial[blockIdx.x] = acc;
    }
  }
}

// Second pass: out[o] = combine of partial[o * nsplit ...], a warp per output, in a fixed order.
template <class Op, class Out>
__global__ void __launch_bounds__(kBlock) finalize_kernel(const typename Op::Acc* __restrict__ partial, int64_t n_out,
                                                          int nsplit, Out* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (o >= n_out) return;
  Op op;
  typename Op::Acc acc = Op::init();
  for (int j = lane; j < nsplit; j += 32) acc = op(acc, partial[o * nsplit + j]);
  acc = warp_reduce(acc, op);
  if (lane == 0) out[o] = convert<Out>(acc);
}

// columns layout.
struct ColPlan {
  StridedLayout<1> outer;  // outer index -> offset (the kept axes but the last)
  StridedLayout<1> red;    // reduced index -> offset
  int64_t inner;           // length of the last kept axis (stride 1)
  int64_t n_red;
  int64_t rows_per_split;
  int nsplit;
  int tiles;  // column tiles per outer index
  int tw;     // threads across the columns of a tile (a power of two, at most 32)
  bool vec;   // every row start is 16-byte aligned: whole vectors may be loaded
};

template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock)
    reduce_col_kernel(const T* __restrict__ x, ColPlan p, Out* __restrict__ out, typename Op::Acc* __restrict__ partial) {
  using A = typename Op::Acc;
  constexpr int N = vec_width<T>();
  KILN_SHARED_ARRAY(A, smem, kBlock * N);
  Op op;
  const int tw = p.tw, rl = kBlock / tw;
  const int cx = threadIdx.x % tw, ry = threadIdx.x / tw;
  const int64_t split = blockIdx.x % p.nsplit;
  const int64_t tile = (blockIdx.x / p.nsplit) % p.tiles;
  const int64_t o = blockIdx.x / p.nsplit / p.tiles;
  const int64_t col0 = (tile * tw + cx) * N;
  int64_t base[1];
  p.outer.offsets(o, base);
  const int64_t rb = split * p.rows_per_split;
  const int64_t re = min(p.n_red, rb + p.rows_per_split);
  A acc[N];
#pragma unroll
  for (int k = 0; k < N; ++k) acc[k] = Op::init();
  if (col0 < p.inner) {
    const T* xc = x + base[0] + col0;
    if (p.vec && col0 + N <= p.inner && p.red.ndim == 1) {
      // The common case: whole aligned vectors, rows a fixed stride apart. Unrolled so that each
      // thread keeps several loads in flight.
      const int64_t rs = p.red.strides[0][0];
#pragma unroll 4
      for (int64_t r = rb + ry; r < re; r += rl) {
        Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xc + r * rs);
#pragma unroll
        for (int k = 0; k < N; ++k) acc[k] = op(acc[k], Op::load(v.v[k]));
      }
    } else {
      for (int64_t r = rb + ry; r < re; r += rl) {
        int64_t off[1] = {r * p.red.strides[0][0]};
        if (p.red.ndim > 1) p.red.offsets(r, off);
        const T* q = xc + off[0];
#pragma unroll
        for (int k = 0; k < N; ++k) {
          if (col0 + k < p.inner) acc[k] = op(acc[k], Op::load(q[k]));
        }
      }
    }
  }
  // Combine the row lanes: a tree over ry in shared memory.
#pragma unroll
  for (int k = 0; k < N; ++k) smem[(ry * tw + cx) * N + k] = acc[k];
  __syncthreads();
  for (int s = rl / 2; s > 0; s >>= 1) {
    if (ry < s) {
#pragma unroll
      for (int k = 0; k < N; ++k) {
        A& mine = smem[(ry * tw + cx) * N + k];
        mine = op(mine, smem[((ry + s) * tw + cx) * N + k]);
      }
    }
    __syncthreads();
  }
  if (ry == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      int64_t col = col0 + k;
      if (col < p.inner) {
        int64_t oi = o * p.inner + col;
        A v = smem[cx * N + k];
        if (p.nsplit == 1) {
          out[oi] = convert<Out>(v);
        } else {
          partial[oi * p.nsplit + split] = v;
        }
      }
    }
  }
}

template <class Out>
__global__ void fill_kernel(Out* __restrict__ out, int64_t n, Out v) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = v;
  }
}

// Stream-ordered scratch memory for partial results, freed after the kernels that use it.
class Scratch {
 public:
  Scratch(size_t bytes, const array& out) : bytes_(bytes), device_(out.device().index), stream_(out.stream().index) {
    ptr_ = allocator::gpu_malloc(bytes_, device_, stream_);
  }
  ~Scratch() { allocator::gpu_free(ptr_, bytes_, device_, stream_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class V>
  V* as() const {
    return static_cast<V*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
  int device_, stream_;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline unsigned grid_cap(const array& out, int64_t blocks) {
  int64_t cap = static_cast<int64_t>(num_sms(out)) * 16;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, cap)));
}

// How many blocks to split `work` items of `len` reduced elements each over, so that about four
// blocks per SM are busy; each block keeps at least `min_per_block` elements.
inline int choose_splits(const array& out, int64_t work, int64_t len, int64_t min_per_block) {
  int64_t target = 4 * static_cast<int64_t>(num_sms(out));
  if (work >= target) return 1;
  int64_t want = ceil_div(target, work);
  int64_t most = std::max<int64_t>(1, len / min_per_block);
  return static_cast<int>(std::min(want, most));
}

template <class Op, class Out>
void launch_finalize(const typename Op::Acc* partial, int64_t n_out, int nsplit, Out* dst, cudaStream_t s, const char* name) {
  finalize_kernel<Op, Out><<<static_cast<unsigned>(ceil_div(n_out, kWarpsPerBlock)), kBlock, 0, s>>>(partial, n_out, nsplit, dst);
  check_launch(name);
}

template <class Op, class T, class Out>
void reduce_rows(const T* x, const ReduceLayout& l, Out* dst, const array& out, const char* name) {
  using A = typename Op::Acc;
  cudaStream_t s = stream_of(out);
  RowPlan p{};
  p.kept = make_layout<1>(l.kept_shape, {&l.kept_strides});
  p.red = make_layout<1>(l.red_shape, {&l.red_strides});
  p.contig = l.kind == ReduceLayout::rows;
  p.n_out = l.outputs;
  p.len = l.reduced;
  p.seg = p.len;
  p.nsplit = 1;
  if (p.len <= 16) {
    reduce_thread_kernel<Op, T, Out><<<grid_cap(out, ceil_div(p.n_out, kBlock)), kBlock, 0, s>>>(x, p, dst);
    check_launch(name);
    return;
  }
  // Up to 8 KiB per output a warp streams it well; a block would spend more on its final
  // combine than on reading.
  if (p.len * static_cast<int64_t>(sizeof(T)) <= 8192) {
    reduce_warp_kernel<Op, T, Out><<<static_cast<unsigned>(ceil_div(p.n_out, kWarpsPerBlock)), kBlock, 0, s>>>(x, p, dst);
    check_launch(name);
    return;
  }
  p.nsplit = choose_splits(out, p.n_out, p.len, 16 * kBlock);
  if (p.nsplit > 1) {
    p.seg = ceil_div(ceil_div(p.len, p.nsplit), 16) * 16;  // whole vectors per split
    p.nsplit = static_cast<int>(ceil_div(p.len, p.seg));
  }
  unsigned blocks = static_cast<unsigned>(p.n_out * p.nsplit);
  if (p.nsplit == 1) {
    reduce_block_kernel<Op, T, Out><<<blocks, kBlock, 0, s>>>(x, p, dst, nullptr);
    check_launch(name);
    return;
  }
  Scratch part(sizeof(A) * p.n_out * p.nsplit, out);
  reduce_block_kernel<Op, T, Out><<<blocks, kBlock, 0, s>>>(x, p, dst, part.as<A>());
  check_launch(name);
  launch_finalize<Op, Out>(part.as<A>(), p.n_out, p.nsplit, dst, s, name);
}

template <class Op, class T, class Out>
void reduce_columns(const T* x, const ReduceLayout& l, Out* dst, const array& out, const char* name) {
  using A = typename Op::Acc;
  constexpr int N = vec_width<T>();
  cudaStream_t s = stream_of(out);
  Shape outer_shape(l.kept_shape.begin(), l.kept_shape.end() - 1);
  Strides outer_strides(l.kept_strides.begin(), l.kept_strides.end() - 1);
  ColPlan p{};
  p.outer = make_layout<1>(outer_shape, {&outer_strides});
  p.red = make_layout<1>(l.red_shape, {&l.red_strides});
  p.inner = l.kept_shape.back();
  p.n_red = l.reduced;
  int64_t col_threads = ceil_div(p.inner, N);
  p.tw = 1;
  while (p.tw < col_threads && p.tw < 32) p.tw <<= 1;
  p.tiles = static_cast<int>(ceil_div(p.inner, static_cast<int64_t>(p.tw) * N));
  const int64_t n_outer = l.outputs / p.inner;
  const int rl = kBlock / p.tw;
  p.nsplit = choose_splits(out, n_outer * p.tiles, p.n_red, 8 * rl);
  p.rows_per_split = ceil_div(p.n_red, p.nsplit);
  p.nsplit = static_cast<int>(ceil_div(p.n_red, p.rows_per_split));
  auto multiple = [](const Strides& st) {
    return std::all_of(st.begin(), st.end(), [](int64_t v) { return v % N == 0; });
  };
  p.vec = aligned16(x) && multiple(outer_strides) && multiple(l.red_strides);
  unsigned blocks = static_cast<unsigned>(n_outer * p.tiles * p.nsplit);
  if (p.nsplit == 1) {
    reduce_col_kernel<Op, T, Out><<<blocks, kBlock, 0, s>>>(x, p, dst, nullptr);
    check_launch(name);
    return;
  }
  Scratch part(sizeof(A) * l.outputs * p.nsplit, out);
  reduce_col_kernel<Op, T, Out><<<blocks, kBlock, 0, s>>>(x, p, dst, part.as<A>());
  check_launch(name);
  launch_finalize<Op, Out>(part.as<A>(), l.outputs, p.nsplit, dst, s, name);
}

template <class Op, class T, class Out>
void reduce_typed(const array& in, array& out, const std::vector<int>& axes, const char* name) {
  Out* dst = alloc_out<Out>(out);
  const int64_t n_out = out.size();
  if (n_out == 0) return;
  cudaStream_t s = stream_of(out);
  auto l = reduce::reduce_layout(in.shape(), in.strides(), axes);
  if (l.reduced == 0) {
    fill_kernel<Out><<<grid_cap(out, ceil_div(n_out, kBlock)), kBlock, 0, s>>>(dst, n_out, convert<Out>(Op::init()));
    check_launch(name);
    return;
  }
  const T* x = in_ptr<T>(in, out);
  if (l.kind == ReduceLayout::columns) {
    reduce_columns<Op, T, Out>(x, l, dst, out, name);
  } else {
    reduce_rows<Op, T, Out>(x, l, dst, out, name);
  }
}

// The output is the op's natural dtype; sum of a 16-bit float may also write float32 (mean asks
// for it). Other pairs are not instantiated.
template <class Op, class T>
void reduce_run(const Reduce& p, const array& in, array& out) {
  using Out = typename Op::Out;
  if (out.dtype() == dtype_of<Out>::value) {
    reduce_typed<Op, T, Out>(in, out, p.axes, p.name());
    return;
  }
  if constexpr (std::is_same_v<Op, reduce::Sum<T>> && !std::is_same_v<Out, typename Op::Acc>) {
    if (out.dtype() == float32) {
      reduce_typed<Op, T, float>(in, out, p.axes, p.name());
      return;
    }
  }
  fail<TypeError>("[", p.name(), "] cannot reduce ", in.dtype(), " into ", out.dtype());
}

void reduce_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Reduce&>(prim);
  const array& in = inputs[0];
  const char* name = p.name();
  switch (p.op) {
    case ReduceOp::sum:
      KILN_DISPATCH_ALL(name, in.dtype(), { reduce_run<reduce::Sum<T>, T>(p, in, out); });
      break;
    case ReduceOp::prod:
      KILN_DISPATCH_ALL(name, in.dtype(), { reduce_run<reduce::Prod<T>, T>(p, in, out); });
      break;
    case ReduceOp::max:
      KILN_DISPATCH_REAL(name, in.dtype(), { reduce_run<reduce::Max<T>, T>(p, in, out); });
      break;
    case ReduceOp::min:
      KILN_DISPATCH_REAL(name, in.dtype(), { reduce_run<reduce::Min<T>, T>(p, in, out); });
      break;
    case ReduceOp::all:
      if (in.dtype() != bool_) detail::unsupported_dtype(name, in.dtype());
      reduce_run<reduce::All, bool>(p, in, out);
      break;
    case ReduceOp::any:
      if (in.dtype() != bool_) detail::unsupported_dtype(name, in.dtype());
      reduce_run<reduce::Any, bool>(p, in, out);
      break;
  }
}

// ---- argmax / argmin ----

struct ArgPlan {
  StridedLayout<1> kept;
  int64_t n_out;
  int64_t len;     // length of the axis
  int64_t stride;  // its stride
  int64_t seg;
  int nsplit;
};

template <bool IsMax, class A>
__device__ __forceinline__ void arg_init(A& v, uint32_t& i) {
  v = IsMax ? reduce::lowest_value<A>() : reduce::highest_value<A>();
  i = 0xffffffffu;  // loses every tie, so any real element replaces it
}

template <bool IsMax, class A>
__device__ __forceinline__ void arg_warp_reduce(A& v, uint32_t& i) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) {
    A ov = shfl_xor_any(v, m);
    uint32_t oi = __shfl_xor_sync(0xffffffffu, i, m);
    if (reduce::arg_better<IsMax>(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

// A thread per output, walking the axis with its stride (coalesced when outputs are contiguous).
template <bool IsMax, class T>
__global__ void __launch_bounds__(kBlock) arg_thread_kernel(const T* __restrict__ x, ArgPlan p, uint32_t* __restrict__ out) {
  using A = acc_t<T>;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < p.n_out;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t base[1];
    p.kept.offsets(o, base);
    const T* q = x + base[0];
    A best = static_cast<A>(q[0]);
    uint32_t bi = 0;
    for (int64_t k = 1; k < p.len; ++k) {
      A v = static_cast<A>(q[k * p.stride]);
      if (reduce::arg_better<IsMax>(v, static_cast<uint32_t>(k), best, bi)) {
        best = v;
        bi = static_cast<uint32_t>(k);
      }
    }
    out[o] = bi;
  }
}

// A warp per output along a contiguous axis.
template <bool IsMax, class T>
__global__ void __launch_bounds__(kBlock) arg_warp_kernel(const T* __restrict__ x, ArgPlan p, uint32_t* __restrict__ out) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (o >= p.n_out) return;
  int64_t base[1];
  p.kept.offsets(o, base);
  const T* q = x + base[0];
  A best;
  uint32_t bi;
  arg_init<IsMax>(best, bi);
  for (int64_t k = lane; k < p.len; k += 32) {
    A v = static_cast<A>(q[k]);
    if (reduce::arg_better<IsMax>(v, static_cast<uint32_t>(k), best, bi)) {
      best = v;
      bi = static_cast<uint32_t>(k);
    }
  }
  arg_warp_reduce<IsMax>(best, bi);
  if (lane == 0) out[o] = bi;
}

// A block per (output, split) along a contiguous axis; splits write partial (value, index) pairs.
template <bool IsMax, class T>
__global__ void __launch_bounds__(kBlock) arg_block_kernel(const T* __restrict__ x, ArgPlan p, uint32_t* __restrict__ out,
                                                           acc_t<T>* __restrict__ part_v, uint32_t* __restrict__ part_i) {
  using A = acc_t<T>;
  __shared__ A sv[32];
  __shared__ uint32_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t o = blockIdx.x / p.nsplit, split = blockIdx.x % p.nsplit;
  int64_t base[1];
  p.kept.offsets(o, base);
  const T* q = x + base[0];
  const int64_t b = split * p.seg, e = min(p.len, b + p.seg);
  A best;
  uint32_t bi;
  arg_init<IsMax>(best, bi);
  for (int64_t k = b + threadIdx.x; k < e; k += blockDim.x) {
    A v = static_cast<A>(q[k]);
    if (reduce::arg_better<IsMax>(v, static_cast<uint32_t>(k), best, bi)) {
      best = v;
      bi = static_cast<uint32_t>(k);
    }
  }
  arg_warp_reduce<IsMax>(best, bi);
  if (lane == 0) {
    sv[warp] = best;
    si[warp] = bi;
  }
  __syncthreads();
  if (warp == 0) {
    if (lane < static_cast<int>(blockDim.x >> 5)) {
      best = sv[lane];
      bi = si[lane];
    } else {
      arg_init<IsMax>(best, bi);
    }
    arg_warp_reduce<IsMax>(best, bi);
    if (lane == 0) {
      if (p.nsplit == 1) {
        out[o] = bi;
      } else {
        part_v[blockIdx.x] = best;
        part_i[blockIdx.x] = bi;
      }
    }
  }
}

template <bool IsMax, class A>
__global__ void __launch_bounds__(kBlock) arg_finalize_kernel(const A* __restrict__ part_v, const uint32_t* __restrict__ part_i,
                                                              int64_t n_out, int nsplit, uint32_t* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (o >= n_out) return;
  A best;
  uint32_t bi;
  arg_init<IsMax>(best, bi);
  for (int j = lane; j < nsplit; j += 32) {
    A v = part_v[o * nsplit + j];
    uint32_t i = part_i[o * nsplit + j];
    if (reduce::arg_better<IsMax>(v, i, best, bi)) {
      best = v;
      bi = i;
    }
  }
  arg_warp_reduce<IsMax>(best, bi);
  if (lane == 0) out[o] = bi;
}

template <bool IsMax, class T>
void arg_typed(const array& in, array& out, int axis, const char* name) {
  using A = acc_t<T>;
  uint32_t* dst = alloc_out<uint32_t>(out);
  if (out.size() == 0) return;
  cudaStream_t s = stream_of(out);
  const T* x = in_ptr<T>(in, out);
  auto l = reduce::reduce_layout(in.shape(), in.strides(), {axis});
  ArgPlan p{};
  p.kept = make_layout<1>(l.kept_shape, {&l.kept_strides});
  p.n_out = l.outputs;
  p.len = in.shape()[axis];
  p.stride = in.strides()[axis];
  p.seg = p.len;
  p.nsplit = 1;
  if (p.stride != 1 || p.len <= 32) {
    arg_thread_kernel<IsMax, T><<<grid_cap(out, ceil_div(p.n_out, kBlock)), kBlock, 0, s>>>(x, p, dst);
    check_launch(name);
    return;
  }
  if (p.len <= 2048) {
    arg_warp_kernel<IsMax, T><<<static_cast<unsigned>(ceil_div(p.n_out, kWarpsPerBlock)), kBlock, 0, s>>>(x, p, dst);
    check_launch(name);
    return;
  }
  p.nsplit = choose_splits(out, p.n_out, p.len, 16 * kBlock);
  p.seg = ceil_div(p.len, p.nsplit);
  p.nsplit = static_cast<int>(ceil_div(p.len, p.seg));
  unsigned blocks = static_cast<unsigned>(p.n_out * p.nsplit);
  if (p.nsplit == 1) {
    arg_block_kernel<IsMax, T><<<blocks, kBlock, 0, s>>>(x, p, dst, nullptr, nullptr);
    check_launch(name);
    return;
  }
  Scratch pv(sizeof(A) * p.n_out * p.nsplit, out), pi(sizeof(uint32_t) * p.n_out * p.nsplit, out);
  arg_block_kernel<IsMax, T><<<blocks, kBlock, 0, s>>>(x, p, dst, pv.as<A>(), pi.as<uint32_t>());
  check_launch(name);
  arg_finalize_kernel<IsMax, A><<<static_cast<unsigned>(ceil_div(p.n_out, kWarpsPerBlock)), kBlock, 0, s>>>(
      pv.as<A>(), pi.as<uint32_t>(), p.n_out, p.nsplit, dst);
  check_launch(name);
}

void arg_reduce_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const ArgReduce&>(prim);
  const array& in = inputs[0];
  if (p.op == ArgReduceOp::argmax) {
    KILN_DISPATCH_REAL(p.name(), in.dtype(), { arg_typed<true, T>(in, out, p.axis, p.name()); });
  } else {
    KILN_DISPATCH_REAL(p.name(), in.dtype(), { arg_typed<false, T>(in, out, p.axis, p.name()); });
  }
}

// ---- softmax / log_softmax along the last axis ----

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return ::exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return ::log(v); }

// Folds a (max, sum of exp(x - max)) pair into another. A NaN max makes the sum NaN; two empty
// (all -inf) sides stay empty instead of producing exp(-inf - -inf) = NaN.
template <class A>
__device__ __forceinline__ void softmax_merge(A& m, A& s, A om, A os) {
  A nm = (m != m || m > om) ? m : om;
  if (om != om) nm = om;
  if (nm == -reduce::highest_value<A>()) {
    s += os;
  } else {
    s = s * exp_(m - nm) + os * exp_(om - nm);
  }
  m = nm;
}

// A warp (Block = false) or a block per row: one pass for the running max and sum of exponentials,
// a second to write. Strided rows (a transposed input) are read with their stride.
template <class T, bool Block>
__global__ void __launch_bounds__(kBlock) softmax_kernel(const T* __restrict__ x, StridedLayout<1> rows, int64_t n_rows,
                                                         int64_t len, int64_t stride, T* __restrict__ out, bool log_out) {
  using A = acc_t<T>;
  __shared__ A sm[32], ss[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = Block ? blockIdx.x : static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= n_rows) return;  // uniform per warp (and per block when Block)
  const int64_t tid = Block ? threadIdx.x : lane;
  const int64_t nt = Block ? blockDim.x : 32;
  int64_t base[1];
  rows.offsets(row, base);
  const T* q = x + base[0];
  const A neg_inf = -reduce::highest_value<A>();
  A m = neg_inf, s = 0;
  for (int64_t k = tid; k < len; k += nt) {
    A v = static_cast<A>(q[k * stride]);
    if (v > m) {
      s = s * exp_(m - v) + exp_(v - v);  // 1, or NaN for +inf as in the two-pass CPU kernel
      m = v;
    } else {
      s += (m == neg_inf && v == neg_inf) ? A(0) : exp_(v - m);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    A om = shfl_xor_any(m, o), os = shfl_xor_any(s, o);
    softmax_merge(m, s, om, os);
  }
  if constexpr (Block) {
    if (lane == 0) {
      sm[warp] = m;
      ss[warp] = s;
    }
    __syncthreads();
    m = neg_inf;
    s = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) softmax_merge(m, s, sm[w], ss[w]);
  }
  T* r = out + row * len;
  if (log_out) {
    const A shift = m + log_(s);
    for (int64_t k = tid; k < len; k += nt) r[k] = convert<T>(static_cast<A>(q[k * stride]) - shift);
  } else {
    const A inv = A(1) / s;
    for (int64_t k = tid; k < len; k += nt) r[k] = convert<T>(exp_(static_cast<A>(q[k * stride]) - m) * inv);
  }
}

template <class T>
void softmax_typed(const array& in, array& out, bool log_out, const char* name) {
  T* dst = alloc_out<T>(out);
  if (out.size() == 0) return;
  cudaStream_t s = stream_of(out);
  const T* x = in_ptr<T>(in, out);
  const int last = in.ndim() - 1;
  auto l = reduce::reduce_layout(in.shape(), in.strides(), {last});
  auto rows = make_layout<1>(l.kept_shape, {&l.kept_strides});
  const int64_t len = in.shape()[last], stride = in.strides()[last];
  if (len <= 1024) {
    softmax_kernel<T, false><<<static_cast<unsigned>(ceil_div(l.outputs, kWarpsPerBlock)), kBlock, 0, s>>>(
        x, rows, l.outputs, len, stride, dst, log_out);
  } else {
    softmax_kernel<T, true><<<static_cast<unsigned>(l.outputs), kBlock, 0, s>>>(x, rows, l.outputs, len, stride, dst,
                                                                                   log_out);
  }
  check_launch(name);
}

void softmax_kernel_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Softmax&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), inputs[0].dtype(), { softmax_typed<T>(inputs[0], out, p.log, p.name()); });
}

}  // namespace

void register_gpu_reduce() {
  for (auto op : {ReduceOp::sum, ReduceOp::prod, ReduceOp::max, ReduceOp::min, ReduceOp::all, ReduceOp::any}) {
    register_kernel(Backend::gpu, op_name(op), reduce_kernel);
  }
  register_kernel(Backend::gpu, "argmax", arg_reduce_kernel);
  register_kernel(Backend::gpu, "argmin", arg_reduce_kernel);
  register_kernel(Backend::gpu, "softmax", softmax_kernel_entry);
  register_kernel(Backend::gpu, "log_softmax", softmax_kernel_entry);
}

}  // namespace kiln::cuda
