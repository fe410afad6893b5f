#include "kiln/nn/losses.h"

#include <cmath>
#include <limits>

#include "kiln/ops.h"

namespace kiln::nn {

namespace {

enum class Reduction { none, mean, sum, batchmean };

Reduction parse_reduction(const char* op, const std::string& r, bool batchmean = false) {
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  if (batchmean && r == "batchmean") return Reduction::batchmean;
  fail<ValueError>("[", op, "] reduction must be 'mean', 'sum'", batchmean ? ", 'none' or 'batchmean'" : " or 'none'",
                   ", got '", r, "'");
}

void check_floating(const char* op, const char* what, const array& a) {
  if (!is_floating(a.dtype())) fail<TypeError>("[", op, "] ", what, " must be floating, got ", a.dtype());
}

void check_real(const char* op, const char* what, const array& a) {
  if (is_complex(a.dtype())) fail<TypeError>("[", op, "] ", what, " must be real, got ", a.dtype());
}

// The dtype a loss over `t` is computed in.
Dtype compute_dtype(Dtype t) { return t == float64 ? float64 : float32; }

// A per-element loss reduced (mean over all elements), returned in `out`.
array reduce(const array& loss, Reduction r, Dtype out, const StreamOrDevice& s) {
  switch (r) {
    case Reduction::none: return astype(loss, out, s);
    case Reduction::sum: return astype(sum(loss, false, s), out, s);
    default: return astype(mean(loss, false, s), out, s);
  }
}

// Elementwise losses: checks and the common conversion; `f` maps (x, y) in the compute dtype to
// the loss per element.
template <class F>
array elementwise_loss(const char* op, const array& input, const array& target, const std::string& reduction,
                       const StreamOrDevice& s, F f) {
  Reduction r = parse_reduction(op, reduction);
  check_floating(op, "input", input);
  check_real(op, "target", target);
  if (input.shape() != target.shape()) {
    fail<ValueError>("[", op, "] input and target must have the same shape, got ", input.shape(), " and ",
                     target.shape());
  }
  Dtype out = promote_types(input.dtype(), target.dtype());
  Dtype ct = compute_dtype(out);
  return reduce(f(astype(input, ct, s), astype(target, ct, s)), r, out, s);
}

// An optional weight of an elementwise loss, checked to broadcast to `shape`.
std::optional<array> weight_for(const char* op, const char* what, const std::optional<array>& w, const Shape& shape,
                                Dtype ct, const StreamOrDevice& s) {
  if (!w) return std::nullopt;
  check_real(op, what, *w);
  if (broadcast_shapes(w->shape(), shape, op) != shape) {
    fail<ValueError>("[", op, "] ", what, " of shape ", w->shape(), " does not broadcast to the input's shape ", shape);
  }
  return astype(*w, ct, s);
}

// The negative log-likelihood of class-index targets from log-probabilities `logp` (..., C) in
// the compute dtype, with optional label smoothing (cross_entropy and nll_loss).
array class_index_loss(const char* op, const array& logp, const array& targets, const std::optional<array>& weight,
                       int64_t ignore_index, Reduction r, float smoothing, Dtype out, const StreamOrDevice& s) {
  const int64_t C = logp.shape(-1);
  const Dtype ct = logp.dtype();  // the compute dtype
  array t = astype(targets, int64, s);
  // One-hot by comparison rather than a gather, so that any target value is safe to read.
  array hit = equal(expand_dims(t, -1, s), arange(static_cast<double>(C), int64, s), s);
  array valid = not_equal(t, array(ignore_index), s);
  array in_range = logical_and(greater_equal(t, array(int64_t(0)), s), less(t, array(C), s), s);
  const array zero = scalar_like(0.0, logp), nan = scalar_like(std::numeric_limits<double>::quiet_NaN(), logp);

  std::optional<array> w;
  if (weight) w = astype(*weight, ct, s);
  // The weight of each sample's class (1 without weights); 0 where ignored.
  array wt = w ? sum(where(hit, *w, zero, s), -1, false, s) : astype(valid, ct, s);
  if (w) wt = where(valid, wt, zero, s);
  array picked = sum(where(hit, logp, zero, s), -1, false, s);
  array loss = negative(multiply(wt, picked, s), s);
  if (smoothing > 0.0f) {
    array all = negative(sum(w ? multiply(logp, *w, s) : logp, -1, false, s), s);
    all = where(valid, all, zero, s);
    loss = add(multiply(loss, scalar_like(1.0 - smoothing, logp), s),
               multiply(all, scalar_like(smoothing / double(C), logp), s), s);
  }
  loss = where(logical_and(valid, logical_not(in_range, s), s), nan, loss, s);
  switch (r) {
    case Reduction::none: return astype(loss, out, s);
    case Reduction::sum: return astype(sum(loss, false, s), out, s);
    default: return astype(divide(sum(loss, false, s), sum(wt, false, s), s), out, s);
  }
}

void check_class_weight(const char* op, const std::optional<array>& weight, int64_t C) {
  if (!weight) return;
  check_floating(op, "weight", *weight);
  if (weight->shape() != Shape{C}) {
    fail<ValueError>("[", op, "] weight must have shape ", Shape{C}, " (one per class), got ", weight->shape());
  }
}

}  // namespace

array cross_entropy(const array& logits, const array& targets, const std::optional<array>& weight,
                    int64_t ignore_index, const std::string& reduction, float label_smoothing, StreamOrDevice s) {
  const char* op = "cross_entropy";
  Reduction r = parse_reduction(op, reduction);
  check_floating(op, "logits", logits);
  if (logits.ndim() == 0) fail<ValueError>("[cross_entropy] logits must have a class axis, got shape ()");
  const int64_t C = logits.shape(-1);
  check_class_weight(op, weight, C);
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f)) {
    fail<ValueError>("[cross_entropy] label_smoothing must be in [0, 1], got ", label_smoothing);
  }
  const Dtype ct = compute_dtype(logits.dtype());
  array logp = log_softmax(astype(logits, ct, s), -1, s);
  Shape batch(logits.shape().begin(), logits.shape().end() - 1);

  if (is_floating(targets.dtype())) {
    if (targets.shape() != logits.shape()) {
      fail<ValueError>("[cross_entropy] probability targets must have the logits' shape ", logits.shape(), ", got ",
                       targets.shape());
    }
    array t = astype(targets, ct, s);
    if (label_smoothing > 0.0f) {
      t = add(multiply(t, scalar_like(1.0 - label_smoothing, t), s), scalar_like(label_smoothing / double(C), t), s);
    }
    array terms = multiply(t, logp, s);
    if (weight) terms = multiply(terms, astype(*weight, ct, s), s);
    array loss = negative(sum(terms, -1, false, s), s);
    return reduce(loss, r, logits.dtype(), s);
  }
  if (!is_integer(targets.dtype())) {
    fail<TypeError>("[cross_entropy] targets must be integer class indices or floating probabilities, got ",
                    targets.dtype());
  }
  if (targets.shape() != batch) {
    fail<ValueError>("[cross_entropy] class-index targets must have shape ", batch, " (logits ", logits.shape(),
                     " without the class axis), got ", targets.shape());
  }
  return class_index_loss(op, logp, targets, weight, ignore_index, r, label_smoothing, logits.dtype(), s);
}

array nll_loss(const array& log_probs, const array& targets, const std::optional<array>& weight, int64_t ignore_index,
               const std::string& reduction, StreamOrDevice s) {
  const char* op = "nll_loss";
  Reduction r = parse_reduction(op, reduction);
  check_floating(op, "log_probs", log_probs);
  if (log_probs.ndim() == 0) fail<ValueError>("[nll_loss] log_probs must have a class axis, got shape ()");
  check_class_weight(op, weight, log_probs.shape(-1));
  if (!is_integer(targets.dtype())) fail<TypeError>("[nll_loss] targets must be integer class indices, got ", targets.dtype());
  Shape batch(log_probs.shape().begin(), log_probs.shape().end() - 1);
  if (targets.shape() != batch) {
    fail<ValueError>("[nll_loss] targets must have shape ", batch, " (log_probs ", log_probs.shape(),
                     " without the class axis), got ", targets.shape());
  }
  array logp = astype(log_probs, compute_dtype(log_probs.dtype()), s);
  return class_index_loss(op, logp, targets, weight, ignore_index, r, 0.0f, log_probs.dtype(), s);
}

array mse_loss(const array& input, const array& target, const std::string& reduction, StreamOrDevice s) {
  return elementwise_loss("mse_loss", input, target, reduction, s,
                          [&](const array& x, const array& y) { return square(subtract(x, y, s), s); });
}

array l1_loss(const array& input, const array& target, const std::string& reduction, StreamOrDevice s) {
  return elementwise_loss("l1_loss", input, target, reduction, s,
                          [&](const array& x, const array& y) { return abs(subtract(x, y, s), s); });
}

array smooth_l1_loss(const array& input, const array& target, float beta, const std::string& reduction,
                     StreamOrDevice s) {
  if (!(beta >= 0.0f)) fail<ValueError>("[smooth_l1_loss] beta must be non-negative, got ", beta);
  return elementwise_loss("smooth_l1_loss", input, target, reduction, s, [&](const array& x, const array& y) {
    array d = abs(subtract(x, y, s), s);
    if (beta == 0.0f) return d;
    array b = scalar_like(beta, d);
    array quad = divide(multiply(square(d, s), scalar_like(0.5, d), s), b, s);
    return where(less(d, b, s), quad, subtract(d, scalar_like(0.5 * beta, d), s), s);
  });
}

array huber_loss(const array& input, const array& target, float delta, const std::string& reduction,
                 StreamOrDevice s) {
  if (!(delta > 0.0f)) fail<ValueError>("[huber_loss] delta must be positive, got ", delta);
  return elementwise_loss("huber_loss", input, target, reduction, s, [&](const array& x, const array& y) {
    array d = abs(subtract(x, y, s), s);
    array quad = multiply(square(d, s), scalar_like(0.5, d), s);
    array lin = multiply(subtract(d, scalar_like(0.5 * delta, d), s), scalar_like(delta, d), s);
    return where(less(d, scalar_like(delta, d), s), quad, lin, s);
  });
}

array binary_cross_entropy(const array& probs, const array& targets, const std::optional<array>& weight,
                           const std::string& reduction, StreamOrDevice s) {
  const char* op = "binary_cross_entropy";
  Dtype ct = compute_dtype(promote_types(probs.dtype(), targets.dtype()));
  std::optional<array> w = weight_for(op, "weight", weight, probs.shape(), ct, s);
  return elementwise_loss(op, probs, targets, reduction, s, [&](const array& p, const array& t) {
    const array floor = scalar_like(-100.0, p), one = scalar_like(1.0, p);
    array log_p = maximum(log(p, s), floor, s);
    array log_q = maximum(log1p(negative(p, s), s), floor, s);
    array loss = negative(add(multiply(t, log_p, s), multiply(subtract(one, t, s), log_q, s), s), s);
    return w ? multiply(loss, *w, s) : loss;
  });
}

array binary_cross_entropy_with_logits(const array& logits, const array& targets, const std::optional<array>& weight,
                                       const std::optional<array>& pos_weight, const std::string& reduction,
                                       StreamOrDevice s) {
  const char* op = "binary_cross_entropy_with_logits";
  Dtype ct = compute_dtype(promote_types(logits.dtype(), targets.dtype()));
  std::optional<array> w = weight_for(op, "weight", weight, logits.shape(), ct, s);
  std::optional<array> pw = weight_for(op, "pos_weight", pos_weight, logits.shape(), ct, s);
  return elementwise_loss(op, logits, targets, reduction, s, [&](const array& x, const array& t) {
    const array one = scalar_like(1.0, x), zero = scalar_like(0.0, x);
    // softplus(-x) = log(1 + exp(-|x|)) + max(-x, 0): exp never overflows.
    array sp = add(log1p(exp(negative(abs(x, s), s), s), s), maximum(negative(x, s), zero, s), s);
    array coef = pw ? add(one, multiply(subtract(*pw, one, s), t, s), s) : one;
    array loss = add(multiply(subtract(one, t, s), x, s), multiply(coef, sp, s), s);
    return w ? multiply(loss, *w, s) : loss;
  });
}

array kl_div(const array& input, const array& target, const std::string& reduction, bool log_target,
             StreamOrDevice s) {
  const char* op = "kl_div";
  Reduction r = parse_reduction(op, reduction, true);
  if (r == Reduction::batchmean && input.ndim() == 0) {
    fail<ValueError>("[kl_div] 'batchmean' needs a batch axis, got shape ()");
  }
  auto pointwise = [&](const array& x, const array& t) {
    if (log_target) return multiply(exp(t, s), subtract(t, x, s), s);
    const array zero = scalar_like(0.0, t);
    // t log t is 0 at t = 0 (its limit); a negative t gives NaN.
    array tlogt = where(equal(t, zero, s), zero, multiply(t, log(t, s), s), s);
    return subtract(tlogt, multiply(t, x, s), s);
  };
  if (r != Reduction::batchmean) return elementwise_loss(op, input, target, reduction, s, pointwise);
  array total = elementwise_loss(op, input, target, "sum", s, pointwise);
  return divide(total, scalar_like(static_cast<double>(input.shape(0)), total), s);
}

}  // namespace kiln::nn
