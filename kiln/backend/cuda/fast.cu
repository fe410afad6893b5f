// CUDA kernels: fused fast ops.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_fast() {}

}  // namespace kiln::cuda
