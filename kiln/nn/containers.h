// Sequential, PyTorch's nn.Sequential: children named "0", "1", ... (so a state dict saved from
// one loads by name) called in order through Module::forward; and the shape-only layers that
// sit between others in one (Identity, Flatten).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "kiln/array.h"
#include "kiln/nn/module.h"

namespace kiln::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential({std::make_shared<Linear>(4, 8), std::make_shared<ReLU>(), ...}).
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& layers);
  // Adds a layer at the end, named by its position; returns it.
  template <class M>
  std::shared_ptr<M> append(std::shared_ptr<M> layer) {
    add(layer);
    return layer;
  }
  // Each layer's forward on the previous one's output; with no layers, x itself. A layer that
  // takes no single array (e.g. a plain Module) throws TypeError naming it.
  array operator()(const array& x) const { return forward(x); }
  array forward(const array& x) const override;

  size_t size() const { return layers_.size(); }
  // The layer at `index` (IndexError when out of range).
  const std::shared_ptr<Module>& operator[](size_t index) const;

 private:
  void add(std::shared_ptr<Module> layer);
  std::vector<std::shared_ptr<Module>> layers_;
};

// x itself (PyTorch's nn.Identity), to stand in for a layer.
class Identity : public Module {
 public:
  array operator()(const array& x) const { return x; }
  array forward(const array& x) const override { return x; }
};

// Joins axes start_axis..end_axis into one (PyTorch's nn.Flatten, start 1: keeps the batch axis).
// On channels-last (N, H, W, C) this is (N, H * W * C) in that order, not PyTorch's (C, H, W)
// order, which matters for a Linear that follows with weights from PyTorch.
class Flatten : public Module {
 public:
  explicit Flatten(int start_axis = 1, int end_axis = -1) : start_(start_axis), end_(end_axis) {}
  array operator()(const array& x, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }

 private:
  int start_, end_;
};

}  // namespace kiln::nn
