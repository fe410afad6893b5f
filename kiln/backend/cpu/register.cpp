// Fills the CPU kernel table. Each topic file registers its own kernels.
#include "kiln/backend/kernels.h"

namespace kiln {

void register_view_kernels(Backend backend);

namespace cpu {
void register_cpu_elementwise();
void register_cpu_creation();
void register_cpu_reduce();
void register_cpu_scan();
void register_cpu_index();
void register_cpu_matmul();
void register_cpu_sort();
void register_cpu_random();
void register_cpu_fast();
void register_cpu_attention();
void register_cpu_conv();
void register_cpu_pool();
}  // namespace cpu

void register_cpu_kernels() {
  register_view_kernels(Backend::cpu);
  cpu::register_cpu_elementwise();
  cpu::register_cpu_creation();
  cpu::register_cpu_reduce();
  cpu::register_cpu_scan();
  cpu::register_cpu_index();
  cpu::register_cpu_matmul();
  cpu::register_cpu_sort();
  cpu::register_cpu_random();
  cpu::register_cpu_fast();
  cpu::register_cpu_attention();
  cpu::register_cpu_conv();
  cpu::register_cpu_pool();
}

}  // namespace kiln
