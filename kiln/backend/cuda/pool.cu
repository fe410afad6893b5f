// CUDA kernel of pool (kiln/primitives_conv.h): a thread per output element (n, o..., c), channels
// fastest so that a warp reads each tap's row as one coalesced span. Floating dtypes take V
// channels per thread as one 16-byte load when C and the pointers allow. Taps outside the input
// are never read; avg accumulates in float (double for double). Instantiated for the floating
// dtypes (max and avg, each plain and vectorised) and for bool and the integers (max, plain).
#include <type_traits>

#include "kiln/backend/common/pool.h"
#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_conv.h"

namespace kiln::cuda {

namespace {

template <class T, int V, bool IsMax>
__global__ void pool_dev(const T* __restrict__ x, T* __restrict__ y, int64_t n, pool::Geometry g,
                         bool count_include_pad) {
  using M = reduce::Max<T>;
  using A = std::conditional_t<IsMax, typename M::Acc, acc_t<T>>;
  const int64_t CV = g.C / V;  // vectors per row
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / CV, c = (i - row * CV) * V;
    int64_t o[3], lo[3], hi[3];
    const int64_t r = g.split(row, o);
#pragma unroll
    for (int j = 0; j < 3; ++j) g.taps(j, o[j], lo[j], hi[j]);
    A acc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] = IsMax ? M::init() : A(0);
    for (int64_t a = lo[0]; a < hi[0]; ++a) {
      const int64_t p0 = r * g.S[0] + g.pos(0, o[0], a);
      for (int64_t b = lo[1]; b < hi[1]; ++b) {
        const int64_t p1 = p0 * g.S[1] + g.pos(1, o[1], b);
        for (int64_t q = lo[2]; q < hi[2]; ++q) {
          const T* src = x + (p1 * g.S[2] + g.pos(2, o[2], q)) * g.C + c;
          Vec<T, V> v = *reinterpret_cast<const Vec<T, V>*>(src);
#pragma unroll
          for (int k = 0; k < V; ++k) {
            if constexpr (IsMax) {
              acc[k] = M{}(acc[k], M::load(v.v[k]));
            } else {
              acc[k] += static_cast<A>(v.v[k]);
            }
          }
        }
      }
    }
    Vec<T, V> out;
    if constexpr (IsMax) {
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = convert<T>(acc[k]);
    } else {
      const A count = static_cast<A>(count_include_pad ? g.K[0] * g.K[1] * g.K[2]
                                                       : (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = convert<T>(acc[k] / count);
    }
    *reinterpret_cast<Vec<T, V>*>(y + i * V) = out;
  }
}

template <class T, int V, bool IsMax>
void launch(const T* x, T* y, const pool::Geometry& g, bool count_include_pad, const array& out) {
  const int64_t n = out.size() / V;
  pool_dev<T, V, IsMax><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(x, y, n, g, count_include_pad);
  check_launch("pool");
}

template <class T, bool IsMax>
void pool_typed(const Pool& p, const array& in, array& out) {
  T* y = alloc_out<T>(out);
  if (out.size() == 0) return;
  const T* x = in_ptr<T>(in, out);
  const pool::Geometry g = pool::geometry(p, in, out);
  if constexpr (std::is_floating_point_v<acc_t<T>>) {
    // 16 bytes per load: every row starts aligned when the base is and C is a multiple of V.
    constexpr int V = 16 / sizeof(T);
    if (g.C % V == 0 && aligned16(x) && aligned16(y)) {
      launch<T, V, IsMax>(x, y, g, p.count_include_pad, out);
      return;
    }
  }
  launch<T, 1, IsMax>(x, y, g, p.count_include_pad, out);
}

void pool_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Pool&>(prim);
  if (p.kind == PoolKind::max) {
    KILN_DISPATCH_REAL(p.name(), out.dtype(), { pool_typed<T, true>(p, inputs[0], out); });
  } else {
    KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { pool_typed<T, false>(p, inputs[0], out); });
  }
}

}  // namespace

void register_gpu_pool() { register_kernel(Backend::gpu, "pool", pool_kernel); }

}  // namespace kiln::cuda
