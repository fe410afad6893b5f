#include "kiln/nn/containers.h"

#include <string>

#include "kiln/ops_shape.h"

namespace kiln::nn {

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& layers) {
  for (const auto& l : layers) add(l);
}

void Sequential::add(std::shared_ptr<Module> layer) {
  if (!layer) fail<ValueError>("[Sequential] layer ", layers_.size(), " is null");
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

array Sequential::forward(const array& x) const {
  array h = x;
  for (const auto& l : layers_) h = l->forward(h);
  return h;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  if (index >= layers_.size()) {
    fail<IndexError>("[Sequential] index ", index, " is out of range for ", layers_.size(), " layers");
  }
  return layers_[index];
}

array Flatten::operator()(const array& x, StreamOrDevice s) const { return flatten(x, start_, end_, s); }

}  // namespace kiln::nn
