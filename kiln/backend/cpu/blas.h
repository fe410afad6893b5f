#pragma once
// kiln's calls into OpenBLAS. OpenBLAS's own threads spin in sched_yield after each product while
// kiln's pool runs the other kernels beside them (on 2 cores, a fifth of a prompt went to the
// scheduler). So OpenBLAS runs on one thread, and kiln's pool splits each big product into a
// block of rows or columns per thread: one set of threads serves every CPU kernel.
// Row-major, C = alpha * op(A) op(B) + beta * C, op(X) = X^T where the flag says so.
#include "kiln/dtype.h"

namespace kiln::cpu::blas {

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc);
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc);
void gemm(bool ta, bool tb, int m, int n, int k, complex64_t alpha, const complex64_t* a, int lda,
          const complex64_t* b, int ldb, complex64_t beta, complex64_t* c, int ldc);

}  // namespace kiln::cpu::blas
