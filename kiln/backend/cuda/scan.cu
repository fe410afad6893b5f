// CUDA kernels of the scans (cumsum, cumprod, cummax, cummin). Lines along a contiguous last axis
// run a warp per line (short lines) or a block per line (cub::BlockScan over tiles, carrying the
// running value from tile to tile); lines along any other axis run a thread per line, which is
// coalesced because neighbouring lines are neighbouring in memory.
#include <cuda_runtime.h>

#include <cstring>
#include <cub/block/block_exchange.cuh>
#include <cub/block/block_scan.cuh>

#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cuda/utils.cuh"
#include "kiln/backend/cuda/warp.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_reduce.h"

namespace kiln::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / 32;
constexpr int kItems = 4;  // per thread: tiles of 1024 elements

struct ScanPlan {
  StridedLayout<2> lines;  // line index -> (input offset, output offset) of its first element
  int64_t n_lines;
  int64_t len;
  int64_t in_stride;
  int64_t out_stride;
  bool reverse;
  bool inclusive;
};

template <class V>
__device__ __forceinline__ V shfl_up_any(V v, int delta) {
  return shuffle_words(v, [delta](auto w) { return __shfl_up_sync(0xffffffffu, w, delta); });
}

template <class V>
__device__ __forceinline__ V shfl_idx_any(V v, int lane) {
  return shuffle_words(v, [lane](auto w) { return __shfl_sync(0xffffffffu, w, lane); });
}

// A thread per line, any strides.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock) scan_thread_kernel(const T* __restrict__ x, ScanPlan p, Out* __restrict__ out) {
  Op op;
  for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < p.n_lines;
       line += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    p.lines.offsets(line, off);
    typename Op::Acc acc = Op::init();
    for (int64_t j = 0; j < p.len; ++j) {
      int64_t k = p.reverse ? p.len - 1 - j : j;
      auto v = Op::load(x[off[0] + k * p.in_stride]);
      if (p.inclusive) {
        acc = op(acc, v);
        out[off[1] + k * p.out_stride] = convert<Out>(acc);
      } else {
        out[off[1] + k * p.out_stride] = convert<Out>(acc);
        acc = op(acc, v);
      }
    }
  }
}

// A warp per contiguous line: 32 elements at a time, a shuffle scan, and the running carry.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock) scan_warp_kernel(const T* __restrict__ x, ScanPlan p, Out* __restrict__ out) {
  using A = typename Op::Acc;
  Op op;
  const int lane = threadIdx.x & 31;
  const int64_t line = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (line >= p.n_lines) return;  // the whole warp leaves together
  int64_t off[2];
  p.lines.offsets(line, off);
  A carry = Op::init();
  for (int64_t t0 = 0; t0 < p.len; t0 += 32) {
    const int64_t j = t0 + lane;
    const int64_t k = p.reverse ? p.len - 1 - j : j;
    A inc = j < p.len ? Op::load(x[off[0] + k]) : Op::init();
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      A y = shfl_up_any(inc, d);
      if (lane >= d) inc = op(y, inc);
    }
    A ex = shfl_up_any(inc, 1);
    if (lane == 0) ex = Op::init();
    if (j < p.len) out[off[1] + k] = convert<Out>(op(carry, p.inclusive ? inc : ex));
    carry = op(carry, shfl_idx_any(inc, 31));
  }
}

// Hands each tile the running value of the tiles before it (called by cub with the tile's total).
template <class Op>
struct RunningPrefix {
  typename Op::Acc running;
  __device__ typename Op::Acc operator()(typename Op::Acc tile_total) {
    typename Op::Acc before = running;
    running = Op{}(running, tile_total);
    return before;
  }
};

// A block per contiguous line: tiles of kBlock * kItems elements, loaded striped (coalesced),
// exchanged to per-thread runs, scanned with cub::BlockScan, exchanged back and stored striped.
template <class Op, class T, class Out>
__global__ void __launch_bounds__(kBlock) scan_block_kernel(const T* __restrict__ x, ScanPlan p, Out* __restrict__ out) {
  using A = typename Op::Acc;
  using BlockScan = cub::BlockScan<A, kBlock>;
  using Exchange = cub::BlockExchange<A, kBlock, kItems>;
  __shared__ typename BlockScan::TempStorage scan_tmp;
  __shared__ typename Exchange::TempStorage exchange_tmp;
  Op op;
  int64_t off[2];
  p.lines.offsets(blockIdx.x, off);
  const T* xs = x + off[0];
  Out* os = out + off[1];
  RunningPrefix<Op> prefix{Op::init()};
  for (int64_t t0 = 0; t0 < p.len; t0 += kBlock * kItems) {
    A items[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      int64_t j = t0 + i * kBlock + threadIdx.x;
      items[i] = j < p.len ? Op::load(xs[p.reverse ? p.len - 1 - j : j]) : Op::init();
    }
    Exchange(exchange_tmp).StripedToBlocked(items);
    if (p.inclusive) {
      BlockScan(scan_tmp).InclusiveScan(items, items, op, prefix);
    } else {
      BlockScan(scan_tmp).ExclusiveScan(items, items, op, prefix);
    }
    __syncthreads();
    Exchange(exchange_tmp).BlockedToStriped(items);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      int64_t j = t0 + i * kBlock + threadIdx.x;
      if (j < p.len) os[p.reverse ? p.len - 1 - j : j] = convert<Out>(items[i]);
    }
    __syncthreads();  // the temporary storage is reused by the next tile
  }
}

template <class Op, class T, class Out>
void scan_typed(const Scan& prim, const array& in, array& out) {
  Out* dst = alloc_out<Out>(out);
  if (out.size() == 0) return;
  cudaStream_t s = stream_of(out);
  const T* x = in_ptr<T>(in, out);
  const int ax = prim.axis;
  Strides os = row_major_strides(out.shape());
  Shape ls;
  Strides lin, lout;
  for (int d = 0; d < in.ndim(); ++d) {
    if (d == ax) continue;
    ls.push_back(in.shape()[d]);
    lin.push_back(in.strides()[d]);
    lout.push_back(os[d]);
  }
  ScanPlan p{};
  p.lines = make_layout<2>(ls, {&lin, &lout});
  p.len = in.shape()[ax];
  p.n_lines = out.size() / p.len;
  p.in_stride = in.strides()[ax];
  p.out_stride = os[ax];
  p.reverse = prim.reverse;
  p.inclusive = prim.inclusive;
  const bool contig = p.len == 1 || (p.in_stride == 1 && p.out_stride == 1);
  const char* name = prim.name();
  if (!contig || p.len <= 32) {
    int64_t blocks = std::min<int64_t>((p.n_lines + kBlock - 1) / kBlock, static_cast<int64_t>(num_sms(out)) * 16);
    scan_thread_kernel<Op, T, Out><<<static_cast<unsigned>(std::max<int64_t>(blocks, 1)), kBlock, 0, s>>>(x, p, dst);
  } else if (p.len <= 2048) {
    scan_warp_kernel<Op, T, Out><<<static_cast<unsigned>((p.n_lines + kWarpsPerBlock - 1) / kWarpsPerBlock), kBlock, 0, s>>>(
        x, p, dst);
  } else {
    scan_block_kernel<Op, T, Out><<<static_cast<unsigned>(p.n_lines), kBlock, 0, s>>>(x, p, dst);
  }
  check_launch(name);
}

template <class Op, class T>
void scan_run(const Scan& p, const array& in, array& out) {
  using Out = typename Op::Out;
  if (out.dtype() != dtype_of<Out>::value) fail<TypeError>("[", p.name(), "] cannot scan ", in.dtype(), " into ", out.dtype());
  scan_typed<Op, T, Out>(p, in, out);
}

void scan_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Scan&>(prim);
  const array& in = inputs[0];
  const char* name = p.name();
  switch (p.op) {
    case ScanOp::cumsum:
      KILN_DISPATCH_ALL(name, in.dtype(), { scan_run<reduce::Sum<T>, T>(p, in, out); });
      break;
    case ScanOp::cumprod:
      KILN_DISPATCH_ALL(name, in.dtype(), { scan_run<reduce::Prod<T>, T>(p, in, out); });
      break;
    case ScanOp::cummax:
      KILN_DISPATCH_REAL(name, in.dtype(), { scan_run<reduce::Max<T>, T>(p, in, out); });
      break;
    case ScanOp::cummin:
      KILN_DISPATCH_REAL(name, in.dtype(), { scan_run<reduce::Min<T>, T>(p, in, out); });
      break;
  }
}

}  // namespace

void register_gpu_scan() {
  for (auto op : {ScanOp::cumsum, ScanOp::cumprod, ScanOp::cummax, ScanOp::cummin}) {
    register_kernel(Backend::gpu, op_name(op), scan_kernel);
  }
}

}  // namespace kiln::cuda
