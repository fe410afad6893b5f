// Fills the CPU kernel table. Each topic file registers its own kernels.
#include "kiln/backend/kernels.h"

namespace kiln {

void register_view_kernels(Backend backend);

namespace cpu {
void register_cpu_elementwise();
void register_cpu_creation();
}  // namespace cpu

void register_cpu_kernels() {
  register_view_kernels(Backend::cpu);
  cpu::register_cpu_elementwise();
  cpu::register_cpu_creation();
}

}  // namespace kiln
