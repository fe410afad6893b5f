// CUDA kernels: matmul.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_matmul() {}

}  // namespace kiln::cuda
