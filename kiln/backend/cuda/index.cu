// CUDA kernels: index.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_index() {}

}  // namespace kiln::cuda
