// CPU kernel of im2col (kiln/primitives_conv.h): one output row (Cg channels) at a time, copied
// from the input or zero-filled. Dispatches on the element size only.
#include <cstring>

#include "kiln/backend/common/bytes.h"
#include "kiln/backend/common/im2col.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_conv.h"

namespace kiln::cpu {

namespace {

void im2col_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Im2Col&>(prim);
  const array& in = inputs[0];
  conv::Im2ColGeometry g = conv::im2col_geometry(p, in, out);
  dispatch_bytes(out.itemsize(), [&](auto tag) {
    using U = decltype(tag);
    U* dst = allocate<U>(out);
    if (out.size() == 0) return;
    const U* src = in.host_data<U>();
    const int64_t rows = out.size() / g.Cg;
    parallel_for(rows, std::max<int64_t>(1, 4096 / g.Cg), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t s = g.source_row(r);
        U* d = dst + r * g.Cg;
        if (s < 0) {
          std::memset(static_cast<void*>(d), 0, sizeof(U) * g.Cg);
        } else {
          std::memcpy(static_cast<void*>(d), src + s, sizeof(U) * g.Cg);
        }
      }
    });
  });
}

}  // namespace

void register_cpu_conv() { register_kernel(Backend::cpu, "im2col", im2col_kernel); }

}  // namespace kiln::cpu
