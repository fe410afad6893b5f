// Replaying a function's GPU work as one CUDA graph, so that a forward pass of many small kernels
// costs one launch (PyTorch's CUDA graphs; the launch-saving half of MLX's compile).
//
//   CapturedFunction forward([&](const std::vector<array>& in) { return std::vector{model(in[0])}; });
//   array logits = forward({images})[0];
//
// Per input signature (shapes, dtypes): the first call runs fn as usual, which also warms the
// caches that capture cannot fill (cuDNN's algorithm search, uploads of weights); the second
// records fn's kernels into a graph; that call and every later one copy the inputs into the
// graph's own input buffers, replay it, and return copies of its outputs. fn must be a pure
// function of its inputs whose other operands (weights) stay alive and unchanged; host data it
// uploads (scalar operands) is copied into the graph as it was at capture. When fn does
// something a graph cannot hold (a host synchronisation), it runs as usual from then on for that
// signature. On the CPU every call runs fn as usual.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/array.h"

namespace kiln {

class CapturedFunction {
 public:
  using Fn = std::function<std::vector<array>(const std::vector<array>&)>;
  explicit CapturedFunction(Fn fn, StreamOrDevice s = {});
  ~CapturedFunction();
  CapturedFunction(const CapturedFunction&) = delete;
  CapturedFunction& operator=(const CapturedFunction&) = delete;

  // fn(inputs), evaluated (queued on the GPU).
  std::vector<array> operator()(const std::vector<array>& inputs);
  // Whether calls with these inputs' signature replay a graph.
  bool captured(const std::vector<array>& inputs) const;

 private:
  struct Graph;
  Fn fn_;
  Stream stream_;
  std::map<std::string, std::unique_ptr<Graph>> graphs_;
};

}  // namespace kiln
