#include "kiln/nn/layers.h"

#include <cmath>

#include "kiln/fast.h"
#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_index.h"
#include "kiln/ops_linalg.h"
#include "kiln/ops_reduce.h"
#include "kiln/ops_shape.h"
#include "kiln/random.h"

namespace kiln::nn {

namespace {

void check_size(const char* layer, const char* what, int64_t n) {
  if (n < 0) fail<ValueError>("[", layer, "] ", what, " must be non-negative, got ", n);
}

void check_float(const char* layer, Dtype dtype) {
  if (!is_floating(dtype)) fail<TypeError>("[", layer, "] parameters must have a floating dtype, not ", dtype);
}

// x must be at least 1-d with `n` features in its last axis.
void check_features(const char* layer, const array& x, int64_t n) {
  if (x.ndim() == 0 || x.shape().back() != n) {
    fail<ValueError>("[", layer, "] expects inputs with ", n, " features in the last axis, got shape ", x.shape());
  }
}

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Dtype dtype)
    : in_(in_features), out_(out_features) {
  check_size("Linear", "in_features", in_features);
  check_size("Linear", "out_features", out_features);
  check_float("Linear", dtype);
  // PyTorch's default: kaiming_uniform(a=sqrt(5)) for the weight and U(-1/sqrt(in), 1/sqrt(in))
  // for the bias come to the same bound.
  double k = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
  auto init = [&](const Shape& shape) {
    return k > 0 ? random::uniform(-k, k, shape, dtype) : zeros(shape, dtype);
  };
  register_parameter("weight", init({out_features, in_features}));
  if (bias) register_parameter("bias", init({out_features}));
}

array TransposedWeight::of(const array& weight, StreamOrDevice s) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!transposed_ || !source_->is_same(weight)) {
    source_ = weight;
    transposed_ = transpose(weight, s);
  }
  return *transposed_;
}

array Linear::operator()(const array& x, StreamOrDevice s) const {
  check_features("Linear", x, in_);
  array y = matmul(x, weight_t_.of(weight(), s), s);
  return has_bias() ? add(y, parameter("bias"), s) : y;
}

array Linear::operator()(const array& x, const array& residual, StreamOrDevice s) const {
  check_features("Linear", x, in_);
  array y = addmm(residual, x, weight_t_.of(weight(), s), 1.0, 1.0, s);
  return has_bias() ? add(y, parameter("bias"), s) : y;
}

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Dtype dtype) : num_(num_embeddings), dim_(dim) {
  check_size("Embedding", "num_embeddings", num_embeddings);
  check_size("Embedding", "dim", dim);
  check_float("Embedding", dtype);
  register_parameter("weight", random::normal({num_embeddings, dim}, dtype));
}

array Embedding::operator()(const array& ids, StreamOrDevice s) const {
  if (!is_integer(ids.dtype())) fail<TypeError>("[Embedding] ids must be integers, not ", ids.dtype());
  return take(weight(), ids, 0, s);
}

array Embedding::as_linear(const array& x, StreamOrDevice s) const {
  check_features("Embedding.as_linear", x, dim_);
  return matmul(x, weight_t_.of(weight(), s), s);
}

RMSNorm::RMSNorm(int64_t dim, float eps, Dtype dtype) : dim_(dim), eps_(eps) {
  check_size("RMSNorm", "dim", dim);
  check_float("RMSNorm", dtype);
  register_parameter("weight", ones({dim}, dtype));
}

array RMSNorm::operator()(const array& x, StreamOrDevice s) const {
  check_features("RMSNorm", x, dim_);
  return fast::rms_norm(x, weight(), eps_, s);
}

LayerNorm::LayerNorm(int64_t dim, float eps, bool affine, Dtype dtype) : dim_(dim), eps_(eps), affine_(affine) {
  check_size("LayerNorm", "dim", dim);
  check_float("LayerNorm", dtype);
  if (affine) {
    register_parameter("weight", ones({dim}, dtype));
    register_parameter("bias", zeros({dim}, dtype));
  }
}

array LayerNorm::operator()(const array& x, StreamOrDevice s) const {
  check_features("LayerNorm", x, dim_);
  if (!affine_) return fast::layer_norm(x, std::nullopt, std::nullopt, eps_, s);
  return fast::layer_norm(x, parameter("weight"), parameter("bias"), eps_, s);
}

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, float eps, bool affine, Dtype dtype)
    : groups_(num_groups), channels_(num_channels), eps_(eps), affine_(affine) {
  if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups != 0) {
    fail<ValueError>("[GroupNorm] num_channels (", num_channels, ") must be a positive multiple of num_groups (",
                     num_groups, ")");
  }
  check_float("GroupNorm", dtype);
  if (affine) {
    register_parameter("weight", ones({num_channels}, dtype));
    register_parameter("bias", zeros({num_channels}, dtype));
  }
}

array GroupNorm::operator()(const array& x, StreamOrDevice s) const {
  if (x.ndim() < 2 || x.shape().back() != channels_) {
    fail<ValueError>("[GroupNorm] expects inputs (N, ..., C) with C = ", channels_, ", got shape ", x.shape());
  }
  if (!is_floating(x.dtype())) fail<TypeError>("[GroupNorm] expects a floating input, got ", x.dtype());
  const Dtype ct = x.dtype() == float64 ? float64 : float32;
  // (N, *spatial, C) -> (N, S, G, C / G): the statistics of a group are over axes 1 and 3.
  int64_t spatial = 1;
  for (int i = 1; i + 1 < x.ndim(); ++i) spatial *= x.shape(i);
  array g = reshape(astype(x, ct, s), {x.shape(0), spatial, groups_, channels_ / groups_}, s);
  array mu = mean(g, {1, 3}, true, s);
  array inv = rsqrt(add(var(g, {1, 3}, true, 0, s), scalar_like(eps_, g), s), s);
  array y = reshape(multiply(subtract(g, mu, s), inv, s), x.shape(), s);
  if (affine_) {
    y = add(multiply(y, astype(parameter("weight"), ct, s), s), astype(parameter("bias"), ct, s), s);
  }
  return astype(y, x.dtype(), s);
}

Dropout::Dropout(float p) : p_(p) {
  if (!(p >= 0.0f && p <= 1.0f)) fail<ValueError>("[Dropout] p must be in [0, 1], got ", p);
}

array Dropout::operator()(const array& x, const std::optional<array>& key, StreamOrDevice s) const {
  if (!is_floating(x.dtype())) fail<TypeError>("[Dropout] expects a floating input, got ", x.dtype());
  if (!training() || p_ == 0.0f) return x;
  if (p_ == 1.0f) return zeros_like(x, s);
  array keep = random::bernoulli(1.0 - p_, x.shape(), key, s);
  return where(keep, multiply(x, scalar_like(1.0 / (1.0 - p_), x), s), scalar_like(0.0, x), s);
}

}  // namespace kiln::nn
