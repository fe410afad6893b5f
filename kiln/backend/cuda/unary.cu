// CUDA kernels of the unary primitives.
#include "kiln/backend/common/unary_ops.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"

namespace kiln::cuda {

namespace {

template <class Op, class T, class Out>
struct UnaryFn {
  Op op;
  __device__ __forceinline__ Out operator()(T v) const { return convert<Out>(op(static_cast<acc_t<T>>(v))); }
};

void unary_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const Unary&>(p);
  const array& in = inputs[0];
  const char* name = op_name(prim.op);
  ops::visit_unary(prim.op, [&](auto op) {
    using Op = decltype(op);
    KILN_DISPATCH_ALL(name, in.dtype(), {
      if constexpr (Op::template supports<T>) {
        using C = acc_t<T>;
        using R = decltype(op(C{}));
        using Out = std::conditional_t<std::is_same_v<R, bool>, bool, std::conditional_t<std::is_same_v<R, C>, T, R>>;
        launch_unary<T, Out>(in, out, UnaryFn<Op, T, Out>{op}, name);
      } else {
        detail::unsupported_dtype(name, in.dtype());
      }
    });
  });
}

}  // namespace

void register_gpu_unary() {
#define KILN_X(n) register_kernel(Backend::gpu, op_name(UnaryOp::n), unary_kernel);
  KILN_UNARY_OPS(KILN_X)
#undef KILN_X
}

}  // namespace kiln::cuda
