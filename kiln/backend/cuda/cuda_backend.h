// What CUDA kernels need from the CUDA backend: streams, device properties, error checks.
#pragma once

#include <cuda_runtime.h>

#include "kiln/array.h"
#include "kiln/backend/gpu.h"

namespace kiln::cuda {

// Throws RuntimeError naming `what` when err is not cudaSuccess.
void check(cudaError_t err, const char* what);
// The CUDA stream that computes `a` (set as current device too).
cudaStream_t stream_of(const array& a);
const cudaDeviceProp& device_props(int device);

}  // namespace kiln::cuda
