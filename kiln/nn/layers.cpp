#include "kiln/nn/layers.h"

#include <cmath>

#include "kiln/fast.h"
#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_index.h"
#include "kiln/ops_linalg.h"
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

array as_float(const array& x, const StreamOrDevice& s) { return is_inexact(x.dtype()) ? x : astype(x, float32, s); }

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

// A transposed view of the weight: matmul reads it in place.
array Linear::weight_t(StreamOrDevice s) const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  const array& w = weight();
  if (!weight_t_ || !weight_of_->is_same(w)) {
    weight_of_ = w;
    weight_t_ = transpose(w, s);
  }
  return *weight_t_;
}

array Linear::operator()(const array& x, StreamOrDevice s) const {
  check_features("Linear", x, in_);
  array y = matmul(x, weight_t(s), s);
  return has_bias() ? add(y, parameter("bias"), s) : y;
}

array Linear::operator()(const array& x, const array& residual, StreamOrDevice s) const {
  check_features("Linear", x, in_);
  array y = addmm(residual, x, weight_t(s), 1.0, 1.0, s);
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
  array wt = [&] {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const array& w = weight();
    if (!weight_t_ || !weight_of_->is_same(w)) {
      weight_of_ = w;
      weight_t_ = transpose(w, s);
    }
    return *weight_t_;
  }();
  return matmul(x, wt, s);
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

array silu(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return multiply(xf, sigmoid(xf, s), s);
}

array gelu(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  array inner = erf(multiply(xf, scalar_like(0.70710678118654752440, xf), s), s);  // erf(x / sqrt(2))
  array half_x = multiply(xf, scalar_like(0.5, xf), s);
  return multiply(half_x, add(inner, scalar_like(1.0, xf), s), s);
}

array gelu_tanh(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  array cube = multiply(multiply(xf, xf, s), xf, s);
  array inner = add(xf, multiply(cube, scalar_like(0.044715, xf), s), s);
  array t = tanh(multiply(inner, scalar_like(0.79788456080286535588, xf), s), s);  // sqrt(2 / pi)
  array half_x = multiply(xf, scalar_like(0.5, xf), s);
  return multiply(half_x, add(t, scalar_like(1.0, xf), s), s);
}

array relu(const array& x, StreamOrDevice s) {
  if (x.dtype() == bool_) return x;
  return maximum(x, scalar_like(0.0, x), s);
}

}  // namespace kiln::nn
