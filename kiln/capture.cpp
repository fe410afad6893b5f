#include "kiln/capture.h"

#include <sstream>

#include "kiln/backend/gpu.h"
#include "kiln/eval.h"
#include "kiln/ops.h"

namespace kiln {

struct CapturedFunction::Graph {
  int calls = 0;            // eager calls so far
  bool failed = false;      // fn could not be captured: eager from now on
  void* exec = nullptr;     // the instantiated graph
  std::vector<array> inputs, outputs;  // the graph's own buffers
};

namespace {

std::string signature(const std::vector<array>& inputs) {
  std::ostringstream os;
  for (const auto& a : inputs) os << a.dtype() << a.shape() << ';';
  return os.str();
}

char* gpu_pointer(const array& a, Stream s) {
  auto* base = static_cast<const char*>(a.buffer()->read_gpu(s.device.index, s.index));
  return const_cast<char*>(base) + a.offset() * a.itemsize();
}

}  // namespace

CapturedFunction::CapturedFunction(Fn fn, StreamOrDevice s) : fn_(std::move(fn)), stream_(to_stream(s)) {}

CapturedFunction::~CapturedFunction() {
  GpuBackend* gpu = gpu_backend();
  for (auto& [key, g] : graphs_) {
    if (g->exec && gpu) {
      gpu->synchronize(stream_.device.index, stream_.index);
      gpu->destroy_graph(g->exec);
    }
  }
}

bool CapturedFunction::captured(const std::vector<array>& inputs) const {
  auto it = graphs_.find(signature(inputs));
  return it != graphs_.end() && it->second->exec;
}

std::vector<array> CapturedFunction::operator()(const std::vector<array>& inputs) {
  GpuBackend* gpu = gpu_backend();
  auto eager = [&] {
    std::vector<array> out = fn_(inputs);
    eval(out);
    return out;
  };
  if (stream_.device.type != Device::gpu || !gpu) return eager();
  auto& slot = graphs_[signature(inputs)];
  if (!slot) slot = std::make_unique<Graph>();
  Graph& g = *slot;
  if (g.failed || (!g.exec && g.calls++ == 0)) return eager();
  const int dev = stream_.device.index, st = stream_.index;
  if (!g.exec) {
    // The graph's inputs: buffers of its own, which later calls fill.
    for (const auto& a : inputs) g.inputs.push_back(copy(a, stream_));
    eval(g.inputs);
    synchronize();
    gpu->begin_capture(dev, st);
    try {
      g.outputs = fn_(g.inputs);
      eval(g.outputs);
      g.exec = gpu->end_capture(dev, st);
    } catch (const std::exception&) {
      try {
        void* broken = gpu->end_capture(dev, st);
        if (broken) gpu->destroy_graph(broken);
      } catch (const std::exception&) {
      }
      g = Graph{};
      g.failed = true;
      return eager();
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    array src = contiguous(inputs[i], stream_);
    src.eval();
    gpu->copy_device_to_device(gpu_pointer(g.inputs[i], stream_), gpu_pointer(src, stream_), src.nbytes(), dev, st);
  }
  gpu->launch_graph(g.exec, dev, st);
  std::vector<array> out;
  for (const auto& o : g.outputs) out.push_back(copy(o, stream_));
  eval(out);
  return out;
}

}  // namespace kiln
