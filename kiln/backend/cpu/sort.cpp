// CPU kernels: sort.
#include "kiln/backend/kernels.h"

namespace kiln::cpu {

void register_cpu_sort() {}

}  // namespace kiln::cpu
