// CPU kernel of fused attention. Work items are (batch, query head, block of kQueryBlock query
// rows), run in parallel. An item walks the keys it can see in blocks of kKeyBlock: the block's K
// (transposed) and V rows are converted to float32 once and shared by all of the item's query
// rows, and each row keeps a running max, sum and output (online softmax), so the score matrix
// never exists.
// Inputs are read through their strides (transposed views and broadcast masks cost no copy).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_attention.h"

namespace kiln::cpu {

namespace {

constexpr int64_t kQueryBlock = 32;
constexpr int64_t kKeyBlock = 64;

// A 4-d input: first element and strides of (batch, head, seq, feature).
template <class T>
struct View4 {
  const T* p;
  int64_t s0, s1, s2, s3;
  const T* row(int64_t b, int64_t h, int64_t l) const { return p + b * s0 + h * s1 + l * s2; }
};

template <class T>
View4<T> view4(const array& a) {
  const Strides& s = a.strides();
  return {a.host_data<T>(), s[0], s[1], s[2], s[3]};
}

// dst[i * dst_stride] = float(src[i * stride]) for i < n.
template <class T>
void load_row(const T* src, int64_t stride, int64_t n, float* dst, int64_t dst_stride = 1) {
  if (stride == 1 && dst_stride == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * dst_stride] = static_cast<float>(src[i * stride]);
  }
}

// The inner loops of a key block. On x86-64 each is also built for x86-64-v3 (AVX2, FMA) and
// the loader picks that build where the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define KILN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KILN_VECTOR_CLONES
#endif

// Eight floats as one of GCC's vectors (an AVX register in the x86-64-v3 build, two SSE ones
// otherwise), loaded and stored unaligned. Inlined into each build.
typedef float v8 __attribute__((vector_size(32)));
[[gnu::always_inline]] inline void load8(v8& v, const float* p) { std::memcpy(&v, p, sizeof v); }
[[gnu::always_inline]] inline void store8(float* p, const v8& v) { std::memcpy(p, &v, sizeof v); }

// Query rows that share each key and value vector they load.
constexpr int kRows = 4;

// s[r * ld + j] = scale * (q row r . key j) for R rows of q (D apart) and keys j < n, the keys
// held transposed (kt[d * ld + j]): each feature of q is broadcast against vectors of keys, in
// tiles of 8 W keys whose R x W sums stay in registers. Reads keys up to n rounded up to 8 W,
// which ld must cover.
template <int R, int W>
[[gnu::always_inline]] inline void scores_tiles(const float* q, const float* kt, int64_t ld, int64_t D, int64_t n,
                                                float scale, float* s) {
  for (int64_t j0 = 0; j0 < n; j0 += 8 * W) {
    v8 acc[R][W] = {};
    for (int64_t d = 0; d < D; ++d) {
      v8 k[W];
      for (int w = 0; w < W; ++w) load8(k[w], kt + d * ld + j0 + 8 * w);
      for (int r = 0; r < R; ++r) {
        const float qr = q[r * D + d];
        for (int w = 0; w < W; ++w) acc[r][w] += qr * k[w];
      }
    }
    const int64_t m = std::min<int64_t>(8 * W, n - j0);
    for (int r = 0; r < R; ++r) {
      float t[8 * W];
      for (int w = 0; w < W; ++w) store8(t + 8 * w, acc[r][w] * scale);
      std::copy(t, t + m, s + r * ld + j0);
    }
  }
}

// Row r of a (R rows, Dv apart) = a * alpha[r] + sum over j < n of p[r * ld + j] * (row j of v),
// in tiles of 8 W features whose R x W sums stay in registers; features past the last whole tile
// one by one.
template <int R, int W>
[[gnu::always_inline]] inline void accumulate_tiles(float* a, const float* alpha, const float* p, int64_t ld,
                                                    const float* v, int64_t n, int64_t Dv) {
  int64_t d0 = 0;
  for (; d0 + 8 * W <= Dv; d0 += 8 * W) {
    v8 acc[R][W];
    for (int r = 0; r < R; ++r) {
      for (int w = 0; w < W; ++w) {
        load8(acc[r][w], a + r * Dv + d0 + 8 * w);
        acc[r][w] *= alpha[r];
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      v8 x[W];
      for (int w = 0; w < W; ++w) load8(x[w], v + j * Dv + d0 + 8 * w);
      for (int r = 0; r < R; ++r) {
        const float pr = p[r * ld + j];
        for (int w = 0; w < W; ++w) acc[r][w] += pr * x[w];
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int w = 0; w < W; ++w) store8(a + r * Dv + d0 + 8 * w, acc[r][w]);
    }
  }
  for (; d0 < Dv; ++d0) {
    for (int r = 0; r < R; ++r) {
      float x = a[r * Dv + d0] * alpha[r];
      for (int64_t j = 0; j < n; ++j) x += p[r * ld + j] * v[j * Dv + d0];
      a[r * Dv + d0] = x;
    }
  }
}

// One query row (a decoded token's): plain loops over exactly n keys, which the compiler
// vectorizes (64-wide register tiles measured no faster here).
KILN_VECTOR_CLONES void block_scores(const float* q, const float* kt, int64_t ld, int64_t D, int64_t n, float scale,
                                     float* s) {
  for (int64_t j = 0; j < n; ++j) s[j] = 0.f;
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d];
    const float* kr = kt + d * ld;
    for (int64_t j = 0; j < n; ++j) s[j] += qd * kr[j];
  }
  for (int64_t j = 0; j < n; ++j) s[j] *= scale;
}
KILN_VECTOR_CLONES void block_accumulate(float* a, float alpha, const float* p, const float* v, int64_t n, int64_t Dv) {
  for (int64_t d = 0; d < Dv; ++d) a[d] *= alpha;
  for (int64_t j = 0; j < n; ++j) {
    const float pj = p[j];
    if (pj == 0.f) continue;
    const float* vj = v + j * Dv;
    for (int64_t d = 0; d < Dv; ++d) a[d] += pj * vj[d];
  }
}

// kRows query rows: keys and features 16 at a time.
KILN_VECTOR_CLONES void block_scores_rows(const float* q, const float* kt, int64_t ld, int64_t D, int64_t n,
                                          float scale, float* s) {
  scores_tiles<kRows, 2>(q, kt, ld, D, n, scale, s);
}
KILN_VECTOR_CLONES void block_accumulate_rows(float* a, const float* alpha, const float* p, int64_t ld, const float* v,
                                              int64_t n, int64_t Dv) {
  accumulate_tiles<kRows, 2>(a, alpha, p, ld, v, n, Dv);
}

template <class T>
void attention_typed(const ScaledDotProductAttention& p, const std::vector<array>& inputs, array& out) {
  T* dst = allocate<T>(out);
  if (out.size() == 0) return;
  const View4<T> q = view4<T>(inputs[0]), k = view4<T>(inputs[1]), v = view4<T>(inputs[2]);
  const int64_t B = out.shape(0), Hq = out.shape(1), Lq = out.shape(2), Dv = out.shape(3);
  const int64_t Hkv = inputs[1].shape(1), Lk = inputs[1].shape(2), D = inputs[0].shape(3);
  const int64_t group = Hq / Hkv;
  // The mask: bool (attend or not) or additive of dtype T, shape (B, Hq, Lq, Lk) with any strides.
  const bool has_mask = p.has_mask;
  const bool* mbool = nullptr;
  const T* madd = nullptr;
  int64_t ms[4] = {};
  if (has_mask) {
    const array& m = inputs[3];
    for (int i = 0; i < 4; ++i) ms[i] = m.strides()[i];
    if (p.mask_is_bool) {
      mbool = m.host_data<bool>();
    } else {
      madd = m.host_data<T>();
    }
  }
  const float scale = p.scale;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t qblocks = (Lq + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = B * Hq * qblocks;
  // About 2^16 multiply-adds per work item before it is worth a thread of its own.
  const int64_t work = kQueryBlock * std::max<int64_t>(Lk, 1) * std::max<int64_t>(D + Dv, 1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / work);

  parallel_for(items, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(kQueryBlock * D), kt(D * kKeyBlock), vf(kKeyBlock * Dv), acc(kQueryBlock * Dv);
    std::vector<float> mrow(kQueryBlock), lrow(kQueryBlock), sc(kRows * kKeyBlock);
    for (int64_t it = begin; it < end; ++it) {
      const int64_t qb = it % qblocks, h = (it / qblocks) % Hq, b = it / (qblocks * Hq);
      const int64_t hk = h / group;
      const int64_t r0 = qb * kQueryBlock, r1 = std::min(Lq, r0 + kQueryBlock), rows = r1 - r0;
      for (int64_t r = 0; r < rows; ++r) load_row(q.row(b, h, r0 + r), q.s3, D, qf.data() + r * D);
      std::fill(acc.begin(), acc.end(), 0.f);
      std::fill(mrow.begin(), mrow.end(), neg_inf);
      std::fill(lrow.begin(), lrow.end(), 0.f);
      // Causal: row r sees keys j <= Lk - Lq + r, so the block sees keys below Lk - Lq + r1.
      const int64_t kend = p.causal ? Lk - Lq + r1 : Lk;
      for (int64_t j0 = 0; j0 < kend; j0 += kKeyBlock) {
        const int64_t nk = std::min(kKeyBlock, kend - j0);
        for (int64_t j = 0; j < nk; ++j) {
          load_row(k.row(b, hk, j0 + j), k.s3, D, kt.data() + j, kKeyBlock);  // key j as column j
          load_row(v.row(b, hk, j0 + j), v.s3, Dv, vf.data() + j * Dv);
        }
        // The keys row i sees in this block: [0, n).
        auto seen = [&](int64_t i) { return p.causal ? std::min(nk, Lk - Lq + i - j0 + 1) : nk; };
        // Row r's scores s[0, n) become its weights: masked, then exp(s - new max), zero past its
        // own keys. Updates its max and sum and returns the factor for its old output (1, with
        // every weight 0, when the block shows it nothing).
        auto weigh = [&](int64_t r, float* s, int64_t n) {
          const int64_t i = r0 + r;
          const int64_t jmax = std::max<int64_t>(0, seen(i));
          if (has_mask) {
            for (int64_t j = 0; j < jmax; ++j) {
              const int64_t mo = b * ms[0] + h * ms[1] + i * ms[2] + (j0 + j) * ms[3];
              if (mbool) {
                if (!mbool[mo]) s[j] = neg_inf;
              } else {
                s[j] += static_cast<float>(madd[mo]);
              }
            }
          }
          float bmax = neg_inf;
          for (int64_t j = 0; j < jmax; ++j) bmax = std::max(bmax, s[j]);
          if (bmax == neg_inf) {  // nothing visible in this block
            std::fill(s, s + n, 0.f);
            return 1.f;
          }
          const float mnew = std::max(mrow[r], bmax);
          const float alpha = std::exp(mrow[r] - mnew);  // 0 while the row had seen nothing
          float l = lrow[r] * alpha;
          for (int64_t j = 0; j < jmax; ++j) {
            s[j] = s[j] == neg_inf ? 0.f : std::exp(s[j] - mnew);
            l += s[j];
          }
          std::fill(s + jmax, s + n, 0.f);
          mrow[r] = mnew;
          lrow[r] = l;
          return alpha;
        };
        int64_t r = 0;
        for (; r + kRows <= rows; r += kRows) {  // over the keys the group's last row sees, the most
          const int64_t n = seen(r0 + r + kRows - 1);
          if (n <= 0) continue;
          block_scores_rows(qf.data() + r * D, kt.data(), kKeyBlock, D, n, scale, sc.data());
          float alpha[kRows];
          for (int g = 0; g < kRows; ++g) alpha[g] = weigh(r + g, sc.data() + g * kKeyBlock, n);
          block_accumulate_rows(acc.data() + r * Dv, alpha, sc.data(), kKeyBlock, vf.data(), n, Dv);
        }
        for (; r < rows; ++r) {  // the rest one by one (a decoded token's single row)
          const int64_t n = seen(r0 + r);
          if (n <= 0) continue;
          block_scores(qf.data() + r * D, kt.data(), kKeyBlock, D, n, scale, sc.data());
          const float alpha = weigh(r, sc.data(), n);
          block_accumulate(acc.data() + r * Dv, alpha, sc.data(), vf.data(), n, Dv);
        }
      }
      // Rows that saw no key get zeros rather than 0 / 0.
      for (int64_t r = 0; r < rows; ++r) {
        T* o = dst + ((b * Hq + h) * Lq + r0 + r) * Dv;
        const float inv = lrow[r] > 0 ? 1.f / lrow[r] : 0.f;
        for (int64_t d = 0; d < Dv; ++d) o[d] = convert<T>(acc[r * Dv + d] * inv);
      }
    }
  });
}

void attention_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const ScaledDotProductAttention&>(prim);
  switch (out.dtype()) {
    case float32: attention_typed<float>(p, inputs, out); break;
    case float16: attention_typed<float16_t>(p, inputs, out); break;
    case bfloat16: attention_typed<bfloat16_t>(p, inputs, out); break;
    default: detail::unsupported_dtype(p.name(), out.dtype());
  }
}

}  // namespace

void register_cpu_attention() { register_kernel(Backend::cpu, "scaled_dot_product_attention", attention_kernel); }

}  // namespace kiln::cpu
