#pragma once
// kiln's calls into OpenBLAS. OpenBLAS's own threads spin in sched_yield after each product while
// kiln's pool runs the other kernels beside them (on 2 cores, a fifth of a prompt went to the
// scheduler). So OpenBLAS runs on one thread, and kiln's pool splits each big product into a
// block of rows or columns per thread: one set of threads serves every CPU kernel.
// A program that embeds kiln and sets OpenBLAS's threads itself has them set back to one at
// kiln's next product. Row-major, C = alpha * op(A) op(B) + beta * C, op(X) = X^T where the flag
// says so.
#include <cstdint>

#include "kiln/dtype.h"

namespace kiln::cpu::blas {

// Products of fewer multiply-adds run on the calling thread: splitting them costs more than
// their work. (matmul.cpp spreads batches of such products over the threads instead.)
inline constexpr int64_t kSplitWork = int64_t{1} << 18;

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc);
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc);
void gemm(bool ta, bool tb, int m, int n, int k, complex64_t alpha, const complex64_t* a, int lda,
          const complex64_t* b, int ldb, complex64_t beta, complex64_t* c, int ldc);

}  // namespace kiln::cpu::blas
