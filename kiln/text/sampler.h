// Choosing the next token from the model's logits. Each step of the usual recipe is a logits
// processor (a function from logits to logits, on the logits' device) so they compose, and
// applications can add their own; the sampler applies them in order, then picks greedily
// (temperature 0) or draws from the softmax with a seeded key, reproducibly.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "kiln/array.h"

namespace kiln::text {

// logits (B, vocab) float32 and the tokens so far -> new logits. -inf removes a token.
using LogitsProcessor = std::function<array(const array& logits, const std::vector<int32_t>& history)>;

// Keeps the k largest logits (k <= 0 or >= vocab: all).
LogitsProcessor top_k(int k);
// Keeps the smallest set of most likely tokens whose probabilities reach p (0 < p <= 1).
LogitsProcessor top_p(float p);
// Keeps tokens whose probability is at least min_p times the most likely one's (0 <= min_p < 1).
LogitsProcessor min_p(float min_p);
// Divides the logits by temperature (> 0).
LogitsProcessor temperature(float t);
// CTRL's repetition penalty over the last `window` tokens of the history (all when window <= 0):
// a positive logit of a seen token is divided by penalty, a negative one multiplied.
LogitsProcessor repetition_penalty(float penalty, int window = 64);

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  int repetition_window = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Builds the processors in the usual order: repetition penalty, temperature, top-k, top-p,
  // min-p (each only when it changes something). Throws ValueError for values out of range.
  explicit Sampler(const SamplerOptions& options = {});

  // Appends a processor after the built-in ones.
  void add(LogitsProcessor p) { processors_.push_back(std::move(p)); }

  // logits (B, vocab) or (B, 1, vocab) -> token ids (B,) int32, lazily on the logits' device.
  array operator()(const array& logits, const std::vector<int32_t>& history = {});

  bool greedy() const { return greedy_; }
  // Whether the result depends on the history (so pipelined decoding must wait for it).
  bool uses_history() const { return uses_history_; }

 private:
  std::vector<LogitsProcessor> processors_;
  bool greedy_ = true;
  bool uses_history_ = false;
  array key_;
};

}  // namespace kiln::text
