// How a batched matrix product out = a @ b lies in memory, in the terms BLAS takes: for each
// operand whether it is stored transposed and its leading dimension, plus the batch as strided
// loops. Both backends plan with these functions, so both read transposed operands in place, fold
// a broadcast right operand's batch into M, and copy an operand only when no BLAS layout fits.
// Host code only (the CUDA backend includes it too).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kiln/array.h"

namespace kiln::gemm {

// One operand as BLAS sees a rows x cols matrix of it. Row-major (trans false): element (i, j) at
// i * ld + j. Transposed (trans true): at i + j * ld. rs and cs are its actual element strides.
struct Operand {
  bool trans = false;
  int64_t ld = 1;
  int64_t rs = 0;
  int64_t cs = 0;
};

// Finds a BLAS layout for a rows x cols matrix whose elements step by rs along rows and cs along
// columns. Row-major wins when both fit (1 x 1, say). Broadcast (stride 0), negative and
// overlapping strides have none.
inline bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, Operand& op) {
  op.rs = rs;
  op.cs = cs;
  if (cols == 1 || cs == 1) {
    int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : rs;
    if (ld >= std::max<int64_t>(cols, 1)) {
      op.trans = false;
      op.ld = ld;
      return true;
    }
  }
  if (rows == 1 || rs == 1) {
    int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : cs;
    if (ld >= std::max<int64_t>(rows, 1)) {
      op.trans = true;
      op.ld = ld;
      return true;
    }
  }
  return false;
}

// The batch of products as nested strided loops: axes of length 1 dropped and adjacent axes
// merged where all three operands allow it.
struct Batch {
  Shape shape;  // outermost first; empty means a single product
  Strides a, b, out;

  int64_t count() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  // Element offsets of product i (row-major over `shape`).
  void offsets(int64_t i, int64_t& oa, int64_t& ob, int64_t& oo) const {
    oa = ob = oo = 0;
    for (size_t d = shape.size(); d-- > 0;) {
      int64_t idx = i % shape[d];
      i /= shape[d];
      oa += idx * a[d];
      ob += idx * b[d];
      oo += idx * out[d];
    }
  }
};

// A batched GEMM: out (row-contiguous, ld N) = a (M x K) @ b (K x N) for each batch entry.
struct Plan {
  int64_t M = 0, N = 0, K = 0;
  Operand a, b;
  Batch batch;
};

// The plan for a of shape batch + (M, K) with strides sa and b of shape batch + (K, N) with
// strides sb into a row-contiguous out of shape batch + (M, N). An operand with no BLAS layout
// gets ld 0 and keeps only its strides: BLAS kernels copy such operands first (compact_layout),
// kernels that gather their inputs anyway read them through rs and cs.
inline Plan make_plan(const Shape& out_shape, int64_t K, const Strides& sa, const Strides& sb) {
  Plan p;
  const size_t nd = out_shape.size();
  const size_t nb = nd - 2;
  p.M = out_shape[nd - 2];
  p.N = out_shape[nd - 1];
  p.K = K;
  if (!blas_layout(p.M, K, sa[nd - 2], sa[nd - 1], p.a)) p.a = {false, 0, sa[nd - 2], sa[nd - 1]};
  if (!blas_layout(K, p.N, sb[nd - 2], sb[nd - 1], p.b)) p.b = {false, 0, sb[nd - 2], sb[nd - 1]};

  // (B, M, K) @ (K, N): when b is the same matrix for every batch entry and a's batch axes and
  // rows form one evenly strided run, the whole batch is one GEMM with B * M rows.
  bool b_shared = true;
  for (size_t d = 0; d < nb; ++d) b_shared &= out_shape[d] == 1 || sb[d] == 0;
  if (b_shared && nb > 0 && p.a.ld > 0 && !p.a.trans) {
    int64_t run_stride = 0, run_size = 1;
    bool ok = true;
    auto extend = [&](int64_t size, int64_t stride) {
      if (size == 1) return;
      if (run_size == 1) {
        run_stride = stride;
        run_size = size;
      } else if (stride == run_stride * run_size) {
        run_size *= size;
      } else {
        ok = false;
      }
    };
    extend(p.M, sa[nd - 2]);
    for (size_t d = nb; d-- > 0;) extend(out_shape[d], sa[d]);
    int64_t ld = run_size == 1 ? std::max<int64_t>(K, 1) : run_stride;
    if (ok && ld >= std::max<int64_t>(K, 1) && (K == 1 || sa[nd - 1] == 1)) {
      int64_t rows = p.M;
      for (size_t d = 0; d < nb; ++d) rows *= out_shape[d];
      p.M = rows;
      p.a = {false, ld, ld, sa[nd - 1]};
      return p;
    }
  }

  Strides so(nb);
  int64_t step = p.M * p.N;
  for (size_t d = nb; d-- > 0;) {
    so[d] = step;
    step *= out_shape[d];
  }
  for (size_t d = 0; d < nb; ++d) {
    if (out_shape[d] == 1) continue;
    Batch& bt = p.batch;
    if (!bt.shape.empty() && bt.a.back() == sa[d] * out_shape[d] && bt.b.back() == sb[d] * out_shape[d] &&
        bt.out.back() == so[d] * out_shape[d]) {
      bt.shape.back() *= out_shape[d];
      bt.a.back() = sa[d];
      bt.b.back() = sb[d];
      bt.out.back() = so[d];
    } else {
      bt.shape.push_back(out_shape[d]);
      bt.a.push_back(sa[d]);
      bt.b.push_back(sb[d]);
      bt.out.push_back(so[d]);
    }
  }
  return p;
}

// Where a kernel copies an operand that has no BLAS layout: broadcast batch axes (stride 0) stay
// broadcast, so a shared matrix is copied once; everything else becomes row-contiguous.
// `copy_shape` is what to gather (broadcast batch axes as 1); `read_strides` reads the copy back
// with the operand's full shape.
inline void compact_layout(const Shape& shape, const Strides& strides, Shape& copy_shape, Strides& read_strides) {
  const size_t nd = shape.size();
  copy_shape = shape;
  for (size_t d = 0; d + 2 < nd; ++d) {
    if (strides[d] == 0) copy_shape[d] = 1;
  }
  read_strides = row_major_strides(copy_shape);
  for (size_t d = 0; d < nd; ++d) {
    if (copy_shape[d] != shape[d]) read_strides[d] = 0;
  }
}

}  // namespace kiln::gemm
