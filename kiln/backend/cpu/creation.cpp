// CPU kernels of the creation primitives.
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_creation.h"

namespace kiln::cpu {

namespace {

void arange_kernel(const Primitive& p, const std::vector<array>&, array& out) {
  const auto& a = static_cast<const Arange&>(p);
  KILN_DISPATCH_ALL("arange", out.dtype(), {
    T* dst = allocate<T>(out);
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = convert<T>(a.start + static_cast<double>(i) * a.step);
    });
  });
}

}  // namespace

void register_cpu_creation() { register_kernel(Backend::cpu, "arange", arange_kernel); }

}  // namespace kiln::cpu
