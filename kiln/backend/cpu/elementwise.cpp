// CPU kernels of the elementwise primitives: unary, binary, where, astype and copy.
#include <algorithm>
#include <cstring>

#include "kiln/backend/common/binary_ops.h"
#include "kiln/backend/common/bytes.h"
#include "kiln/backend/common/unary_ops.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_elementwise.h"

namespace kiln::cpu {

namespace {

// Output layout for elementwise results: when every input is dense with the same strides the
// output takes those strides too and the work is one flat loop; otherwise row-contiguous.
bool same_dense_layout(const std::vector<array>& inputs) {
  for (auto& in : inputs) {
    if (!in.dense() || in.strides() != inputs[0].strides()) return false;
  }
  return true;
}

template <class In, class Out, class F>
void map_unary(const array& in, array& out, F f) {
  const In* src = in.host_data<In>();
  if (in.dense()) {
    Out* dst = allocate_like<Out>(out, in.strides(), in.data_size());
    parallel_for(in.data_size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = f(src[i]);
    });
    return;
  }
  Out* dst = allocate<Out>(out);
  Strides out_strides = row_major_strides(out.shape());
  auto c = collapse<2>(out.shape(), {&in.strides(), &out_strides});
  parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for_each_strided(c, b, e, [&](const std::array<int64_t, 2>& o) { dst[o[1]] = f(src[o[0]]); });
  });
}

template <class In, class Out, class F>
void map_binary(const array& a, const array& b, array& out, F f) {
  const In* x = a.host_data<In>();
  const In* y = b.host_data<In>();
  if (same_dense_layout({a, b})) {
    Out* dst = allocate_like<Out>(out, a.strides(), a.data_size());
    parallel_for(a.data_size(), kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) dst[i] = f(x[i], y[i]);
    });
    return;
  }
  Out* dst = allocate<Out>(out);
  bool a_scalar = a.size() > 0 && std::all_of(a.strides().begin(), a.strides().end(), [](int64_t s) { return s == 0; });
  bool b_scalar = b.size() > 0 && std::all_of(b.strides().begin(), b.strides().end(), [](int64_t s) { return s == 0; });
  if (a_scalar && b.row_contiguous()) {
    In v = x[0];
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) dst[i] = f(v, y[i]);
    });
    return;
  }
  if (b_scalar && a.row_contiguous()) {
    In v = y[0];
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) dst[i] = f(x[i], v);
    });
    return;
  }
  Strides out_strides = row_major_strides(out.shape());
  auto c = collapse<3>(out.shape(), {&a.strides(), &b.strides(), &out_strides});
  parallel_for(out.size(), kElementwiseGrain, [&](int64_t s, int64_t e) {
    for_each_strided(c, s, e, [&](const std::array<int64_t, 3>& o) { dst[o[2]] = f(x[o[0]], y[o[1]]); });
  });
}

void unary_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const Unary&>(p);
  const array& in = inputs[0];
  ops::visit_unary(prim.op, [&](auto op) {
    using Op = decltype(op);
    KILN_DISPATCH_ALL(op_name(prim.op), in.dtype(), {
      if constexpr (Op::template supports<T>) {
        using C = acc_t<T>;
        using R = decltype(op(C{}));
        // The front end chose the output dtype; the functor's result converts to it.
        if constexpr (std::is_same_v<R, bool>) {
          map_unary<T, bool>(in, out, [op](T v) { return op(static_cast<C>(v)); });
        } else if constexpr (std::is_same_v<R, C>) {
          map_unary<T, T>(in, out, [op](T v) { return convert<T>(op(static_cast<C>(v))); });
        } else {
          map_unary<T, R>(in, out, [op](T v) { return op(static_cast<C>(v)); });
        }
      } else {
        detail::unsupported_dtype(op_name(prim.op), in.dtype());
      }
    });
  });
}

void binary_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const Binary&>(p);
  ops::visit_binary(prim.op, [&](auto op) {
    using Op = decltype(op);
    KILN_DISPATCH_ALL(op_name(prim.op), inputs[0].dtype(), {
      if constexpr (Op::template supports<T>) {
        using C = acc_t<T>;
        using R = decltype(op(C{}, C{}));
        if constexpr (std::is_same_v<R, bool>) {
          map_binary<T, bool>(inputs[0], inputs[1], out,
                              [op](T a, T b) { return op(static_cast<C>(a), static_cast<C>(b)); });
        } else {
          map_binary<T, T>(inputs[0], inputs[1], out,
                           [op](T a, T b) { return convert<T>(op(static_cast<C>(a), static_cast<C>(b))); });
        }
      } else {
        detail::unsupported_dtype(op_name(prim.op), inputs[0].dtype());
      }
    });
  });
}

void where_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array &c = inputs[0], &x = inputs[1], &y = inputs[2];
  KILN_DISPATCH_ALL("where", out.dtype(), {
    const bool* cp = c.host_data<bool>();
    const T* xp = x.host_data<T>();
    const T* yp = y.host_data<T>();
    T* dst = allocate<T>(out);
    Strides os = row_major_strides(out.shape());
    auto col = collapse<4>(out.shape(), {&c.strides(), &x.strides(), &y.strides(), &os});
    parallel_for(out.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for_each_strided(col, b, e, [&](const std::array<int64_t, 4>& o) { dst[o[3]] = cp[o[0]] ? xp[o[1]] : yp[o[2]]; });
    });
  });
}

template <class In>
void astype_from(const array& in, array& out) {
  KILN_DISPATCH_ALL("astype", out.dtype(), { map_unary<In, T>(in, out, [](In v) { return convert<T>(v); }); });
}

void astype_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  KILN_DISPATCH_ALL("astype", inputs[0].dtype(), { astype_from<T>(inputs[0], out); });
}

// Writes the input's elements in its row-major order into a new row-contiguous buffer. Reshape
// relies on this order when it has to copy.
void copy_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& in = inputs[0];
  size_t item = in.itemsize();
  out.set_data(std::make_shared<Buffer>(out.nbytes()));
  char* dst = static_cast<char*>(out.buffer()->write_host());
  const char* src = static_cast<const char*>(in.buffer()->read_host()) + in.offset() * item;
  if (in.row_contiguous()) {
    parallel_for(in.size() * item, kElementwiseGrain * 8, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, e - b);
    });
    return;
  }
  Strides os = row_major_strides(in.shape());
  auto c = collapse<2>(in.shape(), {&in.strides(), &os});
  auto run = [&](auto tag) {
    using U = decltype(tag);
    const U* s = reinterpret_cast<const U*>(src);
    U* d = reinterpret_cast<U*>(dst);
    parallel_for(in.size(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for_each_strided(c, b, e, [&](const std::array<int64_t, 2>& o) { d[o[1]] = s[o[0]]; });
    });
  };
  dispatch_bytes(item, run);
}

}  // namespace

void register_cpu_elementwise() {
#define KILN_X(n) register_kernel(Backend::cpu, op_name(UnaryOp::n), unary_kernel);
  KILN_UNARY_OPS(KILN_X)
#undef KILN_X
#define KILN_X(n) register_kernel(Backend::cpu, op_name(BinaryOp::n), binary_kernel);
  KILN_BINARY_OPS(KILN_X)
#undef KILN_X
  register_kernel(Backend::cpu, "where", where_kernel);
  register_kernel(Backend::cpu, "astype", astype_kernel);
  register_kernel(Backend::cpu, "copy", copy_kernel);
}

}  // namespace kiln::cpu
