// Text generation with a Llama-family model: the model, its tokenizer and chat template loaded
// together, and the decoding loop that streams text as it is produced.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/models/llama.h"
#include "kiln/text/sampler.h"
#include "kiln/text/tokenizer.h"

namespace kiln::text {

struct LanguageModel {
  std::unique_ptr<models::LlamaForCausalLM> model;
  std::shared_ptr<Tokenizer> tokenizer;
  std::string chat_template;  // the model's Jinja template; empty when it has none
  std::string bos_token, eos_token;  // as text, for templates
  std::vector<int32_t> stop_ids;     // end-of-sequence ids (EOS, end-of-turn)
  double load_seconds = 0;
};

// Loads a GGUF file or a Hugging Face directory (config.json, safetensors, tokenizer.json,
// tokenizer_config.json). dtype as models::load_llama.
LanguageModel load_language_model(const std::string& path, std::optional<Dtype> dtype = std::nullopt);

struct GenerationOptions {
  int max_tokens = 256;
  SamplerOptions sampling;
  std::vector<std::string> stop;  // stop strings: the text ends before the first of them
  bool stop_at_eos = true;
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prompt_seconds = 0;      // prefill, up to the first token (time to first token)
  double generation_seconds = 0;  // after the first token
  size_t peak_memory = 0;         // bytes of kiln arrays (host and GPU), weights included, at the most
  std::string finish_reason;      // "stop" (EOS or a stop string), "length" or "callback"
  double prompt_tps() const { return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0; }
  // Tokens after the first over the time after the first.
  double generation_tps() const {
    return generation_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / generation_seconds : 0;
  }
};

// Continues `prompt` (token ids) with up to max_tokens tokens, calling on_text with each piece
// of valid UTF-8 as it is decoded (return false to stop). The cache continues a previous
// conversation when given: the prompt must then be only the new tokens. Tokens generated are
// appended to `tokens_out` when given.
GenerationStats generate(const LanguageModel& lm, const std::vector<int32_t>& prompt, const GenerationOptions& options,
                         const std::function<bool(const std::string&)>& on_text,
                         models::KVCache* cache = nullptr, std::vector<int32_t>* tokens_out = nullptr);

}  // namespace kiln::text
