#include "kiln/models/resnet.h"

#include "kiln/ops.h"

namespace kiln::models {

ResidualBlock::ResidualBlock(bool bottleneck, int64_t in, int64_t width, int stride, Dtype dtype) {
  auto conv = [&](int64_t ci, int64_t co, int k, int s) {
    return std::make_shared<nn::Conv2d>(ci, co, std::pair{k, k}, std::pair{s, s}, std::pair{k / 2, k / 2},
                                        std::pair{1, 1}, 1, false, dtype);
  };
  int64_t out = bottleneck ? width * kBottleneckExpansion : width;
  std::vector<std::shared_ptr<nn::Conv2d>> convs;
  if (bottleneck) {
    convs = {conv(in, width, 1, 1), conv(width, width, 3, stride), conv(width, out, 1, 1)};
  } else {
    convs = {conv(in, width, 3, stride), conv(width, width, 3, 1)};
  }
  for (size_t i = 0; i < convs.size(); ++i) {
    std::string n = std::to_string(i + 1);
    auto c = register_module("conv" + n, convs[i]);
    auto b = register_module("bn" + n, std::make_shared<nn::BatchNorm>(convs[i]->weight().shape(0), 1e-5f, dtype));
    path_.emplace_back(c, b);
  }
  if (stride != 1 || in != out) {
    down_conv_ = conv(in, out, 1, stride);
    down_bn_ = std::make_shared<nn::BatchNorm>(out, 1e-5f, dtype);
    register_modules<nn::Module>("downsample", {down_conv_, down_bn_});
  }
}

array ResidualBlock::operator()(const array& x) const {
  if (folded_) {
    // Each convolution carries its batch norm, ReLU and (the last) the residual in one kernel.
    array identity = down_conv_ ? (*down_conv_)(x) : x;
    array h = x;
    for (size_t i = 0; i + 1 < path_.size(); ++i) h = (*path_[i].first)(h, {}, ConvActivation::relu);
    return (*path_.back().first)(h, identity, ConvActivation::relu);
  }
  array h = x;
  for (size_t i = 0; i < path_.size(); ++i) {
    h = (*path_[i].first)(h);
    if (!folded_) h = (*path_[i].second)(h);
    if (i + 1 < path_.size()) h = nn::relu(h);
  }
  array identity = x;
  if (down_conv_) {
    identity = (*down_conv_)(x);
    if (!folded_) identity = (*down_bn_)(identity);
  }
  return nn::relu(add(h, identity));
}

void ResidualBlock::fold_batchnorm() {
  if (folded_) return;
  for (auto& [c, b] : path_) {
    auto [scale, shift] = b->scale_shift();
    c->fold(scale, shift);
  }
  if (down_conv_) {
    auto [scale, shift] = down_bn_->scale_shift();
    down_conv_->fold(scale, shift);
  }
  folded_ = true;
}

ResNet::ResNet(int depth, int64_t num_classes, Dtype dtype) {
  std::vector<int> layers;
  bool bottleneck = depth >= 50;
  switch (depth) {
    case 18: layers = {2, 2, 2, 2}; break;
    case 34: layers = {3, 4, 6, 3}; break;
    case 50: layers = {3, 4, 6, 3}; break;
    case 101: layers = {3, 4, 23, 3}; break;
    case 152: layers = {3, 8, 36, 3}; break;
    default: fail<ValueError>("[ResNet] depth must be 18, 34, 50, 101 or 152, got ", depth);
  }
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, 64, std::pair{7, 7}, std::pair{2, 2},
                                                                 std::pair{3, 3}, std::pair{1, 1}, 1, false, dtype));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm>(64, 1e-5f, dtype));
  int64_t in = 64;
  for (int l = 0; l < 4; ++l) {
    int64_t width = int64_t{64} << l;
    std::vector<std::shared_ptr<ResidualBlock>> layer;
    for (int i = 0; i < layers[l]; ++i) {
      int stride = (i == 0 && l > 0) ? 2 : 1;
      layer.push_back(std::make_shared<ResidualBlock>(bottleneck, in, width, stride, dtype));
      in = bottleneck ? width * ResidualBlock::kBottleneckExpansion : width;
    }
    register_modules("layer" + std::to_string(l + 1), layer);
    blocks_.insert(blocks_.end(), layer.begin(), layer.end());
  }
  fc_ = register_module("fc", std::make_shared<nn::Linear>(in, num_classes, true, dtype));
}

array ResNet::operator()(const array& x) const {
  if (x.ndim() != 4 || x.shape(3) != 3) fail<ValueError>("[ResNet] expects images (N, H, W, 3), got shape ", x.shape());
  array in = x.dtype() == fc_->weight().dtype() ? x : astype(x, fc_->weight().dtype());
  array h = folded_ ? (*conv1_)(in, {}, ConvActivation::relu) : nn::relu((*bn1_)((*conv1_)(in)));
  h = max_pool(h, {3, 3}, {2, 2}, {1, 1});
  for (const auto& b : blocks_) h = (*b)(h);
  h = mean(h, {1, 2});  // global average pool
  return (*fc_)(h);
}

void ResNet::fold_batchnorm() {
  if (folded_) return;
  auto [scale, shift] = bn1_->scale_shift();
  conv1_->fold(scale, shift);
  for (auto& b : blocks_) b->fold_batchnorm();
  folded_ = true;
}

void ResNet::load_torchvision(const std::map<std::string, array>& state_dict, std::optional<Dtype> dtype) {
  load_weights(nn::torch_to_kiln_layout(state_dict), true, dtype);
  eval();
}

}  // namespace kiln::models
