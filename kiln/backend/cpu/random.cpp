// CPU kernels: random.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_random() {}

}  // namespace kiln::cpu
