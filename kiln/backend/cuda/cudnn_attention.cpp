// Prefill attention on cuDNN's SDPA (its flash-attention engines, through the graph API of
// cudnn-frontend): float16 / bfloat16, no mask or causal, grouped-query and multi-query heads
// read in place (cuDNN maps query head h to key head h / (Hq / Hkv), as kiln does). One plan per
// shape and strides, built on first use (KILN_CUDNN_ATTENTION=0 turns this path off; then
// attention_prefill.cu's tensor-core kernel runs).
#include "kiln/backend/cuda/cudnn_attention.h"

#ifdef KILN_HAS_CUDNN

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>

#include "kiln/backend/common/env.h"
#include "kiln/backend/cuda/cuda_backend.h"
#include "kiln/backend/cuda/cudnn_util.h"
#include "kiln/memory.h"

namespace kiln::cuda {

namespace {

namespace fe = cudnn_frontend;
using Tensor = std::shared_ptr<fe::graph::Tensor_attributes>;

bool enabled() {
  static const bool on = !env::off("KILN_CUDNN_ATTENTION");
  return on;
}

struct Plan {
  bool supported = false;
  std::shared_ptr<fe::graph::Graph> graph;
  Tensor q, k, v, o;
  int64_t workspace = 0;
};

std::vector<int64_t> strides_of(const array& a) { return {a.strides().begin(), a.strides().end()}; }

std::string plan_key(const ScaledDotProductAttention& p, const array& q, const array& k, const array& v,
                     const array& out) {
  uint32_t scale_bits;
  std::memcpy(&scale_bits, &p.scale, sizeof scale_bits);
  std::ostringstream key;
  key << out.device().index << ' ' << out.dtype() << ' ' << q.shape() << ' ' << k.shape() << ' ' << v.shape() << ' '
      << strides_of(q) << ' ' << strides_of(k) << ' ' << strides_of(v) << ' ' << p.causal << ' ' << scale_bits;
  return key.str();
}

bool build(Plan& plan, const ScaledDotProductAttention& p, const array& q, const array& k, const array& v,
           const array& out, cudnnHandle_t h) {
  fe::DataType_t io, compute;
  if (!cudnn_dtype(out.dtype(), io, compute)) return false;
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(io).set_intermediate_data_type(compute).set_compute_data_type(compute);
  auto input = [&](const char* name, const array& a) {
    return g->tensor(fe::graph::Tensor_attributes()
                         .set_name(name)
                         .set_dim({a.shape().begin(), a.shape().end()})
                         .set_stride(strides_of(a)));
  };
  plan.q = input("q", q);
  plan.k = input("k", k);
  plan.v = input("v", v);
  auto attributes = fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(false).set_attn_scale(
      p.scale);
  if (p.causal) {
    // Query i sits at position Lk - Lq + i: the diagonal anchored at the bottom right (the same
    // as the top left when Lq == Lk, which older cuDNN versions support alone).
    if (q.shape(2) == k.shape(2)) {
      attributes.set_causal_mask(true);
    } else {
      attributes.set_causal_mask_bottom_right(true);
    }
  }
  auto [o, stats] = g->sdpa(plan.q, plan.k, plan.v, attributes);
  (void)stats;
  o->set_output(true).set_dim({out.shape().begin(), out.shape().end()}).set_stride(strides_of(out));
  plan.o = o;
  if (!g->validate().is_good() || !g->build_operation_graph(h).is_good() ||
      !g->create_execution_plans({fe::HeurMode_t::A}).is_good() || !g->check_support(h).is_good() ||
      !g->build_plans(h, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE).is_good() ||
      !g->get_workspace_size(plan.workspace).is_good()) {
    return false;
  }
  plan.graph = g;
  return true;
}

}  // namespace

bool cudnn_attention(const ScaledDotProductAttention& p, const array& q, const array& k, const array& v,
                     const array& out, const void* q_ptr, const void* k_ptr, const void* v_ptr, void* out_ptr) {
  if (!enabled() || p.has_mask || (out.dtype() != float16 && out.dtype() != bfloat16)) return false;
  if (q.shape(2) < kCudnnAttentionMinQueries) return false;
  // Rows past the diagonal that see no key must come out as zeros: kiln's kernels handle them.
  if (p.causal && q.shape(2) > k.shape(2)) return false;
  if (q.strides()[3] != 1 || k.strides()[3] != 1 || v.strides()[3] != 1) return false;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  const int device = out.device().index, stream = out.stream().index;
  cudnnHandle_t h = cudnn_handle(device, stream, stream_of(out), "scaled_dot_product_attention");
  auto [it, fresh] = plans.try_emplace(plan_key(p, q, k, v, out));
  if (fresh) {
    // No plan is built while a CUDA graph is being captured: kiln's kernel runs instead.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream_of(out), &capture), "cudaStreamIsCapturing");
    if (capture != cudaStreamCaptureStatusNone) {
      plans.erase(it);
      return false;
    }
    it->second = std::make_unique<Plan>();
    it->second->supported = build(*it->second, p, q, k, v, out, h);
  }
  Plan& plan = *it->second;
  if (!plan.supported) return false;
  std::unordered_map<Tensor, void*> pack{{plan.q, const_cast<void*>(q_ptr)},
                                         {plan.k, const_cast<void*>(k_ptr)},
                                         {plan.v, const_cast<void*>(v_ptr)},
                                         {plan.o, out_ptr}};
  void* ws = plan.workspace ? allocator::gpu_malloc(plan.workspace, device, stream) : nullptr;
  auto status = plan.graph->execute(h, pack, ws);
  if (ws) allocator::gpu_free(ws, plan.workspace, device, stream);
  if (!status.is_good()) {
    plan.supported = false;  // kiln's kernel takes this shape from now on
    return false;
  }
  return true;
}

}  // namespace kiln::cuda

#else

namespace kiln::cuda {

bool cudnn_attention(const ScaledDotProductAttention&, const array&, const array&, const array&, const array&,
                     const void*, const void*, const void*, void*) {
  return false;
}

}  // namespace kiln::cuda

#endif
