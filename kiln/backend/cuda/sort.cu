// CUDA kernels: sort.
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

void register_gpu_sort() {}

}  // namespace kiln::cuda
