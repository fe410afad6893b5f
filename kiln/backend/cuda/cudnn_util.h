// What kiln's cuDNN users (cudnn_conv.cpp, cudnn_attention.cpp) share: one cuDNN handle per
// (device, stream), and kiln's dtypes in cudnn-frontend's terms. Only built with cuDNN.
#pragma once

#ifdef KILN_HAS_CUDNN

#include <cuda_runtime.h>
#include <cudnn_frontend.h>

#include "kiln/dtype.h"

namespace kiln::cuda {

// The handle bound to kiln's stream `stream` of `device` (native stream s). Callers hold their
// own lock; the handle map has its own.
cudnnHandle_t cudnn_handle(int device, int stream, cudaStream_t s, const char* op);

// io: the tensors' dtype, compute: the accumulation dtype (float32, float64 for float64). False
// for dtypes cuDNN does not take.
bool cudnn_dtype(Dtype t, cudnn_frontend::DataType_t& io, cudnn_frontend::DataType_t& compute);

}  // namespace kiln::cuda

#endif
