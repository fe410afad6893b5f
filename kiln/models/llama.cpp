#include "kiln/models/llama.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/errors.h"
#include "kiln/fast.h"
#include "kiln/fast_attention.h"
#include "kiln/io/mapped_file.h"
#include "kiln/io/safetensors.h"
#include "kiln/ops.h"

namespace kiln::models {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- configuration ----

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<io::FileError>("[llama] cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& field(const json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) fail<ValueError>("[llama] ", where, ": missing \"", name, "\"");
  return *it;
}

int64_t get_int(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  if (!v.is_number_integer()) fail<ValueError>("[llama] ", where, ": \"", name, "\" must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

int64_t get_int(const json& j, const char* name, const std::string& where, int64_t fallback) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? fallback : get_int(j, name, where);
}

double get_number(const json& j, const char* name, const std::string& where, double fallback) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail<ValueError>("[llama] ", where, ": \"", name, "\" must be a number, got ", it->dump());
  return it->get<double>();
}

bool get_bool(const json& j, const char* name, const std::string& where, bool fallback) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail<ValueError>("[llama] ", where, ": \"", name, "\" must be true or false, got ", it->dump());
  return it->get<bool>();
}

}  // namespace

void LlamaConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v <= 0) fail<ValueError>("[llama] config: ", name, " must be positive, got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  if (num_attention_heads % num_key_value_heads != 0) {
    fail<ValueError>("[llama] config: num_attention_heads (", num_attention_heads,
                     ") must be a multiple of num_key_value_heads (", num_key_value_heads, ")");
  }
  if (head_dim % 2 != 0) fail<ValueError>("[llama] config: head_dim must be even for rope, got ", head_dim);
  if (!(rms_norm_eps > 0)) fail<ValueError>("[llama] config: rms_norm_eps must be positive, got ", rms_norm_eps);
  if (!(rope_theta > 0)) fail<ValueError>("[llama] config: rope_theta must be positive, got ", rope_theta);
  if (!rope_freq_factors.empty() && static_cast<int>(rope_freq_factors.size()) != head_dim / 2) {
    fail<ValueError>("[llama] config: rope frequency factors must number head_dim / 2 = ", head_dim / 2, ", got ",
                     rope_freq_factors.size());
  }
  if (sliding_window < 0) fail<ValueError>("[llama] config: sliding_window must be non-negative");
}

LlamaConfig LlamaConfig::from_hf_json(const std::string& path) {
  std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  if (!fs::is_regular_file(file)) fail<io::FileError>("[llama] no config.json at '", path, "'");
  return from_hf_json_text(read_text(file), file);
}

LlamaConfig LlamaConfig::from_hf_json_text(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail<ValueError>("[llama] ", where, ": not a JSON object");
  LlamaConfig c;
  std::string type = j.value("model_type", std::string());
  if (type.empty() && j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
    std::string arch = j["architectures"][0].get<std::string>();
    if (arch == "LlamaForCausalLM") type = "llama";
    if (arch == "MistralForCausalLM") type = "mistral";
    if (arch == "Qwen2ForCausalLM") type = "qwen2";
  }
  if (type != "llama" && type != "mistral" && type != "qwen2") {
    fail<ValueError>("[llama] ", where, ": unsupported model_type '", type,
                     "' (supported: llama, mistral, qwen2)");
  }
  c.model_type = type;
  c.vocab_size = get_int(j, "vocab_size", where);
  c.hidden_size = get_int(j, "hidden_size", where);
  c.intermediate_size = get_int(j, "intermediate_size", where);
  c.num_hidden_layers = static_cast<int>(get_int(j, "num_hidden_layers", where));
  c.num_attention_heads = static_cast<int>(get_int(j, "num_attention_heads", where));
  c.num_key_value_heads = static_cast<int>(get_int(j, "num_key_value_heads", where, c.num_attention_heads));
  c.head_dim = static_cast<int>(
      get_int(j, "head_dim", where, c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0));
  c.rms_norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", where, 1e-6));
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, 4096);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  if (type == "qwen2") {
    c.qkv_bias = true;
  } else {
    c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", where, false);
    c.mlp_bias = get_bool(j, "mlp_bias", where, false);
  }
  if (type == "mistral" || (type == "qwen2" && get_bool(j, "use_sliding_window", where, false))) {
    c.sliding_window = get_int(j, "sliding_window", where, 0);
  }
  // Rope: "rope_parameters" (transformers 5) holds theta and the scaling together; older
  // configs have "rope_theta" and "rope_scaling".
  const json* rope = nullptr;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    rope = &j["rope_parameters"];
    c.rope_theta = static_cast<float>(get_number(*rope, "rope_theta", where, 10000.0));
  } else {
    c.rope_theta = static_cast<float>(get_number(j, "rope_theta", where, 10000.0));
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) rope = &j["rope_scaling"];
  }
  if (rope) {
    const json& rs = *rope;
    if (!rs.is_object()) fail<ValueError>("[llama] ", where, ": rope parameters must be an object, got ", rs.dump());
    std::string rt = rs.value("rope_type", rs.value("type", std::string("default")));
    if (rt == "llama3") {
      RopeScaling r;
      r.factor = static_cast<float>(get_number(rs, "factor", where, r.factor));
      r.low_freq_factor = static_cast<float>(get_number(rs, "low_freq_factor", where, r.low_freq_factor));
      r.high_freq_factor = static_cast<float>(get_number(rs, "high_freq_factor", where, r.high_freq_factor));
      r.original_max_position_embeddings = static_cast<int>(
          get_int(rs, "original_max_position_embeddings", where, r.original_max_position_embeddings));
      c.rope_scaling = r;
    } else if (rt != "default") {
      fail<ValueError>("[llama] ", where, ": unsupported rope type '", rt, "' (supported: default, llama3)");
    }
  }
  c.bos_token_id = get_int(j, "bos_token_id", where, -1);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_array()) {
      for (const auto& x : e) c.eos_token_ids.push_back(x.get<int64_t>());
    } else {
      c.eos_token_ids.push_back(get_int(j, "eos_token_id", where));
    }
  }
  c.validate();
  return c;
}

LlamaConfig LlamaConfig::from_gguf(const io::GGUFFile& g) {
  std::string arch = g.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2") {
    fail<ValueError>("[llama] '", g.path(), "': unsupported GGUF architecture '", arch, "' (supported: llama, qwen2)");
  }
  auto key = [&](const char* k) { return arch + "." + k; };
  LlamaConfig c;
  c.model_type = arch;
  c.hidden_size = g.get_int(key("embedding_length"));
  c.intermediate_size = g.get_int(key("feed_forward_length"));
  c.num_hidden_layers = static_cast<int>(g.get_int(key("block_count")));
  c.num_attention_heads = static_cast<int>(g.get_int(key("attention.head_count")));
  c.num_key_value_heads = static_cast<int>(g.get_int(key("attention.head_count_kv"), c.num_attention_heads));
  c.head_dim = static_cast<int>(
      g.get_int(key("attention.key_length"), c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0));
  c.rms_norm_eps = static_cast<float>(g.get_float(key("attention.layer_norm_rms_epsilon"), 1e-5));
  c.rope_theta = static_cast<float>(g.get_float(key("rope.freq_base"), 10000.0));
  c.max_position_embeddings = g.get_int(key("context_length"), 4096);
  if (g.has_key(key("vocab_size"))) {
    c.vocab_size = g.get_int(key("vocab_size"));
  } else if (g.has_tensor("token_embd.weight")) {
    c.vocab_size = g.tensor("token_embd.weight").shape()[0];
  }
  c.tie_word_embeddings = !g.has_tensor("output.weight");
  c.qkv_bias = g.has_tensor("blk.0.attn_q.bias");
  c.o_bias = g.has_tensor("blk.0.attn_output.bias");
  c.bos_token_id = g.get_int("tokenizer.ggml.bos_token_id", -1);
  if (g.has_key("tokenizer.ggml.eos_token_id")) c.eos_token_ids.push_back(g.get_int("tokenizer.ggml.eos_token_id"));
  if (g.has_tensor("rope_freqs.weight")) {
    c.rope_freq_factors = g.load_tensor("rope_freqs.weight", float32).to_vector<float>();
  }
  c.validate();
  return c;
}

// ---- layers ----

namespace {

std::optional<array> rope_freqs_for(const LlamaConfig& c) {
  int d = c.head_dim;
  if (c.rope_scaling) {
    const auto& r = *c.rope_scaling;
    return fast::llama3_rope_freqs(d, c.rope_theta, r.factor, r.low_freq_factor, r.high_freq_factor,
                                   r.original_max_position_embeddings);
  }
  if (!c.rope_freq_factors.empty()) {
    // freqs = 1 / (inv_freq / factor) with inv_freq_i = base^(-2i / d).
    std::vector<float> f(d / 2);
    for (int i = 0; i < d / 2; ++i) {
      f[i] = static_cast<float>(c.rope_freq_factors[i] * std::pow(static_cast<double>(c.rope_theta), 2.0 * i / d));
    }
    return array(f, Shape{d / 2});
  }
  return std::nullopt;
}

}  // namespace

Attention::Attention(const LlamaConfig& c, Dtype dtype)
    : n_heads_(c.num_attention_heads),
      n_kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      scale_(1.0f / std::sqrt(static_cast<float>(c.head_dim))),
      sliding_window_(c.sliding_window),
      rope_theta_(c.rope_theta),
      rope_freqs_(rope_freqs_for(c)) {
  int64_t q_out = int64_t{n_heads_} * head_dim_, kv_out = int64_t{n_kv_heads_} * head_dim_;
  q_proj_ = register_module("q_proj", std::make_shared<nn::Linear>(c.hidden_size, q_out, c.qkv_bias, dtype));
  k_proj_ = register_module("k_proj", std::make_shared<nn::Linear>(c.hidden_size, kv_out, c.qkv_bias, dtype));
  v_proj_ = register_module("v_proj", std::make_shared<nn::Linear>(c.hidden_size, kv_out, c.qkv_bias, dtype));
  o_proj_ = register_module("o_proj", std::make_shared<nn::Linear>(q_out, c.hidden_size, c.o_bias, dtype));
}

namespace {

// Concatenates the weights (and biases) of `parts` along the output axis into one evaluated
// matrix and makes each part's parameters views of it. Returns the fused weight, transposed.
array fuse_linears(const std::vector<std::shared_ptr<nn::Linear>>& parts, std::optional<array>* bias) {
  std::vector<array> ws, bs;
  for (const auto& l : parts) {
    ws.push_back(l->weight());
    if (l->has_bias()) bs.push_back(l->parameter("bias"));
  }
  array w = concatenate(ws, 0);
  w.eval();
  std::optional<array> b;
  if (!bs.empty()) {
    b = concatenate(bs, 0);
    b->eval();
  }
  int64_t row = 0;
  for (const auto& l : parts) {
    int64_t n = l->out_features();
    array wv = slice(w, {row, 0}, {row + n, w.shape(1)});
    std::map<std::string, array> upd{{"weight", wv}};
    if (b) upd.emplace("bias", slice(*b, {row}, {row + n}));
    for (auto& [name, a] : upd) a.eval();
    l->update(upd);
    row += n;
  }
  if (bias) *bias = b;
  array wt = transpose(w);
  wt.eval();
  return wt;
}

// Whether the fused weight (and bias) is still what every part holds: an update() replaces a
// part's views with arrays of its own.
bool still_fused(const std::optional<array>& fused_t, const std::optional<array>& bias,
                 const std::vector<const nn::Linear*>& parts) {
  if (!fused_t) return false;
  for (const nn::Linear* l : parts) {
    const array& w = l->weight();
    if (!w.is_available() || w.buffer() != fused_t->buffer()) return false;
    if (bias) {
      const array& b = l->parameter("bias");
      if (!b.is_available() || b.buffer() != bias->buffer()) return false;
    }
  }
  return true;
}

}  // namespace

void Attention::fuse_projections() {
  if (q_proj_->has_bias() != k_proj_->has_bias() || q_proj_->has_bias() != v_proj_->has_bias()) return;
  qkv_t_ = fuse_linears({q_proj_, k_proj_, v_proj_}, &qkv_bias_);
}

array Attention::operator()(const array& x, KVCache* cache, int layer, const StepAt* at) const {
  return attend(x, std::nullopt, cache, layer, at);
}

array Attention::operator()(const array& x, const array& residual, KVCache* cache, int layer,
                            const StepAt* at) const {
  return attend(x, residual, cache, layer, at);
}

array Attention::attend(const array& x, const std::optional<array>& residual, KVCache* cache, int layer,
                        const StepAt* at) const {
  auto out_proj = [&](const array& o) { return residual ? (*o_proj_)(o, *residual) : (*o_proj_)(o); };
  int64_t B = x.shape(0), L = x.shape(1);
  // (B, L, H * D) -> (B, H, L, D) as views; rope writes them contiguous.
  auto heads = [&](const array& y, int h) { return transpose(reshape(y, {B, L, h, head_dim_}), {0, 2, 1, 3}); };
  int64_t nq = int64_t{n_heads_} * head_dim_, nkv = int64_t{n_kv_heads_} * head_dim_;
  std::optional<array> q_, k_, v_;
  if (still_fused(qkv_t_, qkv_bias_, {q_proj_.get(), k_proj_.get(), v_proj_.get()})) {
    array y = matmul(x, *qkv_t_);
    if (qkv_bias_) y = add(y, *qkv_bias_);
    q_ = slice(y, {0, 0, 0}, {B, L, nq});
    k_ = slice(y, {0, 0, nq}, {B, L, nq + nkv});
    v_ = slice(y, {0, 0, nq + nkv}, {B, L, nq + 2 * nkv});
  } else {
    q_ = (*q_proj_)(x);
    k_ = (*k_proj_)(x);
    v_ = (*v_proj_)(x);
  }
  array q = heads(*q_, n_heads_);
  array k = heads(*k_, n_kv_heads_);
  array v = heads(*v_, n_kv_heads_);
  std::optional<float> base = rope_freqs_ ? std::nullopt : std::optional<float>(rope_theta_);
  if (at) {
    if (!cache || L != 1) fail<ValueError>("[llama] a step at an array position takes one token and a cache");
    q = fast::rope(q, head_dim_, false, base, 1.0f, at->position, rope_freqs_);
    k = fast::rope(k, head_dim_, false, base, 1.0f, at->position, rope_freqs_);
    std::tie(k, v) = cache->write_at(layer, k, v, at->position);
    array o = fast::scaled_dot_product_attention(q, k, v, scale_, at->mask);
    return out_proj(reshape(transpose(o, {0, 2, 1, 3}), {B, L, int64_t{n_heads_} * head_dim_}));
  }
  int offset = cache ? static_cast<int>(cache->offset()) : 0;
  q = fast::rope(q, head_dim_, false, base, 1.0f, offset, rope_freqs_);
  k = fast::rope(k, head_dim_, false, base, 1.0f, offset, rope_freqs_);
  if (cache) std::tie(k, v) = cache->update(layer, k, v);
  int64_t Lk = k.shape(2);
  array o = [&] {
    if (sliding_window_ > 0 && Lk > sliding_window_) {
      // Query i (absolute position Lk - L + i) sees keys j with pos - window < j <= pos.
      array pos = reshape(arange(static_cast<double>(Lk - L), static_cast<double>(Lk), 1.0, int32), {L, 1});
      array j = reshape(arange(static_cast<double>(Lk), int32), {1, Lk});
      array mask = logical_and(less_equal(j, pos), greater(j, subtract(pos, array(static_cast<int>(sliding_window_)))));
      return fast::scaled_dot_product_attention(q, k, v, scale_, mask);
    }
    return fast::scaled_dot_product_attention(q, k, v, scale_, std::nullopt, /*causal=*/L > 1);
  }();
  o = reshape(transpose(o, {0, 2, 1, 3}), {B, L, int64_t{n_heads_} * head_dim_});
  return out_proj(o);
}

MLP::MLP(int64_t hidden, int64_t intermediate, Dtype dtype) {
  gate_proj_ = register_module("gate_proj", std::make_shared<nn::Linear>(hidden, intermediate, false, dtype));
  up_proj_ = register_module("up_proj", std::make_shared<nn::Linear>(hidden, intermediate, false, dtype));
  down_proj_ = register_module("down_proj", std::make_shared<nn::Linear>(intermediate, hidden, false, dtype));
}

void MLP::fuse_projections() { gate_up_t_ = fuse_linears({gate_proj_, up_proj_}, nullptr); }

array MLP::operator()(const array& x) const { return compute(x, std::nullopt); }

array MLP::operator()(const array& x, const array& residual) const { return compute(x, residual); }

array MLP::compute(const array& x, const std::optional<array>& residual) const {
  auto down = [&](const array& h) { return residual ? (*down_proj_)(h, *residual) : (*down_proj_)(h); };
  if (still_fused(gate_up_t_, std::nullopt, {gate_proj_.get(), up_proj_.get()})) {
    // One (..., 2 * intermediate) product, gate then up: the fused op reads both halves in place.
    return down(fast::silu_mul(matmul(x, *gate_up_t_)));
  }
  return down(fast::silu_mul((*gate_proj_)(x), (*up_proj_)(x)));
}

DecoderLayer::DecoderLayer(const LlamaConfig& c, Dtype dtype) {
  self_attn_ = register_module("self_attn", std::make_shared<Attention>(c, dtype));
  mlp_ = register_module("mlp", std::make_shared<MLP>(c.hidden_size, c.intermediate_size, dtype));
  input_layernorm_ =
      register_module("input_layernorm", std::make_shared<nn::RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  post_attention_layernorm_ = register_module(
      "post_attention_layernorm", std::make_shared<nn::RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
}

void DecoderLayer::fuse_projections() {
  self_attn_->fuse_projections();
  mlp_->fuse_projections();
}

array DecoderLayer::operator()(const array& x, KVCache* cache, int layer, const StepAt* at) const {
  array h = (*self_attn_)((*input_layernorm_)(x), x, cache, layer, at);
  return (*mlp_)((*post_attention_layernorm_)(h), h);
}

LlamaModel::LlamaModel(const LlamaConfig& c, Dtype dtype) {
  embed_tokens_ = register_module("embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, dtype));
  std::vector<std::shared_ptr<DecoderLayer>> layers;
  for (int i = 0; i < c.num_hidden_layers; ++i) layers.push_back(std::make_shared<DecoderLayer>(c, dtype));
  layers_ = register_modules("layers", layers);
  norm_ = register_module("norm", std::make_shared<nn::RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
}

array LlamaModel::operator()(const array& ids, KVCache* cache, const StepAt* at) const {
  array h = (*embed_tokens_)(ids);
  for (size_t i = 0; i < layers_.size(); ++i) h = (*layers_[i])(h, cache, static_cast<int>(i), at);
  return h;  // normed by the caller, after picking the positions it needs
}

LlamaForCausalLM::LlamaForCausalLM(const LlamaConfig& config, Dtype dtype) : config_(config), dtype_(dtype) {
  config_.validate();
  model_ = register_module("model", std::make_shared<LlamaModel>(config_, dtype));
  if (!config_.tie_word_embeddings) {
    lm_head_ = register_module("lm_head",
                               std::make_shared<nn::Linear>(config_.hidden_size, config_.vocab_size, false, dtype));
  }
}

array LlamaForCausalLM::operator()(const array& ids, KVCache* cache, bool last_only) const {
  if (ids.ndim() != 2 || !is_integer(ids.dtype())) {
    fail<ValueError>("[llama] ids must be a (batch, length) integer array, got shape ", ids.shape(), " ", ids.dtype());
  }
  if (ids.shape(1) == 0) fail<ValueError>("[llama] ids must hold at least one token");
  if (cache && cache->num_layers() != config_.num_hidden_layers) {
    fail<ValueError>("[llama] the cache has ", cache->num_layers(), " layers, the model ", config_.num_hidden_layers);
  }
  array h = (*model_)(ids, cache);
  if (last_only) {
    int64_t L = h.shape(1);
    h = slice(h, {0, L - 1, 0}, {h.shape(0), L, h.shape(2)});
  }
  h = model_->norm()(h);
  return lm_head_ ? (*lm_head_)(h) : model_->embed_tokens().as_linear(h);
}

void LlamaModel::fuse_projections() {
  for (auto& l : layers_) l->fuse_projections();
}

void LlamaForCausalLM::fuse_projections() { model_->fuse_projections(); }

KVCache LlamaForCausalLM::make_cache() const { return KVCache(config_.num_hidden_layers); }

// ---- loading ----

namespace {

// "blk.N.<gguf>" -> "model.layers.N.<hf>".
const std::map<std::string, std::string>& gguf_block_names() {
  static const std::map<std::string, std::string> m{
      {"attn_norm", "input_layernorm"},   {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  return m;
}

// Undoes llama.cpp's q/k row permutation: per head, rows stored as (D/2, 2) pairs go back to
// Hugging Face's (2, D/2) halves.
array unpermute_rows(const array& w, int heads) {
  Shape shape = w.shape();
  int64_t rows = shape[0];
  int64_t rest = w.size() / rows;
  array r = reshape(w, {heads, rows / heads / 2, 2, rest});
  return reshape(contiguous(swapaxes(r, 1, 2)), shape);
}

}  // namespace

std::map<std::string, array> gguf_to_hf_weights(const io::GGUFFile& g, const LlamaConfig& c,
                                                std::optional<Dtype> dtype) {
  std::map<std::string, array> out;
  bool permuted = g.get_string("general.architecture") == "llama";
  for (const auto& t : g.tensors()) {
    const std::string& n = t.name;
    if (n == "rope_freqs.weight") continue;  // read into the config
    std::string name = n;
    if (n == "token_embd.weight") name = "model.embed_tokens.weight";
    else if (n == "output_norm.weight") name = "model.norm.weight";
    else if (n == "output.weight") name = "lm_head.weight";
    else if (n.rfind("blk.", 0) == 0) {
      size_t dot1 = n.find('.', 4);
      size_t dot2 = dot1 == std::string::npos ? dot1 : n.find('.', dot1 + 1);
      if (dot2 != std::string::npos) {
        std::string layer = n.substr(4, dot1 - 4), part = n.substr(dot1 + 1, dot2 - dot1 - 1);
        auto it = gguf_block_names().find(part);
        if (it != gguf_block_names().end()) name = "model.layers." + layer + "." + it->second + n.substr(dot2);
      }
    }
    array w = g.load_tensor(n, dtype);
    if (permuted && name.find("self_attn.q_proj") != std::string::npos) w = unpermute_rows(w, c.num_attention_heads);
    if (permuted && name.find("self_attn.k_proj") != std::string::npos) w = unpermute_rows(w, c.num_key_value_heads);
    out.emplace(name, w);
  }
  return out;
}

std::unique_ptr<LlamaForCausalLM> load_llama(const std::string& path, std::optional<Dtype> dtype) {
  if (!fs::exists(path)) fail<io::FileError>("[llama] no such file or directory: '", path, "'");
  // bfloat16 halves the bytes each decoded token reads, where 16-bit weights are read as fast.
  Dtype dt = dtype.value_or(fast_16bit_weights(default_device()) ? bfloat16 : float32);
  if (!is_floating(dt)) fail<TypeError>("[llama] weights must be floating, not ", dt);
  std::unique_ptr<LlamaForCausalLM> model;
  if (io::is_gguf_file(path)) {
    io::GGUFFile g = io::GGUFFile::open(path);
    LlamaConfig c = LlamaConfig::from_gguf(g);
    model = std::make_unique<LlamaForCausalLM>(c, dt);
    model->load_weights(gguf_to_hf_weights(g, c, dt));
  } else {
    fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    LlamaConfig c = LlamaConfig::from_hf_json((dir / "config.json").string());
    std::map<std::string, array> weights;
    if (fs::is_regular_file(path) && fs::path(path).extension() == ".safetensors") {
      weights = io::load_safetensors(path, dt);
    } else {
      weights = io::load_sharded(dir.string(), dt);
    }
    // Checkpoints of tied models sometimes carry the head anyway; it is the embedding.
    if (c.tie_word_embeddings) weights.erase("lm_head.weight");
    model = std::make_unique<LlamaForCausalLM>(c, dt);
    model->load_weights(weights);
  }
  model->eval();
  model->fuse_projections();
  return model;
}

array LlamaForCausalLM::decode_step(const array& ids, const array& position, const array& mask,
                                    KVCache& cache) const {
  if (ids.ndim() != 2 || ids.shape(0) != 1 || ids.shape(1) != 1 || !is_integer(ids.dtype())) {
    fail<ValueError>("[llama] decode_step takes ids of shape (1, 1), got ", ids.shape(), " ", ids.dtype());
  }
  if (cache.num_layers() != config_.num_hidden_layers || !cache.allocated()) {
    fail<ValueError>("[llama] decode_step needs a cache of this model that holds the prompt already");
  }
  if (mask.ndim() != 4 || mask.shape(3) != cache.capacity() || mask.dtype() != bool_) {
    fail<ValueError>("[llama] decode_step's mask must be (1, 1, 1, ", cache.capacity(), ") bool, got ", mask.shape(),
                     " ", mask.dtype());
  }
  StepAt at{position, mask};
  array h = model_->norm()((*model_)(ids, &cache, &at));
  return lm_head_ ? (*lm_head_)(h) : model_->embed_tokens().as_linear(h);
}

array LlamaForCausalLM::decode_mask(int64_t position, int64_t capacity) const {
  std::vector<uint8_t> m(static_cast<size_t>(capacity));
  const int64_t window = config_.sliding_window;
  for (int64_t j = 0; j < capacity; ++j) m[j] = j <= position && (window <= 0 || j > position - window);
  return array(m.data(), Shape{1, 1, 1, capacity}, bool_);
}

}  // namespace kiln::models
