// CPU kernel of pool (kiln/primitives_conv.h): in parallel over output positions (n, o...); per
// position the taps that land inside the input, each a contiguous row of C channels folded into
// a row of accumulators, so the inner loop runs over channels and vectorises. Padding is never
// read: max skips it, avg only counts it.
#include <algorithm>
#include <memory>
#include <vector>

#include "kiln/backend/common/pool.h"
#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_conv.h"

namespace kiln::cpu {

namespace {

// Calls fn(row) with the input row (channel 0) of every in-bounds tap of output position r.
template <class F>
void for_each_tap(const pool::Geometry& g, int64_t r, int64_t (&lo)[3], int64_t (&hi)[3], F&& fn) {
  int64_t o[3];
  const int64_t n = g.split(r, o);
  for (int j = 0; j < 3; ++j) g.taps(j, o[j], lo[j], hi[j]);
  for (int64_t a = lo[0]; a < hi[0]; ++a) {
    const int64_t p0 = n * g.S[0] + g.pos(0, o[0], a);
    for (int64_t b = lo[1]; b < hi[1]; ++b) {
      const int64_t p1 = p0 * g.S[1] + g.pos(1, o[1], b);
      for (int64_t c = lo[2]; c < hi[2]; ++c) fn((p1 * g.S[2] + g.pos(2, o[2], c)) * g.C);
    }
  }
}

template <class T>
void max_pool_typed(const pool::Geometry& g, const T* src, T* dst, int64_t rows) {
  using M = reduce::Max<T>;
  using A = typename M::Acc;
  const int64_t C = g.C, taps = g.K[0] * g.K[1] * g.K[2];
  parallel_for(rows, std::max<int64_t>(1, 16384 / (C * taps)), [&](int64_t b, int64_t e) {
    std::unique_ptr<A[]> acc(new A[C]);  // not a vector: vector<bool> has no data()
    A* m = acc.get();
    const M op{};
    for (int64_t r = b; r < e; ++r) {
      std::fill(m, m + C, M::init());
      int64_t lo[3], hi[3];
      for_each_tap(g, r, lo, hi, [&](int64_t s) {
        const T* x = src + s;
        for (int64_t c = 0; c < C; ++c) m[c] = op(m[c], M::load(x[c]));
      });
      T* y = dst + r * C;
      for (int64_t c = 0; c < C; ++c) y[c] = static_cast<T>(m[c]);
    }
  });
}

template <class T>
void avg_pool_typed(const pool::Geometry& g, bool count_include_pad, const T* src, T* dst, int64_t rows) {
  using A = acc_t<T>;  // float, or double for double
  const int64_t C = g.C, taps = g.K[0] * g.K[1] * g.K[2];
  parallel_for(rows, std::max<int64_t>(1, 16384 / (C * taps)), [&](int64_t b, int64_t e) {
    std::vector<A> acc(static_cast<size_t>(C));
    A* sum = acc.data();
    for (int64_t r = b; r < e; ++r) {
      std::fill(sum, sum + C, A(0));
      int64_t lo[3], hi[3];
      for_each_tap(g, r, lo, hi, [&](int64_t s) {
        const T* x = src + s;
        for (int64_t c = 0; c < C; ++c) sum[c] += static_cast<A>(x[c]);
      });
      const A n = static_cast<A>(count_include_pad ? taps : (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
      T* y = dst + r * C;
      for (int64_t c = 0; c < C; ++c) y[c] = static_cast<T>(sum[c] / n);
    }
  });
}

void pool_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Pool&>(prim);
  const array& in = inputs[0];
  const pool::Geometry g = pool::geometry(p, in, out);
  const int64_t rows = g.N * g.O[0] * g.O[1] * g.O[2];
  if (p.kind == PoolKind::max) {
    KILN_DISPATCH_REAL(p.name(), out.dtype(), {
      T* dst = allocate<T>(out);
      if (out.size() > 0) max_pool_typed<T>(g, in.host_data<T>(), dst, rows);
    });
  } else {
    KILN_DISPATCH_FLOAT(p.name(), out.dtype(), {
      T* dst = allocate<T>(out);
      if (out.size() > 0) avg_pool_typed<T>(g, p.count_include_pad, in.host_data<T>(), dst, rows);
    });
  }
}

}  // namespace

void register_cpu_pool() { register_kernel(Backend::cpu, "pool", pool_kernel); }

}  // namespace kiln::cpu
