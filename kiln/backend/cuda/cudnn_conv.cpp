// cuDNN's convolutions for the CUDA conv kernel, through cuDNN's graph API (cudnn-frontend): a
// graph per geometry holds the convolution and its epilogue (bias add, residual add, ReLU or
// ReLU6 as pointwise nodes), so cuDNN runs them as one fused kernel where it has one; where it
// has none the graph holds the convolution alone and kiln's epilogue kernel follows. The plan is
// built once per geometry and then replays (CUDA graph capture included). Small convolutions
// take cuDNN's heuristic choice; large ones the fastest of its first few candidates, timed on
// the first call (as PyTorch's cudnn.benchmark). float32 runs without TF32; the 16-bit floats
// accumulate in float32.
//
// Tuning knobs (environment): KILN_CUDNN_AUTOTUNE=0 no timing; KILN_CUDNN_TUNE_FLOPS (default
// 1e9) the size from which convolutions are timed; KILN_CUDNN_TUNE_PLANS (default 4) how many
// candidates; KILN_CUDNN_FUSE=0 keeps the epilogue out of cuDNN's graphs.
#include "kiln/backend/cuda/cudnn_conv.h"

#ifdef KILN_HAS_CUDNN

#include <cudnn_frontend.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>

#include "kiln/backend/common/env.h"
#include "kiln/backend/cuda/cuda_backend.h"
#include "kiln/backend/cuda/cudnn_util.h"
#include "kiln/errors.h"
#include "kiln/memory.h"

namespace kiln::cuda {

namespace {

namespace fe = cudnn_frontend;
using Tensor = std::shared_ptr<fe::graph::Tensor_attributes>;


bool autotune_enabled() {
  static const bool on = !env::off("KILN_CUDNN_AUTOTUNE");
  return on;
}

bool fuse_enabled() {
  static const bool on = !env::off("KILN_CUDNN_FUSE");
  return on;
}

// Convolutions of at least this many FLOPs are tuned (KILN_CUDNN_TUNE_FLOPS overrides).
double tune_flops() {
  static const double f = env::number("KILN_CUDNN_TUNE_FLOPS", 1e9);
  return f;
}

int64_t tune_plans() {
  static const int64_t n = [] {
    const char* v = std::getenv("KILN_CUDNN_TUNE_PLANS");
    int64_t k = v ? std::atoll(v) : 4;
    return k > 0 ? k : 4;
  }();
  return n;
}

struct Plan {
  bool supported = false;
  bool fused = false;        // the epilogue is in the graph
  bool tune_pending = false;  // several plans built, to be timed on the first call
  std::shared_ptr<fe::graph::Graph> graph;
  Tensor x, w, bias, residual, y;
  int64_t workspace = 0;
};

std::mutex mutex;

std::string plan_key(const Convolution& p, const Shape& x, const Shape& w, const array& out) {
  std::ostringstream k;
  k << out.device().index << ' ' << out.dtype() << ' ' << x << ' ' << w << ' ' << p.groups << ' '
    << p.has_bias << p.has_residual << static_cast<int>(p.activation);
  for (size_t j = 0; j < p.stride.size(); ++j) {
    k << ' ' << p.stride[j] << ',' << p.pad_lo[j] << ',' << p.pad_hi[j] << ',' << p.dilation[j];
  }
  return k.str();
}

// Dims in cuDNN's (N, C, spatial...) order with channels-last strides; one spatial axis is
// given a leading axis of size 1 (cuDNN convolves 2 or 3 of them).
struct Layout {
  std::vector<int64_t> dim, stride;
};
Layout nhwc(int64_t n, int64_t c, std::vector<int64_t> spatial) {
  if (spatial.size() == 1) spatial.insert(spatial.begin(), 1);
  Layout l;
  l.dim = {n, c};
  l.dim.insert(l.dim.end(), spatial.begin(), spatial.end());
  l.stride.assign(l.dim.size(), 0);
  int64_t s = c;
  l.stride[1] = 1;
  for (size_t j = l.dim.size() - 1; j >= 2; --j) {
    l.stride[j] = s;
    s *= l.dim[j];
  }
  l.stride[0] = s;
  return l;
}

std::vector<int64_t> spatial_of(const Shape& s) { return {s.begin() + 1, s.end() - 1}; }

// Builds the graph: the convolution, and the epilogue when `fused`. False when cuDNN has no plan.
bool build(Plan& plan, const Convolution& p, const Shape& x, const Shape& w, const array& out, bool fused,
           cudnnHandle_t h) {
  fe::DataType_t io, compute;
  if (!cudnn_dtype(out.dtype(), io, compute)) return false;
  const bool one_axis = p.stride.size() == 1;
  auto widen = [&](const std::vector<int>& v, int64_t fill) {
    std::vector<int64_t> r(v.begin(), v.end());
    if (one_axis) r.insert(r.begin(), fill);
    return r;
  };
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(io).set_intermediate_data_type(compute).set_compute_data_type(compute);
  Layout lx = nhwc(x[0], x.back(), spatial_of(x));
  Layout lw = nhwc(w[0], w.back(), spatial_of(w));
  Layout ly = nhwc(out.shape(0), out.shape().back(), spatial_of(out.shape()));
  plan.x = g->tensor(fe::graph::Tensor_attributes().set_name("x").set_dim(lx.dim).set_stride(lx.stride));
  plan.w = g->tensor(fe::graph::Tensor_attributes().set_name("w").set_dim(lw.dim).set_stride(lw.stride));
  auto conv = fe::graph::Conv_fprop_attributes()
                  .set_pre_padding(widen(p.pad_lo, 0))
                  .set_post_padding(widen(p.pad_hi, 0))
                  .set_stride(widen(p.stride, 1))
                  .set_dilation(widen(p.dilation, 1))
                  .set_compute_data_type(compute);
  Tensor t = g->conv_fprop(plan.x, plan.w, conv);
  t->set_dim(ly.dim).set_stride(ly.stride);
  if (fused) {
    auto add = [&](Tensor a, Tensor b) {
      return g->pointwise(a, b, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::ADD)
                                    .set_compute_data_type(compute));
    };
    if (p.has_bias) {
      std::vector<int64_t> bdim(ly.dim.size(), 1), bstride(ly.dim.size(), 1);
      bdim[1] = ly.dim[1];
      plan.bias = g->tensor(fe::graph::Tensor_attributes().set_name("bias").set_dim(bdim).set_stride(bstride));
      t = add(t, plan.bias);
    }
    if (p.has_residual) {
      plan.residual =
          g->tensor(fe::graph::Tensor_attributes().set_name("residual").set_dim(ly.dim).set_stride(ly.stride));
      t = add(t, plan.residual);
    }
    if (p.activation != ConvActivation::none) {
      auto act = fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::RELU_FWD)
                     .set_compute_data_type(compute);
      if (p.activation == ConvActivation::relu6) act.set_relu_upper_clip(6.0f);
      t = g->pointwise(t, act);
    }
  }
  t->set_output(true).set_data_type(io).set_dim(ly.dim).set_stride(ly.stride);
  plan.y = t;
  if (!g->validate().is_good() || !g->build_operation_graph(h).is_good() ||
      !g->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}).is_good()) {
    return false;
  }
  if (out.dtype() == float32) {
    g->deselect_numeric_notes({fe::NumericalNote_t::TENSOR_CORE});  // exact float32: no TF32
  }
  if (!g->check_support(h).is_good()) return false;
  double flops = 2.0 * static_cast<double>(out.size()) * static_cast<double>(shape_size(w) / w[0]);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream_of(out), &capture), "cudaStreamIsCapturing");
  plan.tune_pending = false;
  if (flops >= tune_flops() && autotune_enabled() && capture == cudaStreamCaptureStatusNone) {
    int64_t built = 0;
    const int64_t count = g->get_execution_plan_count();
    for (int64_t i = 0; i < count && built < tune_plans(); ++i) built += g->build_plan_at_index(h, i).is_good();
    if (built == 0) return false;
    plan.tune_pending = built > 1;
  } else if (!g->build_plans(h, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE).is_good()) {
    return false;
  }
  if (!g->get_workspace_size(plan.workspace).is_good()) return false;
  plan.graph = g;
  plan.fused = fused;
  return true;
}

Plan& plan_for(const Convolution& p, const Shape& x, const Shape& w, const array& out, cudnnHandle_t h) {
  static std::map<std::string, std::unique_ptr<Plan>> plans;
  const bool epilogue = fuse_enabled() && (p.has_bias || p.has_residual || p.activation != ConvActivation::none);
  auto [it, fresh] = plans.try_emplace(plan_key(p, x, w, out));
  if (fresh) {
    it->second = std::make_unique<Plan>();
    Plan& plan = *it->second;
    // The fused graph first; without a fused engine, the convolution alone.
    plan.supported = (epilogue && build(plan, p, x, w, out, true, h)) || build(plan, p, x, w, out, false, h);
  }
  return *it->second;
}

}  // namespace

bool cudnn_conv(const Convolution& p, const Shape& x, const Shape& w, const array& out, const ConvOperands& ops,
                bool& epilogue_done) {
  std::lock_guard<std::mutex> lock(mutex);
  const int device = out.device().index, stream = out.stream().index;
  cudnnHandle_t h = cudnn_handle(device, stream, stream_of(out), "conv");
  Plan& plan = plan_for(p, x, w, out, h);
  if (!plan.supported) return false;
  std::unordered_map<Tensor, void*> pack{{plan.x, const_cast<void*>(ops.x)},
                                         {plan.w, const_cast<void*>(ops.w)},
                                         {plan.y, ops.y}};
  if (plan.fused && plan.bias) pack.emplace(plan.bias, const_cast<void*>(ops.bias));
  if (plan.fused && plan.residual) pack.emplace(plan.residual, const_cast<void*>(ops.residual));
  if (plan.tune_pending) {
    plan.tune_pending = false;
    // Every candidate runs: the workspace must suit the largest of them, not the first.
    const int64_t tune_ws = std::max(plan.workspace, plan.graph->get_autotune_workspace_size());
    void* tws = tune_ws ? allocator::gpu_malloc(tune_ws, device, stream) : nullptr;
    (void)plan.graph->autotune(h, pack, tws);  // on failure the heuristics' first plan stays
    if (tws) allocator::gpu_free(tws, tune_ws, device, stream);
    if (!plan.graph->get_workspace_size(plan.workspace).is_good()) plan.workspace = 0;
  }
  void* ws = plan.workspace ? allocator::gpu_malloc(plan.workspace, device, stream) : nullptr;
  auto status = plan.graph->execute(h, pack, ws);
  if (ws) allocator::gpu_free(ws, plan.workspace, device, stream);
  if (!status.is_good()) {
    plan.supported = false;  // the direct kernel takes this geometry from now on
    return false;
  }
  epilogue_done = plan.fused;
  return true;
}

}  // namespace kiln::cuda

#else

namespace kiln::cuda {

bool cudnn_conv(const Convolution&, const Shape&, const Shape&, const array&, const ConvOperands&, bool&) {
  return false;
}

}  // namespace kiln::cuda

#endif
