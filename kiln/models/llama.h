// The Llama family as one model configured by its checkpoint: Llama 2, Llama 3, 3.1 (rope
// scaling), 3.2 (tied embeddings), SmolLM/SmolLM2, Mistral and Qwen2 (q/k/v bias). Parameter names
// are Hugging Face's ("model.layers.0.self_attn.q_proj.weight"), so a safetensors checkpoint
// loads name for name; GGUF files are renamed (and their q/k rows un-permuted) on load.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "kiln/io/gguf.h"
#include "kiln/models/kv_cache.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/module.h"

namespace kiln::models {

struct LlamaConfig {
  std::string model_type = "llama";  // "llama", "mistral" or "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;  // hidden_size / num_attention_heads unless the config says otherwise
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  // Llama 3.1 frequency scaling (rope_type "llama3"); absent for plain rope.
  struct RopeScaling {
    float factor = 8.0f;
    float low_freq_factor = 1.0f;
    float high_freq_factor = 4.0f;
    int original_max_position_embeddings = 8192;
  };
  std::optional<RopeScaling> rope_scaling;
  // Per-frequency divisors of the rope frequencies, as GGUF files of Llama 3.1 store them
  // (tensor rope_freqs.weight); an alternative to rope_scaling.
  std::vector<float> rope_freq_factors;
  int64_t max_position_embeddings = 4096;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // bias on q/k/v projections (Qwen2; Llama's attention_bias)
  bool o_bias = false;    // bias on the output projection (Llama's attention_bias)
  bool mlp_bias = false;
  // Mistral's sliding window (0: none). Attention spans at most this many positions.
  int64_t sliding_window = 0;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  // A Hugging Face config.json (a path to the file or to its directory). Throws ValueError for
  // an unknown architecture, a missing field or inconsistent sizes, naming it.
  static LlamaConfig from_hf_json(const std::string& path);
  // The same from JSON text (`where` names the source in errors).
  static LlamaConfig from_hf_json_text(const std::string& text, const std::string& where);
  // The "<arch>.*" metadata of a GGUF file (arch "llama" or "qwen2").
  static LlamaConfig from_gguf(const io::GGUFFile& gguf);
  // Throws ValueError naming the first inconsistent field.
  void validate() const;
};

// A decoding step whose position lives in arrays (LlamaForCausalLM::decode_step): the int32
// position of the token and the boolean mask (1, 1, 1, capacity) of the cache positions it sees.
struct StepAt {
  array position;
  array mask;
};

class Attention : public nn::Module {
 public:
  explicit Attention(const LlamaConfig& c, Dtype dtype);
  // x (B, L, hidden) -> (B, L, hidden); appends this step's keys and values to `cache`
  // (layer `layer`) and attends causally over everything cached. With `at` (one token), the
  // keys and values are written at at->position and attention covers the cache's whole
  // capacity under at->mask.
  array operator()(const array& x, KVCache* cache, int layer, const StepAt* at = nullptr) const;
  // The same plus `residual`, added inside the output projection's product.
  array operator()(const array& x, const array& residual, KVCache* cache, int layer,
                   const StepAt* at = nullptr) const;
  // Stores q/k/v as row slices of one (q + 2 kv, hidden) matrix, so that one matrix product
  // computes all three. The parameters keep their names and shapes (they become views).
  void fuse_projections();

 private:
  int n_heads_, n_kv_heads_, head_dim_;
  std::optional<array> qkv_t_, qkv_bias_;  // the fused weight, transposed, and bias
  float scale_;
  int64_t sliding_window_;
  float rope_theta_;
  std::optional<array> rope_freqs_;  // 1 / inv_freq when the frequencies are scaled
  array attend(const array& x, const std::optional<array>& residual, KVCache* cache, int layer,
               const StepAt* at) const;
  std::shared_ptr<nn::Linear> q_proj_, k_proj_, v_proj_, o_proj_;
};

class MLP : public nn::Module {
 public:
  MLP(int64_t hidden, int64_t intermediate, Dtype dtype);
  array operator()(const array& x) const;  // down(silu(gate(x)) * up(x))
  // residual + down(...), the sum inside the down projection's product.
  array operator()(const array& x, const array& residual) const;
  array forward(const array& x) const override { return (*this)(x); }
  void fuse_projections();                 // gate and up as one matrix, as Attention's

 private:
  array compute(const array& x, const std::optional<array>& residual) const;
  std::shared_ptr<nn::Linear> gate_proj_, up_proj_, down_proj_;
  std::optional<array> gate_up_t_;
};

class DecoderLayer : public nn::Module {
 public:
  DecoderLayer(const LlamaConfig& c, Dtype dtype);
  array operator()(const array& x, KVCache* cache, int layer, const StepAt* at = nullptr) const;
  void fuse_projections();

 private:
  std::shared_ptr<Attention> self_attn_;
  std::shared_ptr<MLP> mlp_;
  std::shared_ptr<nn::RMSNorm> input_layernorm_, post_attention_layernorm_;
};

// The decoder stack without the head ("model.*").
class LlamaModel : public nn::Module {
 public:
  LlamaModel(const LlamaConfig& c, Dtype dtype);
  // (B, L) -> (B, L, hidden), before the final norm
  array operator()(const array& ids, KVCache* cache, const StepAt* at = nullptr) const;
  const nn::Embedding& embed_tokens() const { return *embed_tokens_; }
  const nn::RMSNorm& norm() const { return *norm_; }
  void fuse_projections();

 private:
  std::shared_ptr<nn::Embedding> embed_tokens_;
  std::vector<std::shared_ptr<DecoderLayer>> layers_;
  std::shared_ptr<nn::RMSNorm> norm_;
};

class LlamaForCausalLM : public nn::Module {
 public:
  // Parameters are initialised randomly (as PyTorch would); load_weights replaces them.
  LlamaForCausalLM(const LlamaConfig& config, Dtype dtype = float32);

  // ids (B, L) integers -> logits (B, L, vocab), or (B, 1, vocab) for the last position only
  // when last_only. With a cache, the ids continue what it holds (positions cache->offset()
  // onwards) and are appended to it; without one, they are a whole sequence from position 0.
  array operator()(const array& ids, KVCache* cache = nullptr, bool last_only = false) const;

  // A cache sized for this model (grown as needed; reserve to avoid growing).
  KVCache make_cache() const;

  // One decoding step, ids (1, 1) -> logits (1, 1, vocab), for a token at `position` (int32
  // scalar array) given `mask` (1, 1, 1, cache.capacity()) bool, true at the cache positions it
  // sees (0 .. position, and the sliding window's bound). The cache's buffers must already hold
  // position + 1; its offset() is not moved. No shape depends on the position: the step replays
  // as one CUDA graph (kiln/capture.h), which text::generate does on the GPU.
  array decode_step(const array& ids, const array& position, const array& mask, KVCache& cache) const;
  // The mask decode_step wants for `position` (made on the host; sliding window included).
  array decode_mask(int64_t position, int64_t capacity) const;

  // Fuses q/k/v and gate/up into single matrix products (fewer, larger kernels for decoding).
  // Parameters keep their names and shapes; updating one later undoes the fusion for its layer.
  // load_llama calls it.
  void fuse_projections();

  const LlamaConfig& config() const { return config_; }
  Dtype dtype() const { return dtype_; }

 private:
  LlamaConfig config_;
  Dtype dtype_;
  std::shared_ptr<LlamaModel> model_;
  std::shared_ptr<nn::Linear> lm_head_;  // absent when tied to the embedding
};

// GGUF tensor names mapped to Hugging Face's, with the q/k rows of "llama"-arch files
// un-permuted (llama.cpp's converter interleaves them for its rope layout). Unknown tensor names
// are kept as they are, so a strict load names them.
std::map<std::string, array> gguf_to_hf_weights(const io::GGUFFile& gguf, const LlamaConfig& config,
                                                std::optional<Dtype> dtype = std::nullopt);

// A model loaded from a GGUF file, a Hugging Face directory (config.json + model.safetensors or
// model.safetensors.index.json), or a path to one of those files. Weights are cast to `dtype`
// (by default bfloat16 where fast_16bit_weights(default_device()), float32 elsewhere). Throws
// FileError when nothing loadable is there and ValueError naming every missing or unexpected
// tensor.
std::unique_ptr<LlamaForCausalLM> load_llama(const std::string& path, std::optional<Dtype> dtype = std::nullopt);

}  // namespace kiln::models
