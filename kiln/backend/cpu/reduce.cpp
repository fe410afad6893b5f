// CPU kernels: reduce.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_reduce() {}

}  // namespace kiln::cpu
