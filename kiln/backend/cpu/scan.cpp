// CPU kernels: scan.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_scan() {}

}  // namespace kiln::cpu
