#include "kiln/nn/conv_layers.h"

#include <cmath>

#include "kiln/ops.h"

namespace kiln::nn {

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int padding, int dilation,
               int groups, bool bias, Dtype dtype)
    : stride_(stride), padding_(padding), dilation_(dilation), groups_(groups) {
  if (in_channels <= 0 || out_channels <= 0 || groups <= 0 || in_channels % groups || out_channels % groups) {
    fail<ValueError>("[Conv1d] channels (", in_channels, ", ", out_channels, ") must be positive multiples of groups (",
                     groups, ")");
  }
  if (kernel <= 0) fail<ValueError>("[Conv1d] kernel size must be positive, got ", kernel);
  if (!is_floating(dtype)) fail<TypeError>("[Conv1d] parameters must have a floating dtype, not ", dtype);
  // PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both weight and bias.
  double k = 1.0 / std::sqrt(static_cast<double>(in_channels / groups * kernel));
  register_parameter("weight", random::uniform(-k, k, {out_channels, kernel, in_channels / groups}, dtype));
  if (bias) register_parameter("bias", random::uniform(-k, k, {out_channels}, dtype));
}

array Conv1d::operator()(const array& x) const {
  array y = conv1d(x, weight(), stride_, padding_, dilation_, groups_);
  return has_parameter("bias") ? add(y, parameter("bias")) : y;
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::pair<int, int> kernel, std::pair<int, int> stride,
               std::pair<int, int> padding, std::pair<int, int> dilation, int groups, bool bias, Dtype dtype)
    : stride_(stride), padding_(padding), dilation_(dilation), groups_(groups) {
  if (in_channels <= 0 || out_channels <= 0 || groups <= 0 || in_channels % groups || out_channels % groups) {
    fail<ValueError>("[Conv2d] channels (", in_channels, ", ", out_channels, ") must be positive multiples of groups (",
                     groups, ")");
  }
  if (!is_floating(dtype)) fail<TypeError>("[Conv2d] parameters must have a floating dtype, not ", dtype);
  // PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both weight and bias.
  double k = 1.0 / std::sqrt(static_cast<double>(in_channels / groups * kernel.first * kernel.second));
  register_parameter("weight",
                     random::uniform(-k, k, {out_channels, kernel.first, kernel.second, in_channels / groups}, dtype));
  if (bias) register_parameter("bias", random::uniform(-k, k, {out_channels}, dtype));
}

array Conv2d::operator()(const array& x) const { return (*this)(x, {}, ConvActivation::none); }

array Conv2d::operator()(const array& x, const std::optional<array>& residual, ConvActivation activation) const {
  std::optional<array> bias;
  if (has_parameter("bias")) bias = parameter("bias");
  return conv2d_fused(x, weight(), bias, residual, activation, stride_, padding_, dilation_, groups_);
}

void Conv2d::fold(const array& scale, const array& shift) {
  array w = weight();
  array b = has_parameter("bias") ? parameter("bias") : zeros({w.shape(0)}, w.dtype());
  array nw = astype(multiply(w, reshape(scale, {w.shape(0), 1, 1, 1})), w.dtype());
  array nb = astype(add(multiply(b, scale), shift), w.dtype());
  nw.eval();
  nb.eval();
  set_parameter("weight", nw);
  if (has_parameter("bias")) {
    set_parameter("bias", nb);
  } else {
    register_parameter("bias", nb);
  }
}

BatchNorm::BatchNorm(int64_t num_features, float eps, Dtype dtype) : n_(num_features), eps_(eps) {
  if (num_features <= 0) fail<ValueError>("[BatchNorm] num_features must be positive, got ", num_features);
  register_parameter("weight", ones({num_features}, dtype));
  register_parameter("bias", zeros({num_features}, dtype));
  register_parameter("running_mean", zeros({num_features}, dtype));
  register_parameter("running_var", ones({num_features}, dtype));
  register_parameter("num_batches_tracked", zeros({}, int64));
}

std::pair<array, array> BatchNorm::scale_shift() const {
  // In float32 at least, whatever the parameters' dtype.
  auto f = [](const array& a) { return a.dtype() == float64 ? a : astype(a, float32); };
  array scale = multiply(f(parameter("weight")), rsqrt(add(f(parameter("running_var")), array(eps_))));
  array shift = subtract(f(parameter("bias")), multiply(f(parameter("running_mean")), scale));
  return {scale, shift};
}

array BatchNorm::operator()(const array& x) const {
  if (x.ndim() == 0 || x.shape().back() != n_) {
    fail<ValueError>("[BatchNorm] expects ", n_, " channels in the last axis, got shape ", x.shape());
  }
  auto [scale, shift] = scale_shift();
  return add(multiply(x, astype(scale, x.dtype())), astype(shift, x.dtype()));
}

MaxPool2d::MaxPool2d(std::pair<int, int> kernel, std::optional<std::pair<int, int>> stride, std::pair<int, int> padding,
                     std::pair<int, int> dilation)
    : kernel_{kernel.first, kernel.second},
      stride_{stride.value_or(kernel).first, stride.value_or(kernel).second},
      padding_{padding.first, padding.second},
      dilation_{dilation.first, dilation.second} {}

array MaxPool2d::operator()(const array& x) const { return max_pool(x, kernel_, stride_, padding_, dilation_); }

AvgPool2d::AvgPool2d(std::pair<int, int> kernel, std::optional<std::pair<int, int>> stride, std::pair<int, int> padding,
                     bool count_include_pad)
    : kernel_{kernel.first, kernel.second},
      stride_{stride.value_or(kernel).first, stride.value_or(kernel).second},
      padding_{padding.first, padding.second},
      count_include_pad_(count_include_pad) {}

array AvgPool2d::operator()(const array& x) const {
  return avg_pool(x, kernel_, stride_, padding_, count_include_pad_);
}

array AdaptiveAvgPool2d::operator()(const array& x) const {
  return adaptive_avg_pool(x, {output_.first, output_.second});
}

std::map<std::string, array> torch_to_kiln_layout(const std::map<std::string, array>& state_dict) {
  std::map<std::string, array> out;
  for (const auto& [name, a] : state_dict) {
    int nd = a.ndim();
    bool conv_weight = nd >= 3 && nd <= 5 && name.size() >= 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    if (!conv_weight) {
      out.emplace(name, a);
      continue;
    }
    std::vector<int> axes{0};
    for (int i = 2; i < nd; ++i) axes.push_back(i);
    axes.push_back(1);
    out.emplace(name, contiguous(transpose(a, axes)));
  }
  return out;
}

}  // namespace kiln::nn
