// Tensor-core prefill attention (placeholder: not yet implemented, the SIMT kernel runs).
#include "kiln/backend/cuda/attention.cuh"

namespace kiln::cuda {

template <class T>
bool launch_prefill_mma(const AttnParams<T>&, const array&) {
  return false;
}

template bool launch_prefill_mma<float>(const AttnParams<float>&, const array&);
template bool launch_prefill_mma<float16_t>(const AttnParams<float16_t>&, const array&);
template bool launch_prefill_mma<bfloat16_t>(const AttnParams<bfloat16_t>&, const array&);

}  // namespace kiln::cuda
