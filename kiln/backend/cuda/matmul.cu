// CUDA kernels of matmul and addmm. float16, bfloat16 and float32 go to cuBLASLt with float32
// accumulation (CUBLAS_COMPUTE_32F, never TF32), float64 and complex64 to cuBLAS's strided-batched
// GEMMs, integers and bool to a small tiled kernel. cuBLAS is column-major: the row-major
// out = a @ b is computed as out^T = b^T a^T, so cuBLAS's "A" is our b and its "B" our a, and a
// row-major operand is, to cuBLAS, already the transpose it needs.
//
// cuBLASLt's heuristic proposes algorithms. GEMMs of at least KILN_MATMUL_TUNE_FLOPS (default
// 1e10, a prompt's projections but no decode step's) run the fastest of its candidates, each
// timed on the shape's second call outside a CUDA graph capture: a shape seen once (a chat
// turn's prompt length, say) is not worth the timing. On a Llama 3.1-8B prompt of 2048 tokens
// the tuned GEMMs are 2% faster than the heuristic's first choice. KILN_MATMUL_AUTOTUNE=0 keeps
// the first choice.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kiln/backend/common/env.h"
#include "kiln/backend/common/matmul_plan.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/cuda/gemv.cuh"
#include "kiln/backend/cuda/matmul.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_linalg.h"

namespace kiln::cuda {

namespace {

// cuBLASLt's workspace, one per (device, stream); PyTorch gives it the same on Hopper.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// How many algorithms to ask cuBLASLt's heuristic for; the first that fits the workspace runs,
// or with tuning on, the fastest of them.
constexpr int kHeuristics = 8;

bool autotune_enabled() {
  static const bool on = !env::off("KILN_MATMUL_AUTOTUNE");
  return on;
}

// GEMMs of at least this many FLOPs (2 m n k, times the batch) are tuned when tuning is on.
double tune_flops() {
  static const double f = env::number("KILN_MATMUL_TUNE_FLOPS", 1e10);
  return f;
}

void check_blas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) fail<RuntimeError>("[matmul] ", what, ": ", cublasGetStatusString(st));
}

// ---- handles and workspaces ----

// Per (device, stream): a cuBLAS handle bound to the stream and the workspace that it and
// cuBLASLt use there (work on one stream is ordered, so they never overlap). Kept for the process.
struct StreamState {
  cublasHandle_t blas = nullptr;
  void* workspace = nullptr;
};

std::mutex state_mutex;

// The cuBLASLt handle of the current device (not tied to a stream), made on first use.
cublasLtHandle_t lt_handle(int device) {
  static std::unordered_map<int, cublasLtHandle_t> handles;
  std::lock_guard<std::mutex> lock(state_mutex);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cublasLtHandle_t h;
  check_blas(cublasLtCreate(&h), "cublasLtCreate");
  handles.emplace(device, h);
  return h;
}

StreamState& stream_state(int device, int stream, cudaStream_t s) {
  static std::map<std::pair<int, int>, StreamState> states;  // map: references stay valid
  std::lock_guard<std::mutex> lock(state_mutex);
  auto [it, fresh] = states.try_emplace({device, stream});
  StreamState& st = it->second;
  if (fresh) {
    check(cudaMalloc(&st.workspace, kWorkspaceBytes), "matmul workspace");
    check_blas(cublasCreate(&st.blas), "cublasCreate");
    check_blas(cublasSetStream(st.blas, s), "cublasSetStream");
    check_blas(cublasSetWorkspace(st.blas, st.workspace, kWorkspaceBytes), "cublasSetWorkspace");
  }
  return st;
}

// ---- one strided-batched GEMM in cuBLAS's terms ----

struct Gemm {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;  // D, the output; also the addend unless C_in is set
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  const void* C_in = nullptr;  // an addend apart from the output, laid out as it
  const void* bias = nullptr;  // per output row (cuBLAS's m), for a bias epilogue
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
};

uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (reinterpret_cast<uintptr_t>(p) % a) a /= 2;
  return a;
}

// What a cuBLASLt plan depends on; the heuristic's choice is cached under it.
struct LtKey {
  int device;
  cudaDataType_t type;
  cublasLtEpilogue_t epilogue;
  bool ta, tb, use_c;
  int64_t m, n, k, lda, ldb, ldc, batch, stride_a, stride_b, stride_c;
  uint32_t align_a, align_b, align_c;
  bool operator==(const LtKey& o) const {
    return device == o.device && type == o.type && epilogue == o.epilogue && ta == o.ta && tb == o.tb && use_c == o.use_c && m == o.m &&
           n == o.n && k == o.k && lda == o.lda && ldb == o.ldb && ldc == o.ldc && batch == o.batch &&
           stride_a == o.stride_a && stride_b == o.stride_b && stride_c == o.stride_c && align_a == o.align_a &&
           align_b == o.align_b && align_c == o.align_c;
  }
};

struct LtKeyHash {
  size_t operator()(const LtKey& k) const {
    size_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    for (uint64_t v : {uint64_t(k.device), uint64_t(k.type), uint64_t(k.epilogue), uint64_t(k.ta), uint64_t(k.tb), uint64_t(k.use_c),
                       uint64_t(k.m), uint64_t(k.n), uint64_t(k.k), uint64_t(k.lda), uint64_t(k.ldb), uint64_t(k.ldc),
                       uint64_t(k.batch), uint64_t(k.stride_a), uint64_t(k.stride_b), uint64_t(k.stride_c),
                       uint64_t(k.align_a), uint64_t(k.align_b), uint64_t(k.align_c)}) {
      mix(v);
    }
    return h;
  }
};

// Descriptors and the chosen algorithm for one LtKey. `found` is false when cuBLASLt has no
// algorithm for the problem (then cublasGemmStridedBatchedEx runs it).
struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
  // The heuristic's choices that fit the workspace, in its order; algo is the first. (An array:
  // nvcc cannot instantiate std::vector's destructor for the unnamed struct cublasLtMatmulAlgo_t.)
  cublasLtMatmulAlgo_t candidates[kHeuristics] = {};
  int n_candidates = 0;
  bool tune_pending = false;  // candidates to time on a call that allows it
  int calls = 0;               // calls so far, while tuning is pending

  ~LtPlan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

template <class V>
void set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, V v) {
  check_blas(cublasLtMatrixLayoutSetAttribute(l, attr, &v, sizeof(v)), "cublasLtMatrixLayoutSetAttribute");
}

template <class V>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, V v) {
  check_blas(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)), "cublasLtMatmulPreferenceSetAttribute");
}

std::shared_ptr<LtPlan> make_lt_plan(const LtKey& k, cublasLtHandle_t lt) {
  auto p = std::make_shared<LtPlan>();
  check_blas(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  cublasOperation_t ta = k.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = k.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_blas(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  check_blas(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  check_blas(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &k.epilogue, sizeof(k.epilogue)),
             "EPILOGUE");
  // Layouts describe the matrices as stored: op(A) is m x k, op(B) k x n, C m x n.
  check_blas(cublasLtMatrixLayoutCreate(&p->a, k.type, k.ta ? k.k : k.m, k.ta ? k.m : k.k, k.lda), "layout A");
  check_blas(cublasLtMatrixLayoutCreate(&p->b, k.type, k.tb ? k.n : k.k, k.tb ? k.k : k.n, k.ldb), "layout B");
  check_blas(cublasLtMatrixLayoutCreate(&p->c, k.type, k.m, k.n, k.ldc), "layout C");
  if (k.batch > 1) {
    int32_t count = static_cast<int32_t>(k.batch);
    for (auto [l, stride] : {std::pair{p->a, k.stride_a}, std::pair{p->b, k.stride_b}, std::pair{p->c, k.stride_c}}) {
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, count);
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride);
    }
  }
  cublasLtMatmulPreference_t pref;
  check_blas(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{kWorkspaceBytes});
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k.align_a);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k.align_b);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k.align_c);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k.align_c);
  cublasLtMatmulHeuristicResult_t results[kHeuristics] = {};
  int returned = 0;
  cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(lt, p->desc, p->a, p->b, p->c, p->c, pref, kHeuristics, results, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS) {
    for (int i = 0; i < returned; ++i) {
      if (results[i].state == CUBLAS_STATUS_SUCCESS && results[i].workspaceSize <= kWorkspaceBytes) {
        p->candidates[p->n_candidates++] = results[i].algo;
      }
    }
    p->found = p->n_candidates > 0;
    if (p->found) p->algo = p->candidates[0];
    const double flops = 2.0 * static_cast<double>(k.m) * static_cast<double>(k.n) * static_cast<double>(k.k) *
                         static_cast<double>(k.batch);
    p->tune_pending = p->n_candidates > 1 && autotune_enabled() && flops >= tune_flops();
  } else if (st != CUBLAS_STATUS_NOT_SUPPORTED) {
    check_blas(st, "cublasLtMatmulAlgoGetHeuristic");
  }
  return p;
}

std::shared_ptr<LtPlan> lt_plan(const LtKey& k, cublasLtHandle_t lt) {
  static std::mutex m;
  static std::unordered_map<LtKey, std::shared_ptr<LtPlan>, LtKeyHash> cache;
  {
    std::lock_guard<std::mutex> lock(m);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
  }
  auto p = make_lt_plan(k, lt);
  std::lock_guard<std::mutex> lock(m);
  if (cache.size() >= 4096) cache.clear();  // bounds the cache for programs of ever-new shapes
  cache.emplace(k, p);
  return p;
}

template <class T>
cudaDataType_t cuda_type() {
  if constexpr (std::is_same_v<T, float16_t>) return CUDA_R_16F;
  if constexpr (std::is_same_v<T, bfloat16_t>) return CUDA_R_16BF;
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  if constexpr (std::is_same_v<T, double>) return CUDA_R_64F;
  if constexpr (std::is_same_v<T, complex64_t>) return CUDA_C_32F;
}

bool has_bias(cublasLtEpilogue_t e) { return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS; }

// Bytes from the first to one past the last element of a column-major operand.
size_t extent_bytes(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride, size_t elem) {
  return elem * static_cast<size_t>((batch - 1) * stride + (cols - 1) * ld + rows);
}

// Times plan's candidates on g's own operands and keeps the fastest. Each runs as the call
// itself would, so the output is written several times: only where that leaves it as one run
// would (no addend, or one apart from the output), and never during a capture.
void tune(LtPlan& plan, const Gemm& g, const void* c_in, float alpha, float beta, cublasLtHandle_t lt,
          cudaStream_t s, StreamState& st, size_t elem) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(s, &capture), "cudaStreamIsCapturing");
  if (capture != cudaStreamCaptureStatusNone) return;
  if (beta != 0.f) {
    const char* o = static_cast<const char*>(g.C);
    const char* a = static_cast<const char*>(c_in);
    const size_t bytes = extent_bytes(g.m, g.n, g.ldc, g.batch, g.stride_c, elem);
    if (a < o + bytes && o < a + bytes) return;  // the addend is (part of) the output
  }
  plan.tune_pending = false;
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  constexpr int kRuns = 3;
  float best = -1.f;
  for (int i = 0; i < plan.n_candidates; ++i) {
    const cublasLtMatmulAlgo_t* algo = &plan.candidates[i];
    cublasStatus_t ok = CUBLAS_STATUS_SUCCESS;
    for (int r = 0; r <= kRuns && ok == CUBLAS_STATUS_SUCCESS; ++r) {  // run 0 warms up
      if (r == 1) check(cudaEventRecord(start, s), "cudaEventRecord");
      ok = cublasLtMatmul(lt, plan.desc, &alpha, g.A, plan.a, g.B, plan.b, &beta, c_in, plan.c, g.C, plan.c, algo,
                          st.workspace, kWorkspaceBytes, s);
    }
    if (ok != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that cannot run is passed over
    check(cudaEventRecord(stop, s), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (best < 0.f || ms < best) {
      best = ms;
      plan.algo = *algo;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// float16 / bfloat16 / float32 through cuBLASLt. False, with nothing launched, when cuBLASLt has
// no algorithm for an epilogue; without one, cuBLAS's GEMM runs instead.
bool run_lt(const Gemm& g, cudaDataType_t type, float alpha, float beta, int device, cudaStream_t s,
            StreamState& st, size_t elem) {
  const void* c_in = g.C_in ? g.C_in : g.C;
  LtKey key{device,
            type,
            g.epilogue,
            g.ta,
            g.tb,
            beta != 0.f,
            g.m,
            g.n,
            g.k,
            g.lda,
            g.ldb,
            g.ldc,
            g.batch,
            g.batch > 1 ? g.stride_a : 0,
            g.batch > 1 ? g.stride_b : 0,
            g.batch > 1 ? g.stride_c : 0,
            alignment(g.A),
            alignment(g.B),
            std::min(alignment(g.C), alignment(c_in))};
  cublasLtHandle_t lt = lt_handle(device);
  auto plan = lt_plan(key, lt);
  if (plan->found) {
    if (has_bias(g.epilogue)) {
      // The cached descriptor is shared; evaluations run one at a time (kiln/eval.h).
      check_blas(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)),
                 "BIAS_POINTER");
    }
    if (plan->tune_pending && ++plan->calls >= 2) tune(*plan, g, c_in, alpha, beta, lt, s, st, elem);
    check_blas(cublasLtMatmul(lt, plan->desc, &alpha, g.A, plan->a, g.B, plan->b, &beta, c_in, plan->c, g.C, plan->c,
                              &plan->algo, st.workspace, kWorkspaceBytes, s),
               "cublasLtMatmul");
    return true;
  }
  if (g.epilogue != CUBLASLT_EPILOGUE_DEFAULT) return false;
  if (g.C_in && beta != 0.f) {
    // The addend becomes the output first; gemm_gpu lays both out as whole m x n matrices.
    check(cudaMemcpyAsync(g.C, g.C_in, elem * static_cast<size_t>(g.m * g.n * g.batch), cudaMemcpyDeviceToDevice, s),
          "matmul: addend copy");
  }
  check_blas(
      cublasGemmStridedBatchedEx_64(st.blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m,
                                    g.n, g.k, &alpha, g.A, type, g.lda, g.stride_a, g.B, type, g.ldb, g.stride_b, &beta,
                                    g.C, type, g.ldc, g.stride_c, g.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmStridedBatchedEx");
  return true;
}

void run_blas(const Gemm& g, double alpha, double beta, StreamState& st) {
  check_blas(cublasDgemmStridedBatched_64(st.blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          g.m, g.n, g.k, &alpha, static_cast<const double*>(g.A), g.lda, g.stride_a,
                                          static_cast<const double*>(g.B), g.ldb, g.stride_b, &beta,
                                          static_cast<double*>(g.C), g.ldc, g.stride_c, g.batch),
             "cublasDgemmStridedBatched");
}

void run_blas(const Gemm& g, complex64_t alpha, complex64_t beta, StreamState& st) {
  cuComplex al = make_cuComplex(alpha.re, alpha.im), be = make_cuComplex(beta.re, beta.im);
  check_blas(cublasCgemmStridedBatched_64(st.blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          g.m, g.n, g.k, &al, static_cast<const cuComplex*>(g.A), g.lda, g.stride_a,
                                          static_cast<const cuComplex*>(g.B), g.ldb, g.stride_b, &be,
                                          static_cast<cuComplex*>(g.C), g.ldc, g.stride_c, g.batch),
             "cublasCgemmStridedBatched");
}

// ---- operands that BLAS cannot read in place ----

// Stream-ordered scratch memory, freed after the work queued on the stream so far.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device = 0, stream = 0;
  ~Scratch() {
    if (ptr) allocator::gpu_free(ptr, bytes, device, stream);
  }
};

template <class U>
__global__ void gather_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t n, StridedLayout<2> l) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    l.offsets(i, off);
    dst[off[1]] = src[off[0]];
  }
}

// Points `ptr` and `strides` at a layout BLAS can read: the operand itself, or a compact copy in
// `scratch` (see gemm::compact_layout).
template <class T>
void blas_ready(const array& x, const T*& ptr, Strides& strides, const array& out, Scratch& scratch) {
  const int nd = x.ndim();
  gemm::Operand op;
  if (gemm::blas_layout(x.shape()[nd - 2], x.shape()[nd - 1], strides[nd - 2], strides[nd - 1], op)) return;
  Shape cshape;
  Strides read;
  gemm::compact_layout(x.shape(), x.strides(), cshape, read);
  int64_t n = shape_size(cshape);
  scratch.bytes = n * sizeof(T);
  scratch.device = out.device().index;
  scratch.stream = out.stream().index;
  scratch.ptr = allocator::gpu_malloc(scratch.bytes, scratch.device, scratch.stream);
  Strides dst = row_major_strides(cshape);
  auto l = make_layout<2>(cshape, {&x.strides(), &dst});
  using U = std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
  gather_kernel<U><<<strided_blocks(out, n), kThreads, 0, stream_of(out)>>>(reinterpret_cast<const U*>(ptr),
                                                                            static_cast<U*>(scratch.ptr), n, l);
  check_launch("matmul");
  ptr = static_cast<const T*>(scratch.ptr);
  strides = read;
}

// out = alpha * a @ b + beta * addend, through cuBLASLt or cuBLAS. The addend is c_in (out's
// shape, row-contiguous) or, without it, what out already holds.
template <class T>
void gemm_gpu(const array& a, const array& b, const array& out, T* c, double alpha, double beta,
              const T* c_in = nullptr) {
  cudaStream_t s = stream_of(out);
  const int device = out.device().index;
  const T* pa = in_ptr<T>(a, out);
  const T* pb = in_ptr<T>(b, out);
  Strides sa = a.strides(), sb = b.strides();
  Scratch scratch_a, scratch_b;
  blas_ready(a, pa, sa, out, scratch_a);
  blas_ready(b, pb, sb, out, scratch_b);
  gemm::Plan p = gemm::make_plan(out.shape(), a.shape().back(), sa, sb);
  StreamState& st = stream_state(device, out.stream().index, s);

  // One strided-batched call per index of the outer batch axes; the innermost is the batch.
  const gemm::Batch& bt = p.batch;
  const bool batched = !bt.shape.empty();
  const int64_t inner = batched ? bt.shape.back() : 1;
  const int64_t outer = bt.count() / inner;
  for (int64_t o = 0; o < outer; ++o) {
    int64_t oa, ob, oc;
    bt.offsets(o * inner, oa, ob, oc);
    Gemm g;
    g.ta = p.b.trans;
    g.tb = p.a.trans;
    g.m = p.N;
    g.n = p.M;
    g.k = p.K;
    g.A = pb + ob;
    g.lda = p.b.ld;
    g.stride_a = batched ? bt.b.back() : 0;
    g.B = pa + oa;
    g.ldb = p.a.ld;
    g.stride_b = batched ? bt.a.back() : 0;
    g.C = c + oc;
    g.C_in = c_in ? c_in + oc : nullptr;
    g.ldc = p.N;
    g.stride_c = batched ? bt.out.back() : p.M * p.N;
    g.batch = inner;
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, complex64_t>) {
      run_blas(g, static_cast<T>(alpha), static_cast<T>(beta), st);
    } else {
      run_lt(g, cuda_type<T>(), static_cast<float>(alpha), static_cast<float>(beta), device, s, st, sizeof(T));
    }
  }
}

// ---- integers and bool ----

constexpr int kTile = 16;

// The GEMM of the integer kernel: operands read through any strides, batch axes as a plan.
struct IntGemm {
  int64_t M, N, K;
  int64_t a_rs, a_cs, b_rs, b_cs;
  int nb;
  int64_t shape[kMaxDims], sa[kMaxDims], sb[kMaxDims], so[kMaxDims];
};

template <class T>
__device__ __forceinline__ uint64_t widen(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? 1 : 0;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<uint64_t>(v);
  }
}

// One 16 x 16 output tile per block, K in 16-wide steps through shared memory; sums in 64-bit
// unsigned arithmetic wrap exactly as sums in T do. blockIdx.x walks the tiles, z the batch.
template <class T>
__global__ void int_gemm_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c, IntGemm g,
                                int64_t batches) {
  __shared__ uint64_t ta[kTile][kTile + 1];
  __shared__ uint64_t tb[kTile][kTile + 1];
  const int64_t tiles_n = (g.N + kTile - 1) / kTile;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) / tiles_n) * kTile + threadIdx.y;
  const int64_t col = (static_cast<int64_t>(blockIdx.x) % tiles_n) * kTile + threadIdx.x;
  for (int64_t z = blockIdx.z; z < batches; z += gridDim.z) {
    int64_t oa = 0, ob = 0, oc = 0, rem = z;
    for (int d = g.nb - 1; d >= 0; --d) {
      int64_t idx = rem % g.shape[d];
      rem /= g.shape[d];
      oa += idx * g.sa[d];
      ob += idx * g.sb[d];
      oc += idx * g.so[d];
    }
    uint64_t acc = 0;
    for (int64_t k0 = 0; k0 < g.K; k0 += kTile) {
      int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
      ta[threadIdx.y][threadIdx.x] = row < g.M && ka < g.K ? widen(a[oa + row * g.a_rs + ka * g.a_cs]) : 0;
      tb[threadIdx.y][threadIdx.x] = kb < g.K && col < g.N ? widen(b[ob + kb * g.b_rs + col * g.b_cs]) : 0;
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kTile; ++kk) acc += ta[threadIdx.y][kk] * tb[kk][threadIdx.x];
      __syncthreads();
    }
    if (row < g.M && col < g.N) {
      if constexpr (std::is_same_v<T, bool>) {
        c[oc + row * g.N + col] = acc != 0;
      } else {
        c[oc + row * g.N + col] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void gemm_int(const array& a, const array& b, const array& out, T* c) {
  gemm::Plan p = gemm::make_plan(out.shape(), a.shape().back(), a.strides(), b.strides());
  if (p.batch.shape.size() > static_cast<size_t>(kMaxDims)) {
    fail<ValueError>("[matmul] integer products over more than ", kMaxDims,
                     " unmergeable batch axes are not supported");
  }
  IntGemm g{};
  g.M = p.M;
  g.N = p.N;
  g.K = p.K;
  g.a_rs = p.a.rs;
  g.a_cs = p.a.cs;
  g.b_rs = p.b.rs;
  g.b_cs = p.b.cs;
  g.nb = static_cast<int>(p.batch.shape.size());
  for (int d = 0; d < g.nb; ++d) {
    g.shape[d] = p.batch.shape[d];
    g.sa[d] = p.batch.a[d];
    g.sb[d] = p.batch.b[d];
    g.so[d] = p.batch.out[d];
  }
  int64_t tiles = ((p.M + kTile - 1) / kTile) * ((p.N + kTile - 1) / kTile);
  if (tiles > 0x7fffffff) fail<ValueError>("[matmul] integer product of ", p.M, " x ", p.N, " is too large");
  int64_t batches = p.batch.count();
  dim3 grid(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(std::min<int64_t>(batches, 65535)));
  int_gemm_kernel<T>
      <<<grid, dim3(kTile, kTile), 0, stream_of(out)>>>(in_ptr<T>(a, out), in_ptr<T>(b, out), c, g, batches);
  check_launch("matmul");
}

// ---- kernels ----

template <class T>
__global__ void scale_kernel(T* x, int64_t n, double f) {
  using C = acc_t<T>;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = convert<T>(static_cast<C>(x[i]) * static_cast<C>(f));
  }
}

template <class T>
constexpr bool is_inexact_v = std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t> ||
                              std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, complex64_t>;

void matmul_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array &a = inputs[0], &b = inputs[1];
  KILN_DISPATCH_ALL("matmul", out.dtype(), {
    T* c = alloc_out<T>(out);
    if (out.size() == 0) return;
    if (a.shape().back() == 0) {  // empty sums
      check(cudaMemsetAsync(c, 0, out.nbytes(), stream_of(out)), "matmul");
      return;
    }
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>) {
      if (try_gemv<T>(a, b, out, c)) return;  // decoding's few rows times a weight
    }
    if constexpr (is_inexact_v<T>) {
      gemm_gpu<T>(a, b, out, c, 1.0, 0.0);
    } else {
      gemm_int<T>(a, b, out, c);
    }
  });
}

void addmm_kernel(const Primitive& p, const std::vector<array>& inputs, array& out) {
  const auto& prim = static_cast<const AddMM&>(p);
  const array &a = inputs[0], &b = inputs[1];
  KILN_DISPATCH_INEXACT("addmm", out.dtype(), {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>) {
      // Decoding's residual connections: c + a @ W^T in the matrix-vector kernel, c read in place.
      const array& cin = inputs[2];
      if (prim.alpha == 1.0 && prim.beta == 1.0 && cin.shape() == out.shape() && cin.row_contiguous() &&
          a.shape().back() > 0 && out.size() > 0) {
        const T* residual = in_ptr<T>(cin, out);
        T* c = alloc_out<T>(out);
        if (try_gemv<T>(a, b, out, c, residual)) return;
      }
    }
    T* c;
    const T* c_in = nullptr;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>) {
      // An addend of the output's layout is read in place by cuBLASLt (prefill's residuals).
      const array& cin = inputs[2];
      if (prim.beta != 0.0 && cin.shape() == out.shape() && cin.row_contiguous() && a.shape().back() > 0 &&
          out.size() > 0) {
        c_in = in_ptr<T>(cin, out);
      }
    }
    if (c_in) {
      c = alloc_out<T>(out);
    } else if (prim.beta != 0.0) {
      find_kernel(Backend::gpu, "copy")(p, {inputs[2]}, out);  // c becomes the GEMM's C
      c = static_cast<T*>(out.buffer()->write_gpu(out.device().index, out.stream().index));
    } else {
      c = alloc_out<T>(out);
    }
    if (out.size() == 0) return;
    if (a.shape().back() == 0) {  // empty sums leave beta * c
      if (prim.beta == 0.0) {
        check(cudaMemsetAsync(c, 0, out.nbytes(), stream_of(out)), "addmm");
      } else if (prim.beta != 1.0) {
        scale_kernel<T><<<strided_blocks(out, out.size()), kThreads, 0, stream_of(out)>>>(c, out.size(), prim.beta);
        check_launch("addmm");
      }
      return;
    }
    gemm_gpu<T>(a, b, out, c, prim.alpha, prim.beta, c_in);
  });
}

}  // namespace

template <class T>
bool linear_epilogue(const T* x, const T* w, const T* bias, const T* residual, T* y, int64_t rows, int64_t n,
                     int64_t k, bool relu, const array& out) {
  if (bias && alignment(bias) < 16) return false;
  Gemm g;  // out^T = w x^T in cuBLAS's column-major terms: w is A (transposed), x is B
  g.ta = true;
  g.tb = false;
  g.m = n;
  g.n = rows;
  g.k = k;
  g.A = w;
  g.lda = k;
  g.B = x;
  g.ldb = k;
  g.C = y;
  g.ldc = n;
  g.stride_c = n * rows;
  g.C_in = residual;
  g.bias = bias;
  g.epilogue = bias ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                    : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  const int device = out.device().index;
  cudaStream_t s = stream_of(out);
  StreamState& st = stream_state(device, out.stream().index, s);
  return run_lt(g, cuda_type<T>(), 1.f, residual ? 1.f : 0.f, device, s, st, sizeof(T));
}

template bool linear_epilogue<float>(const float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                                     int64_t, bool, const array&);
template bool linear_epilogue<float16_t>(const float16_t*, const float16_t*, const float16_t*, const float16_t*,
                                         float16_t*, int64_t, int64_t, int64_t, bool, const array&);
template bool linear_epilogue<bfloat16_t>(const bfloat16_t*, const bfloat16_t*, const bfloat16_t*, const bfloat16_t*,
                                          bfloat16_t*, int64_t, int64_t, int64_t, bool, const array&);

void register_gpu_matmul() {
  register_kernel(Backend::gpu, "matmul", matmul_kernel);
  register_kernel(Backend::gpu, "addmm", addmm_kernel);
}

}  // namespace kiln::cuda
