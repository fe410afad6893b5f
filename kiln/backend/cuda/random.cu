// CUDA kernels: random.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_random() {}

}  // namespace kiln::cuda
