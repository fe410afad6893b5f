// The basic layers models are built from, with PyTorch's parameter shapes and names (so Hugging
// Face checkpoints load by name) and PyTorch's default initialisation, drawn with kiln::random.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "kiln/array.h"
#include "kiln/nn/activations.h"  // so that the activations come with the layers
#include "kiln/nn/module.h"

namespace kiln::nn {

// The transposed view of a weight, kept between calls and rebuilt when the weight changes, so that
// each call adds only the product to the graph (matmul reads the view in place).
class TransposedWeight {
 public:
  array of(const array& weight, StreamOrDevice s) const;

 private:
  mutable std::mutex mutex_;
  mutable std::optional<array> transposed_, source_;
};

// y = x @ weight^T + bias, weight (out, in), bias (out,). Initialised uniform in
// [-1/sqrt(in), 1/sqrt(in)) as PyTorch does.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Dtype dtype = float32);
  // x (..., in) -> (..., out).
  array operator()(const array& x, StreamOrDevice s = {}) const;
  // residual + x @ weight^T (+ bias) with the sum fused into the product (addmm): a residual
  // connection that costs no extra pass.
  array operator()(const array& x, const array& residual, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  const array& weight() const { return parameter("weight"); }
  bool has_bias() const { return has_parameter("bias"); }

 private:
  int64_t in_, out_;
  TransposedWeight weight_t_;
};

// A lookup table: weight (num_embeddings, dim), initialised standard normal as PyTorch does.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Dtype dtype = float32);
  // Integer ids of any shape -> (*ids.shape, dim).
  array operator()(const array& ids, StreamOrDevice s = {}) const;
  array forward(const array& ids) const override { return (*this)(ids); }
  // x (..., dim) @ weight^T -> (..., num_embeddings): the output head of models that tie it to
  // the input embedding.
  array as_linear(const array& x, StreamOrDevice s = {}) const;

  int64_t num_embeddings() const { return num_; }
  int64_t dim() const { return dim_; }
  const array& weight() const { return parameter("weight"); }

 private:
  int64_t num_, dim_;
  TransposedWeight weight_t_;  // as_linear's
};

// x / sqrt(mean(x^2, -1) + eps) * weight, weight (dim,) initialised to ones.
class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, float eps = 1e-5f, Dtype dtype = float32);
  array operator()(const array& x, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }
  float eps() const { return eps_; }
  const array& weight() const { return parameter("weight"); }

 private:
  int64_t dim_;
  float eps_;
};

// (x - mean) / sqrt(var + eps) * weight + bias over the last axis; with affine, weight (ones) and
// bias (zeros) of shape (dim,), without, neither.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, float eps = 1e-5f, bool affine = true, Dtype dtype = float32);
  array operator()(const array& x, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }
  float eps() const { return eps_; }

 private:
  int64_t dim_;
  float eps_;
  bool affine_;
};

// PyTorch's GroupNorm, channels-last: x (N, ..., C) with C = num_channels split into num_groups
// groups of consecutive channels; each sample's group is normalized over its channels and all
// the axes between N and C, then scaled and shifted per channel by weight (ones) and bias (zeros)
// of shape (C,) when affine. Statistics are computed in float32 at least; the result has x's
// dtype.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, float eps = 1e-5f, bool affine = true, Dtype dtype = float32);
  array operator()(const array& x, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }
  int64_t num_groups() const { return groups_; }
  float eps() const { return eps_; }

 private:
  int64_t groups_, channels_;
  float eps_;
  bool affine_;
};

// Inverted dropout: in training mode each element is zeroed with probability p and the rest are
// scaled by 1 / (1 - p), so that the expectation is x; in inference mode (eval()) it is the
// identity. p is in [0, 1] (ValueError otherwise); p = 1 zeroes everything. The mask is drawn
// with kiln::random, from `key` when one is given.
class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f);
  array operator()(const array& x, const std::optional<array>& key = {}, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }
  float p() const { return p_; }

 private:
  float p_;
};

}  // namespace kiln::nn
