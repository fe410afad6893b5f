// Decoding's products on the CPU: a few rows of float32 activations times a weight stored (N, K)
// row-major, each weight element read once and converted to float32 as it is read.
#pragma once

#include <cstdint>

#include "kiln/types.h"

namespace kiln::cpu {

// c[m, n] = alpha * sum_k a[m, k] w[n, k] + beta * c[m, n] for m < M <= 8 and n in [n0, n1).
// `a` holds MR(M) rows of K floats (rows past M are zeros, see gemv_padded_rows); `w` rows are ldw
// apart; c rows N apart, read only when beta is not 0. On x86-64 CPUs with AVX2, FMA and F16C the
// loop runs on 8-wide vectors (chosen at run time); elsewhere, or with KILN_CPU_SIMD=0, on a
// portable loop.
template <class T>
void gemv_rows_range(int64_t M, int64_t N, int64_t K, const float* a, const T* w, int64_t ldw, T* c, float alpha,
                     float beta, int64_t n0, int64_t n1);

// Whether gemv_rows_range runs on 8-wide vectors here (16-bit weights then read at memory speed).
bool gemv_rows_vectorized();

// The rows `a` must hold for M rows: 1, 2, 4 or 8.
inline int64_t gemv_padded_rows(int64_t M) { return M == 1 ? 1 : M == 2 ? 2 : M <= 4 ? 4 : 8; }

}  // namespace kiln::cpu
