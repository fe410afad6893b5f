#include "kiln/text/sampler.h"

#include <cmath>
#include <limits>

#include "kiln/errors.h"
#include "kiln/ops.h"
#include "kiln/random.h"

namespace kiln::text {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

array neg_inf_like(const array& logits) { return full({}, kNegInf, logits.dtype(), logits.stream()); }

}  // namespace

LogitsProcessor top_k(int k) {
  return [k](const array& logits, const std::vector<int32_t>&) {
    int64_t vocab = logits.shape().back();
    if (k <= 0 || k >= vocab) return logits;
    // The k-th largest value per row; everything below it goes.
    array kth = min(topk(logits, k, -1), -1, /*keepdims=*/true);
    return where(less(logits, kth), neg_inf_like(logits), logits);
  };
}

LogitsProcessor top_p(float p) {
  if (!(p > 0.0f && p <= 1.0f)) fail<ValueError>("[sampler] top_p must be in (0, 1], got ", p);
  return [p](const array& logits, const std::vector<int32_t>&) {
    if (p >= 1.0f) return logits;
    array sorted = negative(sort(negative(logits), -1));  // descending
    array probs = softmax(sorted, -1);
    // A token stays when the mass of the tokens before it is still below p (so the first
    // always stays); the cutoff is the smallest logit that stays.
    array before = cumsum(probs, -1, /*reverse=*/false, /*inclusive=*/false);
    array keep = less(before, array(p));
    array pos_inf = full({}, std::numeric_limits<float>::infinity(), logits.dtype(), logits.stream());
    array cutoff = min(where(keep, sorted, pos_inf), -1, true);
    return where(less(logits, cutoff), neg_inf_like(logits), logits);
  };
}

LogitsProcessor min_p(float mp) {
  if (!(mp >= 0.0f && mp < 1.0f)) fail<ValueError>("[sampler] min_p must be in [0, 1), got ", mp);
  return [mp](const array& logits, const std::vector<int32_t>&) {
    if (mp <= 0.0f) return logits;
    // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p).
    array cutoff = add(max(logits, -1, true), array(std::log(mp)));
    return where(less(logits, cutoff), neg_inf_like(logits), logits);
  };
}

LogitsProcessor temperature(float t) {
  if (!(t > 0.0f) || !std::isfinite(t)) fail<ValueError>("[sampler] temperature must be positive, got ", t);
  return [t](const array& logits, const std::vector<int32_t>&) { return divide(logits, array(t)); };
}

LogitsProcessor repetition_penalty(float penalty, int window) {
  if (!(penalty > 0.0f) || !std::isfinite(penalty)) {
    fail<ValueError>("[sampler] repetition_penalty must be positive, got ", penalty);
  }
  return [penalty, window](const array& logits, const std::vector<int32_t>& history) {
    if (penalty == 1.0f || history.empty()) return logits;
    size_t n = window > 0 ? std::min(history.size(), static_cast<size_t>(window)) : history.size();
    std::vector<int32_t> recent(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    int64_t B = logits.shape(0);
    array idx = broadcast_to(array(recent, Shape{1, static_cast<int64_t>(n)}), {B, static_cast<int64_t>(n)});
    array seen = take_along_axis(logits, idx, -1);
    array penalised = where(greater(seen, array(0.0f)), divide(seen, array(penalty)), multiply(seen, array(penalty)));
    // A token repeated in the window is penalised once: every copy writes the same value.
    return put_along_axis(logits, idx, penalised, -1);
  };
}

Sampler::Sampler(const SamplerOptions& o) : key_(random::key(o.seed)) {
  if (o.temperature < 0.0f || !std::isfinite(o.temperature)) {
    fail<ValueError>("[sampler] temperature must be non-negative, got ", o.temperature);
  }
  if (o.top_k < 0) fail<ValueError>("[sampler] top_k must be non-negative, got ", o.top_k);
  if (o.repetition_penalty != 1.0f) {
    processors_.push_back(repetition_penalty(o.repetition_penalty, o.repetition_window));
    uses_history_ = true;
  }
  greedy_ = o.temperature == 0.0f;
  if (!greedy_) {
    if (o.temperature != 1.0f) processors_.push_back(temperature(o.temperature));
    if (o.top_k > 0) processors_.push_back(top_k(o.top_k));
    if (o.top_p < 1.0f) processors_.push_back(top_p(o.top_p));
    if (o.min_p > 0.0f) processors_.push_back(min_p(o.min_p));
  } else {
    (void)top_p(o.top_p);  // still validated
    (void)min_p(o.min_p);
  }
}

array Sampler::operator()(const array& logits_in, const std::vector<int32_t>& history) {
  array logits = logits_in;
  if (logits.ndim() == 3) logits = reshape(logits, {logits.shape(0), logits.shape(2)});
  if (logits.ndim() != 2) fail<ValueError>("[sampler] logits must be (B, vocab) or (B, 1, vocab), got ", logits.shape());
  logits = astype(logits, float32);
  for (auto& p : processors_) logits = p(logits, history);
  if (greedy_) return astype(argmax(logits, -1), int32);
  auto keys = random::split(key_);
  key_ = take(keys, array(0), 0);
  return astype(random::categorical(logits, -1, std::nullopt, take(keys, array(1), 0)), int32);
}

}  // namespace kiln::text
