// CUDA kernels: scan.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_scan() {}

}  // namespace kiln::cuda
