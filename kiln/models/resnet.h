// ResNet-18/34/50/101/152 as torchvision defines them (v1.5: the stride on the 3x3 convolution
// of bottleneck blocks), with torchvision's parameter names, channels-last inside.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "kiln/nn/conv_layers.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/module.h"

namespace kiln::models {

// One residual block: BasicBlock (two 3x3) or Bottleneck (1x1, 3x3, 1x1 with 4x expansion).
class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(bool bottleneck, int64_t in, int64_t width, int stride, Dtype dtype);
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }
  void fold_batchnorm();
  static constexpr int kBottleneckExpansion = 4;

 private:
  std::vector<std::pair<std::shared_ptr<nn::Conv2d>, std::shared_ptr<nn::BatchNorm>>> path_;  // conv, bn pairs
  std::shared_ptr<nn::Conv2d> down_conv_;
  std::shared_ptr<nn::BatchNorm> down_bn_;
  bool folded_ = false;
};

class ResNet : public nn::Module {
 public:
  // depth 18, 34, 50, 101 or 152 (ValueError otherwise).
  ResNet(int depth, int64_t num_classes = 1000, Dtype dtype = float32);
  // Images (N, H, W, 3), normalized as torchvision expects -> logits (N, num_classes).
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }
  // Folds every batch norm into the convolution before it (for inference; the batch norm
  // parameters stay, unused).
  void fold_batchnorm();
  // Loads a torchvision state dict (channels-first convolution weights), strictly.
  void load_torchvision(const std::map<std::string, array>& state_dict, std::optional<Dtype> dtype = std::nullopt);

 private:
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
  std::shared_ptr<nn::Linear> fc_;
  bool folded_ = false;
};

}  // namespace kiln::models
