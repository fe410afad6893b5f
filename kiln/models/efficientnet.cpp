#include "kiln/models/efficientnet.h"

#include "kiln/ops.h"

namespace kiln::models {

namespace {

constexpr float kEps = 1e-3f;

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int k, int stride, int groups, Dtype dtype) {
  return std::make_shared<nn::Conv2d>(in, out, std::pair{k, k}, std::pair{stride, stride}, std::pair{k / 2, k / 2},
                                      std::pair{1, 1}, groups, false, dtype);
}

// (repeats, kernel, stride, expansion, in, out) per stage.
struct Stage {
  int repeats, kernel, stride, expand;
  int64_t in, out;
};
constexpr Stage kStages[] = {{1, 3, 1, 1, 32, 16},   {2, 3, 2, 6, 16, 24},   {2, 5, 2, 6, 24, 40},
                             {3, 3, 2, 6, 40, 80},   {3, 5, 1, 6, 80, 112},  {4, 5, 2, 6, 112, 192},
                             {1, 3, 1, 6, 192, 320}};

}  // namespace

MBConvBlock::MBConvBlock(int64_t in, int64_t out, int kernel, int stride, int expand, Dtype dtype)
    : skip_(stride == 1 && in == out) {
  int64_t mid = in * expand;
  if (expand != 1) {
    expand_ = register_module("_expand_conv", conv(in, mid, 1, 1, 1, dtype));
    bn0_ = register_module("_bn0", std::make_shared<nn::BatchNorm>(mid, kEps, dtype));
  }
  depthwise_ = register_module("_depthwise_conv", conv(mid, mid, kernel, stride, static_cast<int>(mid), dtype));
  bn1_ = register_module("_bn1", std::make_shared<nn::BatchNorm>(mid, kEps, dtype));
  project_ = register_module("_project_conv", conv(mid, out, 1, 1, 1, dtype));
  bn2_ = register_module("_bn2", std::make_shared<nn::BatchNorm>(out, kEps, dtype));
}

array MBConvBlock::operator()(const array& x) const {
  if (folded_) {
    // Each convolution carries its batch norm, activation and (the last) the skip in one kernel.
    array h = x;
    if (expand_) h = (*expand_)(h, {}, ConvActivation::relu6);
    h = (*depthwise_)(h, {}, ConvActivation::relu6);
    return (*project_)(h, skip_ ? std::optional<array>(x) : std::nullopt, ConvActivation::none);
  }
  array h = x;
  if (expand_) h = nn::relu6((*bn0_)((*expand_)(h)));
  h = nn::relu6((*bn1_)((*depthwise_)(h)));
  h = (*bn2_)((*project_)(h));
  return skip_ ? add(h, x) : h;
}

void MBConvBlock::fold_batchnorm() {
  if (folded_) return;
  auto fold = [](nn::Conv2d& c, const nn::BatchNorm& b) {
    auto [scale, shift] = b.scale_shift();
    c.fold(scale, shift);
  };
  if (expand_) fold(*expand_, *bn0_);
  fold(*depthwise_, *bn1_);
  fold(*project_, *bn2_);
  folded_ = true;
}

EfficientNetLite0::EfficientNetLite0(int64_t num_classes, Dtype dtype) {
  stem_ = register_module("_conv_stem", conv(3, 32, 3, 2, 1, dtype));
  bn0_ = register_module("_bn0", std::make_shared<nn::BatchNorm>(32, kEps, dtype));
  std::vector<std::shared_ptr<MBConvBlock>> blocks;
  for (const Stage& s : kStages) {
    for (int j = 0; j < s.repeats; ++j) {
      blocks.push_back(std::make_shared<MBConvBlock>(j == 0 ? s.in : s.out, s.out, s.kernel, j == 0 ? s.stride : 1,
                                                     s.expand, dtype));
    }
  }
  blocks_ = register_modules("_blocks", blocks);
  head_ = register_module("_conv_head", conv(320, 1280, 1, 1, 1, dtype));
  bn1_ = register_module("_bn1", std::make_shared<nn::BatchNorm>(1280, kEps, dtype));
  fc_ = register_module("_fc", std::make_shared<nn::Linear>(1280, num_classes, true, dtype));
}

array EfficientNetLite0::operator()(const array& x) const {
  if (x.ndim() != 4 || x.shape(3) != 3) {
    fail<ValueError>("[EfficientNetLite0] expects images (N, H, W, 3), got shape ", x.shape());
  }
  Dtype dt = fc_->weight().dtype();
  array in = x.dtype() == dt ? x : astype(x, dt);
  array h = folded_ ? (*stem_)(in, {}, ConvActivation::relu6) : nn::relu6((*bn0_)((*stem_)(in)));
  for (const auto& b : blocks_) h = (*b)(h);
  h = folded_ ? (*head_)(h, {}, ConvActivation::relu6) : nn::relu6((*bn1_)((*head_)(h)));
  return (*fc_)(mean(h, {1, 2}));
}

void EfficientNetLite0::fold_batchnorm() {
  if (folded_) return;
  auto [s0, t0] = bn0_->scale_shift();
  stem_->fold(s0, t0);
  for (auto& b : blocks_) b->fold_batchnorm();
  auto [s1, t1] = bn1_->scale_shift();
  head_->fold(s1, t1);
  folded_ = true;
}

void EfficientNetLite0::load_torch(const std::map<std::string, array>& state_dict, std::optional<Dtype> dtype) {
  load_weights(nn::torch_to_kiln_layout(state_dict), true, dtype);
  eval();
}

}  // namespace kiln::models
