// The layers of convolutional networks, channels-last inside (inputs (N, H, W, C)) with
// PyTorch's parameter names, so torchvision state dicts load by name once their convolution
// weights are moved to channels-last (torch_to_kiln_layout).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>
#include <string>
#include <utility>

#include "kiln/array.h"
#include "kiln/nn/activations.h"  // so that the activations come with the layers
#include "kiln/nn/module.h"
#include "kiln/ops_conv.h"

namespace kiln::nn {

// weight (C_out, k, C_in / groups), bias (C_out,); PyTorch's default initialisation.
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int kernel, int stride = 1, int padding = 0, int dilation = 1,
         int groups = 1, bool bias = true, Dtype dtype = float32);
  array operator()(const array& x) const;  // (N, L, C_in) -> (N, L', C_out)
  array forward(const array& x) const override { return (*this)(x); }
  const array& weight() const { return parameter("weight"); }

 private:
  int stride_, padding_, dilation_, groups_;
};

// weight (C_out, kH, kW, C_in / groups), bias (C_out,); PyTorch's default initialisation.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::pair<int, int> kernel, std::pair<int, int> stride = {1, 1},
         std::pair<int, int> padding = {0, 0}, std::pair<int, int> dilation = {1, 1}, int groups = 1,
         bool bias = true, Dtype dtype = float32);
  array operator()(const array& x) const;  // (N, H, W, C_in) -> (N, H', W', C_out)
  array forward(const array& x) const override { return (*this)(x); }
  // activation(conv(x) + bias + residual) as one fused operation (conv2d_fused).
  array operator()(const array& x, const std::optional<array>& residual, ConvActivation activation) const;
  const array& weight() const { return parameter("weight"); }
  // Folds an inference batch norm that follows into this convolution's weight and bias (adds
  // the bias when there is none): y = conv(x) * scale + shift.
  void fold(const array& scale, const array& shift);

 private:
  std::pair<int, int> stride_, padding_, dilation_;
  int groups_;
};

// Inference batch normalization over the last (channel) axis with running statistics:
// (x - running_mean) / sqrt(running_var + eps) * weight + bias. Parameters as PyTorch names
// them, num_batches_tracked included (so state dicts load strictly).
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t num_features, float eps = 1e-5f, Dtype dtype = float32);
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }
  // The affine map it applies: x * scale + shift.
  std::pair<array, array> scale_shift() const;
  float eps() const { return eps_; }

 private:
  int64_t n_;
  float eps_;
};

// Pooling layers over (N, H, W, C), PyTorch's semantics (kiln/ops_conv.h); no parameters.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(std::pair<int, int> kernel, std::optional<std::pair<int, int>> stride = {},
                     std::pair<int, int> padding = {0, 0}, std::pair<int, int> dilation = {1, 1});
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }

 private:
  std::vector<int> kernel_, stride_, padding_, dilation_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(std::pair<int, int> kernel, std::optional<std::pair<int, int>> stride = {},
                     std::pair<int, int> padding = {0, 0}, bool count_include_pad = true);
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }

 private:
  std::vector<int> kernel_, stride_, padding_;
  bool count_include_pad_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::pair<int64_t, int64_t> output) : output_(output) {}
  array operator()(const array& x) const;
  array forward(const array& x) const override { return (*this)(x); }

 private:
  std::pair<int64_t, int64_t> output_;
};

// A PyTorch state dict in kiln's layouts: 4-d convolution weights (C_out, C_in / g, kH, kW)
// become (C_out, kH, kW, C_in / g); 3-d and 5-d likewise. Other tensors are kept.
std::map<std::string, array> torch_to_kiln_layout(const std::map<std::string, array>& state_dict);

}  // namespace kiln::nn
