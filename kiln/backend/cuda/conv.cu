// CUDA kernels of conv and im2col (kiln/primitives_conv.h). conv runs on cuDNN where the build
// has it and cuDNN supports the case (kiln/backend/cuda/cudnn_conv.h), with the epilogue fused
// into cuDNN's call or applied by conv_epilogue_dev in place; otherwise a direct kernel (a thread
// per output element) computes it, epilogue included. Inputs of fewer channels than one 16-byte
// vector (RGB) are zero-padded to it first for cuDNN. 16-bit pointwise convolutions and 2-D ones of
// few input channels run on cuBLASLt as GEMMs instead (see gemm_enabled). im2col is a thread per output element,
// gathering from the row-contiguous input or writing zero; it dispatches on the element size.
#include <cstdlib>
#include <string>

#include "kiln/backend/common/bytes.h"
#include "kiln/backend/common/im2col.h"
#include "kiln/backend/cuda/cudnn_conv.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/cuda/matmul.h"
#include "kiln/backend/kernels.h"
#include "kiln/memory.h"
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

template <class A>
__device__ __forceinline__ A activate(A v, ConvActivation act) {
  if (act == ConvActivation::none) return v;
  v = v > A(0) ? v : A(0);
  return act == ConvActivation::relu6 && v > A(6) ? A(6) : v;
}

// The epilogue over a computed convolution, in place: y = act(y + bias + residual).
template <class T>
__global__ void conv_epilogue_dev(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ residual,
                                  int64_t n, int64_t cout, ConvActivation act) {
  using A = acc_t<T>;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A v = static_cast<A>(y[i]);
    if (bias) v += static_cast<A>(bias[i % cout]);
    if (residual) v += static_cast<A>(residual[i]);
    y[i] = convert<T>(activate(v, act));
  }
}

// rows x c elements into rows x cp (cp > c), the extra channels zero.
template <class T>
__global__ void pad_channels_dev(const T* __restrict__ src, T* __restrict__ dst, int64_t rows, int64_t c, int64_t cp) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * cp;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cp, k = i % cp;
    dst[i] = k < c ? src[r * c + k] : convert<T>(0.0f);
  }
}

// Output element i = (row r, channel co): the sum over the group's taps and channels, then the
// epilogue. Slow but general: the path for what cuDNN does not run.
template <class T>
__global__ void conv_direct_dev(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                const T* __restrict__ residual, T* __restrict__ y, int64_t n, int64_t cout,
                                int64_t taps, conv::Im2ColGeometry g, ConvActivation act) {
  using A = acc_t<T>;
  const int64_t cout_g = cout / g.G;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cout, co = i % cout, gi = co / cout_g;
    const T* wr = w + co * taps * g.Cg;
    A sum = 0;
    for (int64_t q = 0; q < taps; ++q) {
      const int64_t s = g.source_row((r * g.G + gi) * taps + q);
      if (s < 0) continue;
      for (int64_t c = 0; c < g.Cg; ++c) sum += static_cast<A>(x[s + c]) * static_cast<A>(wr[q * g.Cg + c]);
    }
    if (bias) sum += static_cast<A>(bias[co]);
    if (residual) sum += static_cast<A>(residual[i]);
    y[i] = convert<T>(activate(sum, act));
  }
}

// 16-bit pointwise convolutions and RGB stems run on cuBLASLt as GEMMs with bias, residual and
// ReLU in its epilogue: ResNet-50 bf16 on an H200 measured 6.60 ms a pass at batch 256 and
// 0.325 ms at batch 1 with both, against 8.66 and 0.378 ms on cuDNN alone. KILN_CONV_GEMM=0 turns
// both off (cuDNN only), =pointwise or =stem keeps only that one, for timing them apart.
bool gemm_enabled(const char* path) {
  static const std::string mode = [] {
    const char* e = std::getenv("KILN_CONV_GEMM");
    return std::string(e && *e ? e : "1");
  }();
  return mode == "1" || mode == path;
}

// A pointwise (1x1, stride 1, unpadded, ungrouped) convolution is a matrix product over the
// pixels, memory-bound at these shapes, where cuBLASLt outruns cuDNN's fused kernels.
bool pointwise(const Convolution& p, const array& w) {
  if (p.groups != 1 || p.activation == ConvActivation::relu6) return false;
  for (size_t i = 0; i < p.stride.size(); ++i) {
    if (p.stride[i] != 1 || p.pad_lo[i] != 0 || p.pad_hi[i] != 0 || w.shape(static_cast<int>(i) + 1) != 1) return false;
  }
  return true;
}

// A 2-D convolution's geometry for its patches, in 32-bit terms.
struct Patches2d {
  int H, W, C, OH, OW, KW, stride_y, stride_x, pad_y, pad_x, dil_y, dil_x;
  int k, kp;  // columns: taps * C, and that padded to a multiple of 8
};

// rows x kp patches of a 2-D input of few channels (the RGB stem), for a GEMM: element (r, q C + c)
// is channel c of tap q of output pixel r, zero for padding and past k. A thread per 8 columns,
// stored as one 16-byte vector. Each column's tap offset and channel come from a table in shared
// memory (dy << 16 | dx << 8 | c), so a thread divides only to find its output pixel.
template <class T>
__global__ void patches2d_dev(const T* __restrict__ x, Vec<T, 8>* __restrict__ dst, uint32_t rows, Patches2d g) {
  extern __shared__ int column[];
  for (int col = threadIdx.x; col < g.kp; col += blockDim.x) {
    const int q = col / g.C, c = col % g.C;
    column[col] = col < g.k ? ((q / g.KW) * g.dil_y) << 16 | ((q % g.KW) * g.dil_x) << 8 | c : -1;
  }
  __syncthreads();
  const uint32_t chunks = static_cast<uint32_t>(g.kp) / 8, n = rows * chunks;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const uint32_t r = i / chunks, col0 = (i - r * chunks) * 8;
    const uint32_t ox = r % g.OW, t = r / g.OW, oy = t % g.OH, b = t / g.OH;
    const int y0 = static_cast<int>(oy) * g.stride_y - g.pad_y, x0 = static_cast<int>(ox) * g.stride_x - g.pad_x;
    const T* image = x + static_cast<int64_t>(b) * g.H * g.W * g.C;
    Vec<T, 8> v;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int tap = column[col0 + e];
      const int iy = y0 + (tap >> 16), ix = x0 + ((tap >> 8) & 255);
      const bool inside = tap >= 0 && iy >= 0 && iy < g.H && ix >= 0 && ix < g.W;
      v.v[e] = inside ? image[(static_cast<int64_t>(iy) * g.W + ix) * g.C + (tap & 255)] : convert<T>(0.0f);
    }
    dst[i] = v;
  }
}

// A 16-bit 2-D convolution of few input channels as patches (above) times the weights padded to
// the same width, with cuBLASLt's fused epilogue: cuDNN's kernels for such inputs are slow even
// with the channels padded. False, with nothing computed, when the shapes fall outside the
// patches kernel's limits or cuBLASLt cannot run it.
template <class T>
bool conv_as_patches_gemm(const Convolution& p, const array& x, const array& w, const array& out,
                          const ConvOperands& ops) {
  if (p.groups != 1 || p.activation == ConvActivation::relu6 || x.ndim() != 4) return false;
  const int64_t C = x.shape(3), KH = w.shape(1), KW = w.shape(2);
  const int64_t k = KH * KW * C, kp = (k + 7) / 8 * 8;
  const int64_t rows = out.size() / out.shape().back(), cout = out.shape().back();
  if (kp > 1024 || (KW - 1) * p.dilation[1] > 255 || (KH - 1) * p.dilation[0] > 32767 ||
      rows * (kp / 8) >= (int64_t{1} << 31)) {
    return false;
  }
  const Patches2d g{static_cast<int>(x.shape(1)), static_cast<int>(x.shape(2)), static_cast<int>(C),
                    static_cast<int>(out.shape(1)), static_cast<int>(out.shape(2)), static_cast<int>(KW),
                    p.stride[0], p.stride[1], p.pad_lo[0], p.pad_lo[1], p.dilation[0], p.dilation[1],
                    static_cast<int>(k), static_cast<int>(kp)};
  auto scratch = std::make_shared<Buffer>(sizeof(T) * static_cast<size_t>((rows + cout) * kp));
  T* patches = static_cast<T*>(scratch->write_gpu(out.device().index, out.stream().index));
  T* wp = patches + rows * kp;
  cudaStream_t st = stream_of(out);
  pad_channels_dev<T><<<strided_blocks(out, cout * kp), kThreads, 0, st>>>(static_cast<const T*>(ops.w), wp, cout, k,
                                                                           kp);
  patches2d_dev<T><<<strided_blocks(out, rows * kp / 8), kThreads, sizeof(int) * kp, st>>>(
      static_cast<const T*>(ops.x), reinterpret_cast<Vec<T, 8>*>(patches), static_cast<uint32_t>(rows), g);
  check_launch("conv patches");
  // Launched work reads `scratch`; it is freed in stream order when this function returns.
  return linear_epilogue<T>(patches, wp, static_cast<const T*>(ops.bias), static_cast<const T*>(ops.residual),
                            static_cast<T*>(ops.y), rows, cout, kp, p.activation == ConvActivation::relu, out);
}

template <class T>
void conv_typed(const Convolution& p, const std::vector<array>& inputs, array& out) {
  const array &x = inputs[0], &w = inputs[1];
  T* y = alloc_out<T>(out);
  const int64_t n = out.size(), cout = out.shape().back();
  if (n == 0) return;
  ConvOperands ops{in_ptr<T>(x, out), in_ptr<T>(w, out), p.has_bias ? in_ptr<T>(inputs[2], out) : nullptr,
                   p.has_residual ? in_ptr<T>(inputs[2 + p.has_bias], out) : nullptr, y};
  const T* bias = static_cast<const T*>(ops.bias);
  const T* residual = static_cast<const T*>(ops.residual);
  const int64_t cin = x.shape().back(), cvec = 16 / static_cast<int64_t>(sizeof(T));
  if constexpr (sizeof(T) == 2) {  // float16, bfloat16
    if (gemm_enabled("pointwise") && pointwise(p, w) &&
        linear_epilogue<T>(static_cast<const T*>(ops.x), static_cast<const T*>(ops.w), bias, residual, y,
                           x.size() / cin, cout, cin, p.activation == ConvActivation::relu, out)) {
      return;
    }
    if (gemm_enabled("stem") && cin < cvec && conv_as_patches_gemm<T>(p, x, w, out, ops)) return;
  }
  bool epilogue_done = false;
  // A few input channels (an RGB stem) are padded with zeros to one 16-byte vector per pixel:
  // cuDNN's tensor-core kernels want that, and without it picks far slower ones.
  std::shared_ptr<Buffer> padded;
  Shape xs = x.shape(), ws = w.shape();
  ConvOperands cops = ops;
  if (p.groups == 1 && cin < cvec && cvec <= 8) {
    xs.back() = ws.back() = cvec;
    const int64_t xrows = x.size() / cin, wrows = w.size() / cin;
    padded = std::make_shared<Buffer>(sizeof(T) * static_cast<size_t>((xrows + wrows) * cvec));
    T* xp = static_cast<T*>(padded->write_gpu(out.device().index, out.stream().index));
    T* wp = xp + xrows * cvec;
    pad_channels_dev<T><<<strided_blocks(out, xrows * cvec), kThreads, 0, stream_of(out)>>>(
        static_cast<const T*>(ops.x), xp, xrows, cin, cvec);
    pad_channels_dev<T><<<strided_blocks(out, wrows * cvec), kThreads, 0, stream_of(out)>>>(
        static_cast<const T*>(ops.w), wp, wrows, cin, cvec);
    check_launch("conv channel padding");
    cops.x = xp;
    cops.w = wp;
  }
  if (cudnn_conv(p, xs, ws, out, cops, epilogue_done)) {
    if (epilogue_done || (!bias && !residual && p.activation == ConvActivation::none)) return;
    conv_epilogue_dev<T><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(y, bias, residual, n, cout,
                                                                                 p.activation);
    check_launch("conv epilogue");
    return;
  }
  const conv::Im2ColGeometry g = conv::conv_geometry(p, x, w, out);
  int64_t taps = 1;
  for (int j = 0; j < g.d; ++j) taps *= g.K[j];
  conv_direct_dev<T><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(
      static_cast<const T*>(ops.x), static_cast<const T*>(ops.w), bias, residual, y, n, cout, taps, g,
      p.activation);
  check_launch("conv");
}

void conv_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Convolution&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { conv_typed<T>(p, inputs, out); });
}

}  // namespace

void register_gpu_conv() {
  register_kernel(Backend::gpu, "conv", conv_kernel);
  register_kernel(Backend::gpu, "im2col", im2col_kernel);
}

}  // namespace kiln::cuda
