// CUDA kernels of the binary primitives.
#include "kiln/backend/common/binary_ops.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

namespace {

template <class Op, class T, class Out>
struct BinaryFn {
  Op op;
  __device__ __forceinline__ Out operator()(T a, T b) const {
    return convert<Out>(op(static_cast<acc_t<T>>(a), static_cast<acc_t<T>>(b)));
  }
};

void binary_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const Binary&>(p);
  const char* name = op_name(prim.op);
  ops::visit_binary(prim.op, [&](auto op) {
    using Op = decltype(op);
    KILN_DISPATCH_ALL(name, inputs[0].dtype(), {
      if constexpr (Op::template supports<T>) {
        using C = acc_t<T>;
        using R = decltype(op(C{}, C{}));
        using Out = std::conditional_t<std::is_same_v<R, bool>, bool, T>;
        launch_binary<T, Out>(inputs[0], inputs[1], out, BinaryFn<Op, T, Out>{op}, name);
      } else {
        detail::unsupported_dtype(name, inputs[0].dtype());
      }
    });
  });
}

}  // namespace

void register_gpu_binary() {
#define KILN_X(n) register_kernel(Backend::gpu, op_name(BinaryOp::n), binary_kernel);
  KILN_BINARY_OPS(KILN_X)
#undef KILN_X
}

}  // namespace kiln::cuda
