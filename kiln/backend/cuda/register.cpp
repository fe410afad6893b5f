// Fills the GPU kernel table with the CUDA kernels. Each topic file registers its own.
#include "kiln/backend/kernels.h"

namespace kiln {

void register_view_kernels(Backend backend);

namespace cuda {
void register_gpu_unary();
void register_gpu_binary();
void register_gpu_copy();
void register_gpu_creation();
void register_gpu_reduce();
void register_gpu_scan();
void register_gpu_index();
void register_gpu_matmul();
void register_gpu_sort();
void register_gpu_random();
void register_gpu_fast();
void register_gpu_attention();
void register_gpu_conv();
void register_gpu_pool();
}  // namespace cuda

void register_gpu_kernels() {
  register_view_kernels(Backend::gpu);
  cuda::register_gpu_unary();
  cuda::register_gpu_binary();
  cuda::register_gpu_copy();
  cuda::register_gpu_creation();
  cuda::register_gpu_reduce();
  cuda::register_gpu_scan();
  cuda::register_gpu_index();
  cuda::register_gpu_matmul();
  cuda::register_gpu_sort();
  cuda::register_gpu_random();
  cuda::register_gpu_fast();
  cuda::register_gpu_attention();
  cuda::register_gpu_conv();
  cuda::register_gpu_pool();
}

}  // namespace kiln
