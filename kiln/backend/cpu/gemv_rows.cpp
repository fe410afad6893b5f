// The few-row product's inner loop, twice: a portable one the compiler vectorizes for the
// baseline instruction set, and one on AVX2/FMA/F16C intrinsics for the CPUs that have them
// (nearly every x86-64 server since 2013). Decoding is bound by reading the weight, so the loop
// must convert and multiply faster than memory delivers: the baseline's 4-wide SSE2 without FMA
// (and a branchy float16 conversion) does not.
#include "kiln/backend/cpu/gemv_rows.h"

#include <cstdlib>
#include <string>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KILN_GEMV_AVX2 1
#endif

namespace kiln::cpu {

namespace {

template <class T>
void store(T* c, int64_t i, float sum, float alpha, float beta) {
  if (alpha != 1.f) sum *= alpha;
  if (beta != 0.f) sum += beta * static_cast<float>(c[i]);
  c[i] = T(sum);
}

// kLanes independent partial sums per row, which the compiler vectorizes.
template <int MR, class T>
void range_portable(int64_t M, int64_t N, int64_t K, const float* a, const T* w, int64_t ldw, T* c, float alpha,
                    float beta, int64_t n0, int64_t n1) {
  constexpr int kLanes = 16;
  for (int64_t n = n0; n < n1; ++n) {
    const T* wr = w + n * ldw;
    float acc[MR][kLanes] = {};
    int64_t k = 0;
    for (; k + kLanes <= K; k += kLanes) {
      float wf[kLanes];
      for (int e = 0; e < kLanes; ++e) wf[e] = static_cast<float>(wr[k + e]);
      for (int m = 0; m < MR; ++m) {
        const float* ar = a + m * K + k;
        for (int e = 0; e < kLanes; ++e) acc[m][e] += wf[e] * ar[e];
      }
    }
    for (int m = 0; m < MR && m < M; ++m) {
      float sum = 0;
      for (int e = 0; e < kLanes; ++e) sum += acc[m][e];
      for (int64_t kk = k; kk < K; ++kk) sum += static_cast<float>(wr[kk]) * a[m * K + kk];
      store(c, m * N + n, sum, alpha, beta);
    }
  }
}

#ifdef KILN_GEMV_AVX2
#define KILN_AVX2 __attribute__((target("avx2,fma,f16c")))

// Eight weights as float32.
template <class T>
KILN_AVX2 inline __m256 load8(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_loadu_ps(p);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (std::is_same_v<T, bfloat16_t>) {
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // the upper half
    } else {
      return _mm256_cvtph_ps(h);
    }
  }
}

KILN_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// U vectors of 8 weights per step, each row with its own U accumulators: enough independent FMA
// chains to hide their latency (U = 4 for one row, fewer as rows add chains).
template <int MR, class T>
KILN_AVX2 void range_avx2(int64_t M, int64_t N, int64_t K, const float* a, const T* w, int64_t ldw, T* c, float alpha,
                          float beta, int64_t n0, int64_t n1) {
  constexpr int U = MR == 1 ? 4 : MR == 2 ? 2 : 1;
  constexpr int kStep = 8 * U;
  for (int64_t n = n0; n < n1; ++n) {
    const T* wr = w + n * ldw;
    __m256 acc[MR][U];
    for (int m = 0; m < MR; ++m) {
      for (int u = 0; u < U; ++u) acc[m][u] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + kStep <= K; k += kStep) {
      __m256 wv[U];
      for (int u = 0; u < U; ++u) wv[u] = load8(wr + k + 8 * u);
      for (int m = 0; m < MR; ++m) {
        for (int u = 0; u < U; ++u)
          acc[m][u] = _mm256_fmadd_ps(wv[u], _mm256_loadu_ps(a + m * K + k + 8 * u), acc[m][u]);
      }
    }
    for (; k + 8 <= K; k += 8) {
      const __m256 wv = load8(wr + k);
      for (int m = 0; m < MR; ++m) acc[m][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(a + m * K + k), acc[m][0]);
    }
    for (int m = 0; m < MR && m < M; ++m) {
      __m256 t = acc[m][0];
      for (int u = 1; u < U; ++u) t = _mm256_add_ps(t, acc[m][u]);
      float sum = hsum(t);
      for (int64_t kk = k; kk < K; ++kk) sum += static_cast<float>(wr[kk]) * a[m * K + kk];
      store(c, m * N + n, sum, alpha, beta);
    }
  }
}

// KILN_CPU_SIMD=0 keeps the portable loop, so tests can check it on any machine.
bool cpu_has_avx2() {
  static const bool has = [] {
    const char* e = std::getenv("KILN_CPU_SIMD");
    if (e && std::string(e) == "0") return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return has;
}
#endif

template <int MR, class T>
void range(int64_t M, int64_t N, int64_t K, const float* a, const T* w, int64_t ldw, T* c, float alpha, float beta,
           int64_t n0, int64_t n1) {
#ifdef KILN_GEMV_AVX2
  if (cpu_has_avx2()) return range_avx2<MR, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
#endif
  range_portable<MR, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
}

}  // namespace

bool gemv_rows_vectorized() {
#ifdef KILN_GEMV_AVX2
  return cpu_has_avx2();
#else
  return false;
#endif
}

template <class T>
void gemv_rows_range(int64_t M, int64_t N, int64_t K, const float* a, const T* w, int64_t ldw, T* c, float alpha,
                     float beta, int64_t n0, int64_t n1) {
  switch (gemv_padded_rows(M)) {
    case 1: return range<1, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
    case 2: return range<2, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
    case 4: return range<4, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
    default: return range<8, T>(M, N, K, a, w, ldw, c, alpha, beta, n0, n1);
  }
}

template void gemv_rows_range<float>(int64_t, int64_t, int64_t, const float*, const float*, int64_t, float*, float,
                                     float, int64_t, int64_t);
template void gemv_rows_range<float16_t>(int64_t, int64_t, int64_t, const float*, const float16_t*, int64_t,
                                         float16_t*, float, float, int64_t, int64_t);
template void gemv_rows_range<bfloat16_t>(int64_t, int64_t, int64_t, const float*, const bfloat16_t*, int64_t,
                                          bfloat16_t*, float, float, int64_t, int64_t);

}  // namespace kiln::cpu
