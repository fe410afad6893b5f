// What other CUDA kernels take from matmul.cu.
#pragma once

#include <cstdint>

#include "kiln/array.h"

namespace kiln::cuda {

// y (rows x n) = act(x (rows x k) @ w^T + bias + residual) for w (n x k), all row-contiguous on
// out's device and stream, in one cuBLASLt call with a fused epilogue: bias (n,) and residual
// (rows x n) may be null, act is ReLU or nothing. float16, bfloat16 and float32. False, with
// nothing launched, when cuBLASLt has no algorithm for it. conv.cu runs 1x1 convolutions so.
template <class T>
bool linear_epilogue(const T* x, const T* w, const T* bias, const T* residual, T* y, int64_t rows, int64_t n,
                     int64_t k, bool relu, const array& out);

}  // namespace kiln::cuda
