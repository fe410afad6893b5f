// Loss functions with PyTorch's definitions (torch.nn.functional), classes on the last axis.
//
// reduction is "mean" (the default), "sum" or "none" (the loss per element, or per sample for
// the classification losses); anything else is a ValueError. Inputs must be floating
// (TypeError); losses are computed in float32 at least (float64 for float64) and returned in the
// promoted dtype of input and target (the input's dtype for the classification losses). Shapes
// that do not fit are a ValueError naming the loss.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kiln/array.h"

namespace kiln::nn {

// -log_softmax(logits)[target] per sample, with logits (..., C) (the class axis last, where
// PyTorch has it second) and either
//  - class indices: integer targets of shape logits.shape[:-1]. Targets equal to ignore_index
//    count for nothing (not even in the mean's denominator); any other target outside [0, C)
//    makes its loss NaN (kiln cannot check lazy values up front). weight (C,) scales each
//    sample's loss by the weight of its class, and "mean" divides by the sum of those weights.
//    With label_smoothing e in [0, 1], the loss is (1 - e) * nll + e / C * sum_c(-weight_c
//    log_softmax_c).
//  - probabilities: floating targets of logits' shape. The loss is -sum_c(weight_c t'_c
//    log_softmax_c) with t' = (1 - e) t + e / C; "mean" divides by the number of samples.
array cross_entropy(const array& logits, const array& targets, const std::optional<array>& weight = {},
                    int64_t ignore_index = -100, const std::string& reduction = "mean", float label_smoothing = 0.0f,
                    StreamOrDevice s = {});

// -weight[target] * log_probs[target] per sample: cross_entropy of log-probabilities (..., C)
// with class-index targets and no smoothing; the same rules for ignore_index, weight and "mean".
array nll_loss(const array& log_probs, const array& targets, const std::optional<array>& weight = {},
               int64_t ignore_index = -100, const std::string& reduction = "mean", StreamOrDevice s = {});

// Elementwise losses of input and target of the same shape (ValueError otherwise).
array mse_loss(const array& input, const array& target, const std::string& reduction = "mean",
               StreamOrDevice s = {});  // (x - y)^2
array l1_loss(const array& input, const array& target, const std::string& reduction = "mean",
              StreamOrDevice s = {});  // |x - y|
// d = |x - y|: 0.5 d^2 / beta where d < beta, else d - 0.5 beta; beta = 0 is l1_loss. beta must
// be non-negative (ValueError).
array smooth_l1_loss(const array& input, const array& target, float beta = 1.0f, const std::string& reduction = "mean",
                     StreamOrDevice s = {});
// 0.5 d^2 where d < delta, else delta (d - 0.5 delta); delta must be positive (ValueError).
array huber_loss(const array& input, const array& target, float delta = 1.0f, const std::string& reduction = "mean",
                 StreamOrDevice s = {});

// -weight (t log p + (1 - t) log(1 - p)) for probabilities p, each log clamped at -100 as
// PyTorch does (so p = 0 or 1 gives a finite loss). weight broadcasts to the input's shape.
array binary_cross_entropy(const array& probs, const array& targets, const std::optional<array>& weight = {},
                           const std::string& reduction = "mean", StreamOrDevice s = {});
// The same from logits x, without forming sigmoid(x): (1 - t) x + (1 + (pos_weight - 1) t)
// softplus(-x), times weight. pos_weight (e.g. (C,)) weighs the positive term and broadcasts to
// the input's shape, as weight does.
array binary_cross_entropy_with_logits(const array& logits, const array& targets,
                                       const std::optional<array>& weight = {},
                                       const std::optional<array>& pos_weight = {},
                                       const std::string& reduction = "mean", StreamOrDevice s = {});

// Kullback-Leibler divergence with input the log-probabilities of the model and target the
// probabilities (log-probabilities with log_target): t (log t - input), 0 where t = 0. reduction
// may also be "batchmean": the sum divided by the size of the first axis (the mathematical KL
// divergence per sample; "mean" divides by the number of elements, as PyTorch does).
array kl_div(const array& input, const array& target, const std::string& reduction = "mean", bool log_target = false,
             StreamOrDevice s = {});

}  // namespace kiln::nn
