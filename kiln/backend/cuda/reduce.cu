// CUDA kernels: reduce.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_reduce() {}

}  // namespace kiln::cuda
