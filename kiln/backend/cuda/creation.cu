// CUDA kernels of the creation primitives.
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_creation.h"

namespace kiln::cuda {

namespace {

template <class T>
__global__ void arange_fill(T* out, int64_t n, double start, double step) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = convert<T>(start + static_cast<double>(i) * step);
  }
}

void arange_kernel(const Primitive& p, const std::vector<array>&, array& out) {
  const auto& a = static_cast<const Arange&>(p);
  KILN_DISPATCH_ALL("arange", out.dtype(), {
    T* dst = alloc_out<T>(out);
    if (out.size() == 0) return;
    arange_fill<T><<<strided_blocks(out, out.size()), kThreads, 0, stream_of(out)>>>(dst, out.size(), a.start, a.step);
    check_launch("arange");
  });
}

}  // namespace

void register_gpu_creation() { register_kernel(Backend::gpu, "arange", arange_kernel); }

}  // namespace kiln::cuda
