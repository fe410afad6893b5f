// CPU kernels: index.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_index() {}

}  // namespace kiln::cpu
