#include "kiln/backend/cpu/blas.h"

#include <cblas.h>

#include <algorithm>

#include "kiln/backend/cpu/parallel.h"

namespace kiln::cpu::blas {

namespace {

// Checked at every call: a program may set OpenBLAS's threads itself (bench/core_bench.cpp times
// OpenBLAS alone with its own threads).
void one_blas_thread() {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

CBLAS_TRANSPOSE trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

void call(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(bool ta, bool tb, int m, int n, int k, complex64_t alpha, const complex64_t* a, int lda,
          const complex64_t* b, int ldb, complex64_t beta, complex64_t* c, int ldc) {
  cblas_cgemm(CblasRowMajor, trans(ta), trans(tb), m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc);
}

// Splits the longer of C's two sides into a block per thread (a multiple of 8 long, so column
// blocks start 32 bytes apart), each a product of its own: a block of rows reads all of B, a
// block of columns all of A.
template <class T>
void split(bool ta, bool tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
           int ldc) {
  one_blas_thread();
  const bool by_rows = m > n;
  const int len = by_rows ? m : n;
  const int threads = std::min(num_threads(), len / 8);
  if (threads <= 1 || double(m) * n * k < double(kSplitWork)) {
    call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int block = ((len + threads - 1) / threads + 7) / 8 * 8;
  const int blocks = (len + block - 1) / block;
  parallel_for(blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const int s = static_cast<int>(i) * block, e = std::min(len, s + block);
      if (by_rows) {
        const T* ai = ta ? a + s : a + int64_t{s} * lda;
        call(ta, tb, e - s, n, k, alpha, ai, lda, b, ldb, beta, c + int64_t{s} * ldc, ldc);
      } else {
        const T* bi = tb ? b + int64_t{s} * ldb : b + s;
        call(ta, tb, m, e - s, k, alpha, a, lda, bi, ldb, beta, c + s, ldc);
      }
    }
  });
}

}  // namespace

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  split(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc) {
  split(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, complex64_t alpha, const complex64_t* a, int lda,
          const complex64_t* b, int ldb, complex64_t beta, complex64_t* c, int ldc) {
  split(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace kiln::cpu::blas
