// CPU kernels: fused fast ops.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_fast() {}

}  // namespace kiln::cpu
