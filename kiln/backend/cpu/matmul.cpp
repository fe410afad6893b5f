// CPU kernels of matmul and addmm. float32, float64 and complex64 go to OpenBLAS (blas.h);
// float16 and bfloat16 are converted to float32 (the second operand a panel of columns at a time),
// multiplied by sgemm (float32 accumulation) and converted back; integers and bool use a plain
// loop. Decoding's shape (a few rows times a transposed row-major weight) has its own
// matrix-vector loop for float32 and the 16-bit floats (gemv_rows.cpp). Operands are read in
// place whenever BLAS can describe their layout (transposed ones included); an operand that has
// none is copied once.
#include <algorithm>
#include <climits>
#include <type_traits>
#include <cstring>
#include <memory>
#include <vector>

#include "kiln/backend/common/matmul_plan.h"
#include "kiln/backend/cpu/blas.h"
#include "kiln/backend/cpu/gemv_rows.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_linalg.h"

namespace kiln::cpu {

namespace {

using gemm::Plan;

// Products of at most this many multiply-adds run one per thread across the batch; bigger ones
// run one after another, each split over the threads (blas.h).
constexpr int64_t kSmallGemm = blas::kSplitWork;

template <class T>
constexpr bool is_half = std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>;

int blas_int(int64_t v, const char* op) {
  if (v > INT_MAX) fail<ValueError>("[", op, "] dimension ", v, " is too large for BLAS");
  return static_cast<int>(v);
}

// Calls chunk(begin, end) over the batch: spread across threads when the products are small,
// inline (one product after another) when each is big enough to use the threads itself.
template <class F>
void over_batch(const Plan& p, F&& chunk) {
  int64_t work = std::max<int64_t>(p.M * p.N * p.K, 1);
  int64_t n = p.batch.count();
  int64_t grain = work >= kSmallGemm ? n : std::max<int64_t>(1, kSmallGemm / work);
  parallel_for(n, grain, chunk);
}

// A row-contiguous copy of `shape` elements read with `strides` (any layout).
template <class T>
void gather(const T* src, const Shape& shape, const Strides& strides, T* dst) {
  Strides ds = row_major_strides(shape);
  auto c = collapse<2>(shape, {&strides, &ds});
  parallel_for(shape_size(shape), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for_each_strided(c, b, e, [&](const std::array<int64_t, 2>& o) { dst[o[1]] = src[o[0]]; });
  });
}

// An operand as BLAS reads it: in place, or a compact copy when its layout has no BLAS form.
template <class T>
struct BlasInput {
  const T* ptr = nullptr;
  Strides strides;
  std::vector<T> copy;

  explicit BlasInput(const array& x) : ptr(x.host_data<T>()), strides(x.strides()) {
    const int nd = x.ndim();
    gemm::Operand op;
    if (gemm::blas_layout(x.shape()[nd - 2], x.shape()[nd - 1], strides[nd - 2], strides[nd - 1], op)) return;
    Shape cshape;
    gemm::compact_layout(x.shape(), x.strides(), cshape, strides);
    copy.resize(shape_size(cshape));
    gather(ptr, cshape, x.strides(), copy.data());
    ptr = copy.data();
  }
};

template <class T>
void gemm_blas(const array& a, const array& b, const array& out, T* c, double alpha, double beta, const char* op) {
  BlasInput<T> ia(a), ib(b);
  Plan p = gemm::make_plan(out.shape(), a.shape().back(), ia.strides, ib.strides);
  const int M = blas_int(p.M, op), N = blas_int(p.N, op), K = blas_int(p.K, op);
  const int lda = blas_int(p.a.ld, op), ldb = blas_int(p.b.ld, op);
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  over_batch(p, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t oa, ob, oc;
      p.batch.offsets(i, oa, ob, oc);
      blas::gemm(p.a.trans, p.b.trans, M, N, K, al, ia.ptr + oa, lda, ib.ptr + ob, ldb, be, c + oc, N);
    }
  });
}

// Converts a rows x cols operand to float32, keeping its orientation so the reads stay
// sequential: a transposed operand becomes a cols x rows row-major block.
template <class T>
void to_float(const T* src, const gemm::Operand& op, int64_t rows, int64_t cols, float* dst) {
  int64_t outer = op.trans ? cols : rows, inner = op.trans ? rows : cols;
  int64_t so = op.trans ? op.cs : op.rs, si = op.trans ? op.rs : op.cs;
  parallel_for(outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const T* s = src + o * so;
      float* d = dst + o * inner;
      for (int64_t i = 0; i < inner; ++i) d[i] = static_cast<float>(s[i * si]);
    }
  });
}

// Decoding's products: a few rows of a times a weight stored (N, K) row-major, read transposed
// as b. For float16 / bfloat16, converting the weight to float32 for sgemm would read it once and
// write it twice per call; for float32, sgemm's packing of the weight costs as much as reading it.
// This reads it once, converting as it goes (gemv_rows.h). c = alpha * a b + beta * c, c read only
// when beta is not 0 (addmm: a residual added by the product). Returns false when the layout is
// not that one.
template <class T>
bool gemv_rows(const Plan& p, const T* pa, const T* pb, T* c, double alpha = 1.0, double beta = 0.0) {
  if (!p.batch.shape.empty() || p.M > 8 || p.N < 2 || p.a.ld == 0 || p.a.trans || p.a.cs != 1 || p.b.ld == 0 ||
      !p.b.trans || p.b.rs != 1) {
    return false;
  }
  const int64_t M = p.M, N = p.N, K = p.K;
  // a's rows as float32, zeros past M up to the kernel's row count.
  std::vector<float> af(static_cast<size_t>(gemv_padded_rows(M) * K), 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) af[m * K + k] = static_cast<float>(pa[m * p.a.rs + k]);
  }
  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  parallel_for(N, std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(K, 1)), [&](int64_t n0, int64_t n1) {
    gemv_rows_range<T>(M, N, K, af.data(), pb, p.b.cs, c, fa, fb, n0, n1);
  });
  return true;
}

// float16 / bfloat16 products go through sgemm this many float32 elements of b (1 MB) at a time:
// a panel of b's columns converted just before sgemm reads it is still in the cache, where a
// whole converted weight would go out to memory and come back, and no weight-sized buffer is
// allocated (and faulted in) per call.
constexpr int64_t kHalfPanelFloats = int64_t{1} << 18;

// float16 / bfloat16: a is converted to float32, b panel by panel, each panel multiplied by sgemm
// into a float32 result that is rounded back once, so the sums accumulate in float32.
template <class T>
void gemm_half(const array& a, const array& b, const array& out, T* c, double alpha, double beta, const char* op) {
  Plan p = gemm::make_plan(out.shape(), a.shape().back(), a.strides(), b.strides());
  const int M = blas_int(p.M, op), N = blas_int(p.N, op), K = blas_int(p.K, op);
  const T* pa = a.host_data<T>();
  const T* pb = b.host_data<T>();
  if (gemv_rows(p, pa, pb, c, alpha, beta)) return;
  const int64_t panel = std::min<int64_t>(p.N, std::max<int64_t>(16, kHalfPanelFloats / std::max<int64_t>(p.K, 1)));
  const int64_t mn = p.M * p.N;
  over_batch(p, [&](int64_t begin, int64_t end) {
    std::unique_ptr<float[]> fa(new float[p.M * p.K]), fb(new float[p.K * panel]), fc(new float[mn]);
    int64_t last_a = -1;
    for (int64_t i = begin; i < end; ++i) {
      int64_t oa, ob, oc;
      p.batch.offsets(i, oa, ob, oc);
      if (oa != last_a) to_float(pa + oa, p.a, p.M, p.K, fa.get());
      last_a = oa;
      T* dst = c + oc;
      if (beta != 0.0) {
        parallel_for(mn, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
          for (int64_t j = j0; j < j1; ++j) fc[j] = static_cast<float>(dst[j]);
        });
      }
      for (int64_t n0 = 0; n0 < p.N; n0 += panel) {
        const int w = static_cast<int>(std::min(panel, p.N - n0));
        to_float(pb + ob + n0 * p.b.cs, p.b, p.K, w, fb.get());
        blas::gemm(p.a.trans, p.b.trans, M, w, K, static_cast<float>(alpha), fa.get(), p.a.trans ? M : K, fb.get(),
                  p.b.trans ? K : w, static_cast<float>(beta), fc.get() + n0, N);
      }
      parallel_for(mn, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) dst[j] = T(fc[j]);
      });
    }
  });
}

// Integers and bool: sums in 64-bit unsigned arithmetic, which wraps exactly as sums in T do.
template <class T>
uint64_t widen(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? 1 : 0;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<uint64_t>(v);
  }
}

template <class T>
void gemm_int(const array& a, const array& b, const array& out, T* c) {
  Plan p = gemm::make_plan(out.shape(), a.shape().back(), a.strides(), b.strides());
  const T* pa = a.host_data<T>();
  const T* pb = b.host_data<T>();
  const int64_t rows = p.batch.count() * p.M;
  parallel_for(rows, std::max<int64_t>(1, kSmallGemm / std::max<int64_t>(p.N * p.K, 1)),
               [&](int64_t begin, int64_t end) {
                 std::vector<uint64_t> acc(p.N);
                 for (int64_t r = begin; r < end; ++r) {
                   int64_t oa, ob, oc;
                   p.batch.offsets(r / p.M, oa, ob, oc);
                   const int64_t i = r % p.M;
                   std::fill(acc.begin(), acc.end(), 0);
                   const T* arow = pa + oa + i * p.a.rs;
                   for (int64_t k = 0; k < p.K; ++k) {
                     uint64_t av = widen(arow[k * p.a.cs]);
                     if (av == 0) continue;
                     const T* brow = pb + ob + k * p.b.rs;
                     for (int64_t j = 0; j < p.N; ++j) acc[j] += av * widen(brow[j * p.b.cs]);
                   }
                   T* dst = c + oc + i * p.N;
                   for (int64_t j = 0; j < p.N; ++j) {
                     if constexpr (std::is_same_v<T, bool>) {
                       dst[j] = acc[j] != 0;
                     } else {
                       dst[j] = static_cast<T>(acc[j]);
                     }
                   }
                 }
               });
}

template <class T>
void gemm_inexact(const array& a, const array& b, const array& out, T* c, double alpha, double beta, const char* op) {
  if constexpr (is_half<T>) {
    gemm_half<T>(a, b, out, c, alpha, beta, op);
  } else {
    if constexpr (std::is_same_v<T, float>) {
      Plan p = gemm::make_plan(out.shape(), a.shape().back(), a.strides(), b.strides());
      if (gemv_rows(p, a.host_data<T>(), b.host_data<T>(), c, alpha, beta)) return;
    }
    gemm_blas<T>(a, b, out, c, alpha, beta, op);
  }
}

void matmul_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array &a = inputs[0], &b = inputs[1];
  KILN_DISPATCH_ALL("matmul", out.dtype(), {
    T* c = allocate<T>(out);
    if (out.size() == 0) return;
    if (a.shape().back() == 0) {  // empty sums
      std::memset(static_cast<void*>(c), 0, out.nbytes());
      return;
    }
    if constexpr (std::is_same_v<T, complex64_t> || std::is_floating_point_v<T> || is_half<T>) {
      gemm_inexact<T>(a, b, out, c, 1.0, 0.0, "matmul");
    } else {
      gemm_int<T>(a, b, out, c);
    }
  });
}

void addmm_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const AddMM&>(p);
  const array &a = inputs[0], &b = inputs[1];
  KILN_DISPATCH_INEXACT("addmm", out.dtype(), {
    T* c;
    if (prim.beta != 0.0) {
      find_kernel(Backend::cpu, "copy")(p, {inputs[2]}, out);  // c becomes the GEMM's C
      c = out.host_data_mut<T>();
    } else {
      c = allocate<T>(out);
    }
    if (out.size() == 0) return;
    if (a.shape().back() == 0) {  // empty sums leave beta * c
      if (prim.beta == 0.0) {
        std::memset(static_cast<void*>(c), 0, out.nbytes());
      } else if (prim.beta != 1.0) {
        using C = acc_t<T>;
        const C f = static_cast<C>(prim.beta);
        for (int64_t i = 0; i < out.size(); ++i) c[i] = convert<T>(static_cast<C>(c[i]) * f);
      }
      return;
    }
    gemm_inexact<T>(a, b, out, c, prim.alpha, prim.beta, "addmm");
  });
}

}  // namespace

void register_cpu_matmul() {
  register_kernel(Backend::cpu, "matmul", matmul_kernel);
  register_kernel(Backend::cpu, "addmm", addmm_kernel);
}

}  // namespace kiln::cpu
