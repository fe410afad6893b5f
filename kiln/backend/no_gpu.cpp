// Built instead of the CUDA backend when no CUDA toolkit is present: there is no GPU.
#include "kiln/backend/gpu.h"
#include "kiln/backend/kernels.h"

namespace kiln {

GpuBackend* gpu_backend() { return nullptr; }
void register_gpu_kernels() {}

}  // namespace kiln
