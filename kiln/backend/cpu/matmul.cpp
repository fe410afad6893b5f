// CPU kernels: matmul.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_matmul() {}

}  // namespace kiln::cpu
