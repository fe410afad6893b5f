// CUDA kernels of where, astype and copy.
#include "kiln/backend/common/bytes.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_elementwise.h"

namespace kiln::cuda {

namespace {

template <class In, class Out>
struct CastFn {
  __device__ __forceinline__ Out operator()(In v) const { return convert<Out>(v); }
};

template <class T>
struct IdentityFn {
  __device__ __forceinline__ T operator()(T v) const { return v; }
};

template <class T>
__global__ void where_strided(const bool* c, const T* x, const T* y, T* out, int64_t n, StridedLayout<4> l) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[4];
    l.offsets(i, off);
    out[off[3]] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

void where_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array &c = inputs[0], &x = inputs[1], &y = inputs[2];
  KILN_DISPATCH_ALL("where", out.dtype(), {
    const bool* cp = in_ptr<bool>(c, out);
    const T* xp = in_ptr<T>(x, out);
    const T* yp = in_ptr<T>(y, out);
    T* dst = alloc_out<T>(out);
    int64_t n = out.size();
    if (n == 0) return;
    Strides os = row_major_strides(out.shape());
    auto l = make_layout<4>(out.shape(), {&c.strides(), &x.strides(), &y.strides(), &os});
    where_strided<T><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(cp, xp, yp, dst, n, l);
    check_launch("where");
  });
}

template <class In>
void astype_from(const array& in, array& out) {
  KILN_DISPATCH_ALL("astype", out.dtype(), { launch_unary<In, T>(in, out, CastFn<In, T>{}, "astype"); });
}

void astype_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  KILN_DISPATCH_ALL("astype", inputs[0].dtype(), { astype_from<T>(inputs[0], out); });
}

template <class U>
__global__ void copy_strided(const U* in, U* out, int64_t n, StridedLayout<2> l) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    l.offsets(i, off);
    out[off[1]] = in[off[0]];
  }
}

// Writes the input's elements in its row-major order into a new row-contiguous buffer.
void copy_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  size_t item = in.itemsize();
  out.set_data(std::make_shared<Buffer>(out.nbytes()));
  char* dst = static_cast<char*>(out.buffer()->write_gpu(out.device().index, out.stream().index));
  const char* src =
      static_cast<const char*>(in.buffer()->read_gpu(out.device().index, out.stream().index)) + in.offset() * item;
  cudaStream_t s = stream_of(out);
  if (in.size() == 0) return;
  if (in.row_contiguous()) {
    check(cudaMemcpyAsync(dst, src, in.size() * item, cudaMemcpyDeviceToDevice, s), "copy");
    return;
  }
  Strides os = row_major_strides(in.shape());
  auto l = make_layout<2>(in.shape(), {&in.strides(), &os});
  int64_t n = in.size();
  if (widen_to_16_bytes(l, item, src, dst)) {
    n = in.size() * static_cast<int64_t>(item) / 16;
    copy_strided<uint4><<<strided_blocks(out, n), kThreads, 0, s>>>(reinterpret_cast<const uint4*>(src),
                                                                    reinterpret_cast<uint4*>(dst), n, l);
    check_launch("copy");
    return;
  }
  auto run = [&](auto tag) {
    using U = decltype(tag);
    copy_strided<U><<<strided_blocks(out, n), kThreads, 0, s>>>(reinterpret_cast<const U*>(src),
                                                                  reinterpret_cast<U*>(dst), n, l);
  };
  dispatch_bytes(item, run);
  check_launch("copy");
}

}  // namespace

void register_gpu_copy() {
  register_kernel(Backend::gpu, "where", where_kernel);
  register_kernel(Backend::gpu, "astype", astype_kernel);
  register_kernel(Backend::gpu, "copy", copy_kernel);
}

}  // namespace kiln::cuda
