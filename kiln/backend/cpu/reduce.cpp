// CPU kernels of the reductions (sum, prod, max, min, all, any), the arg-reductions and the fused
// softmax. Inputs of any layout are read through their strides (see reduce::reduce_layout):
// contiguous rows and full reductions use a pairwise tree, reductions over outer axes sweep
// contiguous blocks of columns, anything else gathers through the strides.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_reduce.h"

namespace kiln::cpu {

namespace {

using reduce::ReduceLayout;

// Reduced elements per work item. Fixed (not derived from the thread count) so that a result
// does not depend on how many threads computed it.
constexpr int64_t kChunk = 1 << 14;
// Reduced rows per work item of a column reduction, and columns swept together.
constexpr int64_t kColumnRows = 1024;
constexpr int64_t kColumnWidth = 128;
// Rows accumulated sequentially before joining the pairwise cascade.
constexpr int64_t kColumnBlock = 64;

template <class A>
struct Identity {
  A operator()(A v) const { return v; }
};

template <class Op>
struct extreme_of {
  static constexpr int value = 0;
};
template <class T>
struct extreme_of<reduce::Max<T>> {
  static constexpr int value = 1;
};
template <class T>
struct extreme_of<reduce::Min<T>> {
  static constexpr int value = -1;
};

// NaN-propagating max (IsMax) or min of n contiguous floats, eight lanes at a time with the
// GCC/Clang vector extensions and NaN tracked on the side: the scalar form, with a NaN test per
// element, runs several times slower.
// 16-byte vectors (one SSE/NEON register) of the GCC/Clang vector extensions.
template <class A>
struct vec16;
template <>
struct vec16<float> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct vec16<double> {
  typedef double type __attribute__((vector_size(16)));
};

// NaN-propagating max (IsMax) or min of n contiguous floats, two 16-byte vectors at a time with
// NaN tracked on the side: the scalar form, with a NaN test per element, runs several times
// slower.
template <bool IsMax, class A>
A extreme_contiguous(const A* x, int64_t n) {
  using V = typename vec16<A>::type;
  using M = decltype(V{} != V{});
  constexpr int L = static_cast<int>(16 / sizeof(A));
  const A init = IsMax ? reduce::lowest_value<A>() : reduce::highest_value<A>();
  V a0, a1;
  for (int k = 0; k < L; ++k) a0[k] = a1[k] = init;
  M nan = {};
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    V v0, v1;
    std::memcpy(&v0, x + i, sizeof(V));
    std::memcpy(&v1, x + i + L, sizeof(V));
    if constexpr (IsMax) {
      a0 = v0 > a0 ? v0 : a0;
      a1 = v1 > a1 ? v1 : a1;
    } else {
      a0 = v0 < a0 ? v0 : a0;
      a1 = v1 < a1 ? v1 : a1;
    }
    nan |= (v0 != v0) | (v1 != v1);
  }
  A r = init;
  bool any_nan = false;
  auto fold = [&](A v) { r = IsMax ? (v > r ? v : r) : (v < r ? v : r); };
  for (int k = 0; k < L; ++k) {
    fold(a0[k]);
    fold(a1[k]);
    any_nan |= nan[k] != 0;
  }
  for (int j = 0; j < 2 * L && i + j < n; ++j) {  // fewer than 2 * L remain
    A v = x[i + j];
    any_nan |= v != v;
    fold(v);
  }
  return any_nan ? std::numeric_limits<A>::quiet_NaN() : r;
}

// Pairwise (tree) reduction of n contiguous elements: eight independent accumulators over
// blocks of up to 128 elements (which also lets the compiler vectorize), halves combined
// recursively, so rounding error grows with log(n) rather than n.
template <class Op, class U, class Load>
typename Op::Acc pairwise(const U* x, int64_t n, Op op, Load load) {
  using Acc = typename Op::Acc;
  if constexpr (extreme_of<Op>::value != 0 && std::is_floating_point_v<Acc> && std::is_same_v<U, Acc>) {
    return extreme_contiguous<(extreme_of<Op>::value > 0)>(x, n);  // the load is the identity here
  }
  if (n <= 128) {
    Acc a[8];
    for (auto& v : a) v = Op::init();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) a[k] = op(a[k], load(x[i + k]));
    }
    for (; i < n; ++i) a[0] = op(a[0], load(x[i]));
    return op(op(op(a[0], a[1]), op(a[2], a[3])), op(op(a[4], a[5]), op(a[6], a[7])));
  }
  int64_t half = (n / 2) & ~int64_t{7};
  return op(pairwise(x, half, op, load), pairwise(x + half, n - half, op, load));
}

inline Collapsed<1> make_collapsed(Shape shape, Strides strides) {
  Collapsed<1> c;
  if (shape.empty()) {
    shape = {1};
    strides = {0};
  }
  c.shape = std::move(shape);
  c.strides[0] = std::move(strides);
  return c;
}

// The kept axes without the last one (the outer index of a column reduction).
inline Collapsed<1> outer_of(const ReduceLayout& l) {
  return make_collapsed(Shape(l.kept_shape.begin(), l.kept_shape.end() - 1),
                        Strides(l.kept_strides.begin(), l.kept_strides.end() - 1));
}

// Element offset of flat index i of a collapsed layout.
inline int64_t offset_of(const Collapsed<1>& c, int64_t i) {
  int64_t off = 0;
  for (int d = static_cast<int>(c.shape.size()) - 1; d >= 0; --d) {
    off += (i % c.shape[d]) * c.strides[0][d];
    i /= c.shape[d];
  }
  return off;
}

// Reduces the elements [b, e) (at most kChunk) of the reduced index space through its strides:
// gathers blocks of 256 and combines their pairwise results pairwise.
template <class Op, class T>
typename Op::Acc gathered(const T* x, const Collapsed<1>& red, int64_t b, int64_t e, Op op) {
  using Acc = typename Op::Acc;
  Acc buf[256];
  Acc blocks[kChunk / 256];
  int nb = 0, k = 0;
  for_each_strided(red, b, e, [&](const std::array<int64_t, 1>& off) {
    buf[k++] = Op::load(x[off[0]]);
    if (k == 256) {
      blocks[nb++] = pairwise(buf, 256, op, Identity<Acc>{});
      k = 0;
    }
  });
  if (k) blocks[nb++] = pairwise(buf, k, op, Identity<Acc>{});
  return pairwise(blocks, nb, op, Identity<Acc>{});
}

// Writes out[o] = combine of the `chunks` partial results of output o.
template <class Op, class Out>
void combine_chunks(const typename Op::Acc* part, int64_t chunks, Out* dst, int64_t n_out, Op op) {
  using Acc = typename Op::Acc;
  parallel_for(n_out, std::max<int64_t>(1, kElementwiseGrain / chunks), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) dst[o] = convert<Out>(pairwise(part + o * chunks, chunks, op, Identity<Acc>{}));
  });
}

// rows and general layouts: each output reduces its own elements, in chunks of kChunk.
template <class Op, class T, class Out>
void reduce_each(const T* x, const ReduceLayout& l, Out* dst, Op op) {
  using Acc = typename Op::Acc;
  Collapsed<1> kept = make_collapsed(l.kept_shape, l.kept_strides);
  Collapsed<1> red = make_collapsed(l.red_shape, l.red_strides);
  const int64_t R = l.reduced, n_out = l.outputs;
  const int64_t chunks = (R + kChunk - 1) / kChunk;
  auto chunk = [&](int64_t base, int64_t c) -> Acc {
    int64_t b = c * kChunk, e = std::min(R, b + kChunk);
    if (l.kind == ReduceLayout::rows) return pairwise(x + base + b, e - b, op, [](T v) { return Op::load(v); });
    return gathered(x + base, red, b, e, op);
  };
  if (chunks == 1) {
    parallel_for(n_out, std::max<int64_t>(1, kElementwiseGrain / R), [&](int64_t b, int64_t e) {
      int64_t o = b;
      for_each_strided(kept, b, e, [&](const std::array<int64_t, 1>& off) { dst[o++] = convert<Out>(chunk(off[0], 0)); });
    });
    return;
  }
  // (not std::vector: vector<bool> has no data())
  std::unique_ptr<Acc[]> part(new Acc[n_out * chunks]);
  parallel_for(n_out * chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) part[i] = chunk(offset_of(kept, i / chunks), i % chunks);
  });
  combine_chunks(part.get(), chunks, dst, n_out, op);
}

// columns layout: the last kept axis (length I) is contiguous, so blocks of up to kColumnWidth
// neighbouring outputs are accumulated together while walking the reduced elements. Rows are
// summed in blocks of kColumnBlock joined by a binary cascade (pairwise error growth).
template <class Op, class T, class Out>
void reduce_columns(const T* x, const ReduceLayout& l, Out* dst, Op op) {
  using Acc = typename Op::Acc;
  constexpr int64_t W = kColumnWidth;
  const int64_t I = l.kept_shape.back();
  Collapsed<1> outer = outer_of(l);
  Collapsed<1> red = make_collapsed(l.red_shape, l.red_strides);
  const int64_t R = l.reduced, n_out = l.outputs, n_outer = n_out / I;
  const int64_t blocks = (I + W - 1) / W;
  const int64_t chunks = (R + kColumnRows - 1) / kColumnRows;
  std::unique_ptr<Acc[]> part(chunks > 1 ? new Acc[n_out * chunks] : nullptr);

  auto item = [&](int64_t it) {
    int64_t c = it % chunks, j = (it / chunks) % blocks, o = it / chunks / blocks;
    int64_t base = offset_of(outer, o) + j * W;
    int64_t w = std::min(W, I - j * W);
    int64_t rb = c * kColumnRows, re = std::min(R, rb + kColumnRows);
    Acc level[16][W];
    Acc blk[W];
    uint32_t count = 0;
    for (int64_t r0 = rb; r0 < re; r0 += kColumnBlock) {
      for (int64_t i = 0; i < w; ++i) blk[i] = Op::init();
      for_each_strided(red, r0, std::min(re, r0 + kColumnBlock), [&](const std::array<int64_t, 1>& off) {
        const T* p = x + base + off[0];
        for (int64_t i = 0; i < w; ++i) blk[i] = op(blk[i], Op::load(p[i]));
      });
      int lv = 0;
      for (; (count >> lv) & 1u; ++lv) {
        for (int64_t i = 0; i < w; ++i) blk[i] = op(level[lv][i], blk[i]);
      }
      std::copy(blk, blk + w, level[lv]);
      ++count;
    }
    for (int64_t i = 0; i < w; ++i) blk[i] = Op::init();
    for (int lv = 15; lv >= 0; --lv) {
      if ((count >> lv) & 1u) {
        for (int64_t i = 0; i < w; ++i) blk[i] = op(blk[i], level[lv][i]);
      }
    }
    int64_t first = o * I + j * W;
    for (int64_t i = 0; i < w; ++i) {
      if (chunks == 1) {
        dst[first + i] = convert<Out>(blk[i]);
      } else {
        part[(first + i) * chunks + c] = blk[i];
      }
    }
  };
  int64_t items = n_outer * blocks * chunks;
  int64_t per_item = std::min(R, kColumnRows) * std::min(I, W);
  parallel_for(items, std::max<int64_t>(1, kElementwiseGrain / per_item), [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) item(it);
  });
  if (chunks > 1) combine_chunks(part.get(), chunks, dst, n_out, op);
}

template <class Op, class T, class Out>
void reduce_typed(const array& in, array& out, const std::vector<int>& axes) {
  Op op;
  Out* dst = allocate<Out>(out);
  if (out.size() == 0) return;
  auto l = reduce::reduce_layout(in.shape(), in.strides(), axes);
  if (l.reduced == 0) {
    std::fill(dst, dst + out.size(), convert<Out>(Op::init()));
    return;
  }
  const T* x = in.host_data<T>();
  if (l.kind == ReduceLayout::columns) {
    reduce_columns<Op, T, Out>(x, l, dst, op);
  } else {
    reduce_each<Op, T, Out>(x, l, dst, op);
  }
}

// The output is the op's natural dtype, or the accumulation dtype when the front end asked for
// it (sum of 16-bit floats in float32, for mean).
template <class Op, class T>
void reduce_run(const Reduce& p, const array& in, array& out) {
  using Out = typename Op::Out;
  using Acc = typename Op::Acc;
  if (out.dtype() == dtype_of<Out>::value) {
    reduce_typed<Op, T, Out>(in, out, p.axes);
    return;
  }
  if constexpr (!std::is_same_v<Out, Acc>) {
    if (out.dtype() == dtype_of<Acc>::value) {
      reduce_typed<Op, T, Acc>(in, out, p.axes);
      return;
    }
  }
  fail<TypeError>("[", p.name(), "] cannot reduce ", in.dtype(), " into ", out.dtype());
}

void reduce_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Reduce&>(prim);
  const array& in = inputs[0];
  const char* name = p.name();
  switch (p.op) {
    case ReduceOp::sum:
      KILN_DISPATCH_ALL(name, in.dtype(), { reduce_run<reduce::Sum<T>, T>(p, in, out); });
      break;
    case ReduceOp::prod:
      KILN_DISPATCH_ALL(name, in.dtype(), { reduce_run<reduce::Prod<T>, T>(p, in, out); });
      break;
    case ReduceOp::max:
      KILN_DISPATCH_REAL(name, in.dtype(), { reduce_run<reduce::Max<T>, T>(p, in, out); });
      break;
    case ReduceOp::min:
      KILN_DISPATCH_REAL(name, in.dtype(), { reduce_run<reduce::Min<T>, T>(p, in, out); });
      break;
    case ReduceOp::all:
      if (in.dtype() != bool_) detail::unsupported_dtype(name, in.dtype());
      reduce_run<reduce::All, bool>(p, in, out);
      break;
    case ReduceOp::any:
      if (in.dtype() != bool_) detail::unsupported_dtype(name, in.dtype());
      reduce_run<reduce::Any, bool>(p, in, out);
      break;
  }
}

// ---- argmax / argmin ----

template <bool IsMax, class T>
void arg_typed(const array& in, array& out, int axis) {
  using A = acc_t<T>;
  uint32_t* dst = allocate<uint32_t>(out);
  if (out.size() == 0) return;
  const T* x = in.host_data<T>();
  const int64_t L = in.shape()[axis];
  const int64_t S = in.strides()[axis];
  auto l = reduce::reduce_layout(in.shape(), in.strides(), {axis});
  Collapsed<1> kept = make_collapsed(l.kept_shape, l.kept_strides);
  const int64_t n_out = l.outputs;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / L);

  if (L > 1 && S != 1 && l.kind == ReduceLayout::columns) {
    // Neighbouring outputs are neighbouring elements: sweep blocks of them along the axis.
    constexpr int64_t W = kColumnWidth;
    const int64_t I = l.kept_shape.back(), blocks = (I + W - 1) / W;
    Collapsed<1> outer = outer_of(l);
    parallel_for(n_out / I * blocks, std::max<int64_t>(1, grain / W), [&](int64_t b, int64_t e) {
      A best[W];
      uint32_t idx[W];
      for (int64_t it = b; it < e; ++it) {
        int64_t j = it % blocks, o = it / blocks;
        const T* p = x + offset_of(outer, o) + j * W;
        int64_t w = std::min(W, I - j * W);
        for (int64_t i = 0; i < w; ++i) {
          best[i] = static_cast<A>(p[i]);
          idx[i] = 0;
        }
        for (int64_t k = 1; k < L; ++k) {
          const T* q = p + k * S;
          for (int64_t i = 0; i < w; ++i) {
            A v = static_cast<A>(q[i]);
            if (reduce::arg_better<IsMax>(v, static_cast<uint32_t>(k), best[i], idx[i])) {
              best[i] = v;
              idx[i] = static_cast<uint32_t>(k);
            }
          }
        }
        std::copy(idx, idx + w, dst + o * I + j * W);
      }
    });
    return;
  }
  parallel_for(n_out, grain, [&](int64_t b, int64_t e) {
    int64_t o = b;
    for_each_strided(kept, b, e, [&](const std::array<int64_t, 1>& off) {
      const T* p = x + off[0];
      A best = static_cast<A>(p[0]);
      uint32_t bi = 0;
      for (int64_t k = 1; k < L; ++k) {
        A v = static_cast<A>(p[k * S]);
        if (reduce::arg_better<IsMax>(v, static_cast<uint32_t>(k), best, bi)) {
          best = v;
          bi = static_cast<uint32_t>(k);
        }
      }
      dst[o++] = bi;
    });
  });
}

void arg_reduce_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const ArgReduce&>(prim);
  const array& in = inputs[0];
  if (p.op == ArgReduceOp::argmax) {
    KILN_DISPATCH_REAL(p.name(), in.dtype(), { arg_typed<true, T>(in, out, p.axis); });
  } else {
    KILN_DISPATCH_REAL(p.name(), in.dtype(), { arg_typed<false, T>(in, out, p.axis); });
  }
}

// ---- softmax / log_softmax along the last axis ----

template <class T>
void softmax_typed(const array& in, array& out, bool log_out) {
  using A = acc_t<T>;
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const T* x = in.host_data<T>();
  const int last = in.ndim() - 1;
  const int64_t L = in.shape()[last];
  const int64_t S = in.strides()[last];
  auto l = reduce::reduce_layout(in.shape(), in.strides(), {last});
  Collapsed<1> kept = make_collapsed(l.kept_shape, l.kept_strides);
  parallel_for(l.outputs, std::max<int64_t>(1, kElementwiseGrain / (4 * L)), [&](int64_t b, int64_t e) {
    int64_t o = b;
    for_each_strided(kept, b, e, [&](const std::array<int64_t, 1>& off) {
      const T* p = x + off[0];
      T* q = dst + (o++) * L;
      reduce::Max<A> mx;
      A m = reduce::Max<A>::init();
      if (S == 1) {
        m = pairwise(p, L, mx, [](T v) { return static_cast<A>(v); });
      } else {
        for (int64_t k = 0; k < L; ++k) m = mx(m, static_cast<A>(p[k * S]));
      }
      auto shifted_exp = [m](T v) { return std::exp(static_cast<A>(v) - m); };
      if constexpr (std::is_same_v<T, A>) {
        if (!log_out) {
          // float32/float64: keep the exponentials in the output and scale them (one exp each).
          for (int64_t k = 0; k < L; ++k) q[k] = shifted_exp(p[k * S]);
          A inv = A(1) / pairwise(q, L, reduce::Sum<A>{}, Identity<A>{});
          for (int64_t k = 0; k < L; ++k) q[k] *= inv;
          return;
        }
      }
      A total = 0;
      if (S == 1) {
        total = pairwise(p, L, reduce::Sum<A>{}, shifted_exp);
      } else {
        for (int64_t k = 0; k < L; ++k) total += shifted_exp(p[k * S]);
      }
      if (log_out) {
        A shift = m + std::log(total);
        for (int64_t k = 0; k < L; ++k) q[k] = convert<T>(static_cast<A>(p[k * S]) - shift);
      } else {
        // 16-bit outputs: recompute each exponential rather than round it twice.
        A inv = A(1) / total;
        for (int64_t k = 0; k < L; ++k) q[k] = convert<T>(shifted_exp(p[k * S]) * inv);
      }
    });
  });
}

void softmax_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Softmax&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), inputs[0].dtype(), { softmax_typed<T>(inputs[0], out, p.log); });
}

}  // namespace

void register_cpu_reduce() {
  for (auto op : {ReduceOp::sum, ReduceOp::prod, ReduceOp::max, ReduceOp::min, ReduceOp::all, ReduceOp::any}) {
    register_kernel(Backend::cpu, op_name(op), reduce_kernel);
  }
  register_kernel(Backend::cpu, "argmax", arg_reduce_kernel);
  register_kernel(Backend::cpu, "argmin", arg_reduce_kernel);
  register_kernel(Backend::cpu, "softmax", softmax_kernel);
  register_kernel(Backend::cpu, "log_softmax", softmax_kernel);
}

}  // namespace kiln::cpu
