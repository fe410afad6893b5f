// CUDA kernel of im2col (kiln/primitives_conv.h): a thread per output element, gathering from
// the row-contiguous input or writing zero. Dispatches on the element size only.
#include "kiln/backend/common/bytes.h"
#include "kiln/backend/common/im2col.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_conv.h"

namespace kiln::cuda {

namespace {

template <class U>
__global__ void im2col_dev(const U* __restrict__ src, U* __restrict__ dst, int64_t n, conv::Im2ColGeometry g) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = g.source_row(i / g.Cg);
    dst[i] = s < 0 ? U(0) : src[s + i % g.Cg];
  }
}

void im2col_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Im2Col&>(prim);
  const array& in = inputs[0];
  const conv::Im2ColGeometry g = conv::im2col_geometry(p, in, out);
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = alloc_out<U>(out);
    const int64_t n = out.size();
    if (n == 0) return;
    im2col_dev<U><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(in_ptr<U>(in, out), dst, n, g);
    check_launch("im2col");
  });
}

}  // namespace

void register_gpu_conv() { register_kernel(Backend::gpu, "im2col", im2col_kernel); }

}  // namespace kiln::cuda
