#include "kiln/text/generate.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/capture.h"
#include "kiln/device.h"
#include "kiln/errors.h"
#include "kiln/eval.h"
#include "kiln/io/gguf.h"
#include "kiln/io/mapped_file.h"
#include "kiln/memory.h"
#include "kiln/ops.h"

namespace kiln::text {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void add_stop_id(std::vector<int32_t>& ids, int64_t id) {
  if (id < 0) return;
  for (int32_t x : ids)
    if (x == id) return;
  ids.push_back(static_cast<int32_t>(id));
}

}  // namespace

LanguageModel load_language_model(const std::string& path, std::optional<Dtype> dtype) {
  auto t0 = Clock::now();
  LanguageModel lm;
  if (!fs::exists(path)) fail<io::FileError>("[generate] no such file or directory: '", path, "'");
  if (io::is_gguf_file(path)) {
    io::GGUFFile g = io::GGUFFile::open(path);
    lm.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_gguf(g));
    lm.chat_template = g.get_string("tokenizer.chat_template", "");
    add_stop_id(lm.stop_ids, g.get_int("tokenizer.ggml.eot_token_id", -1));
    lm.model = models::load_llama(path, dtype);
  } else {
    fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
    fs::path tj = dir / "tokenizer.json";
    if (!fs::is_regular_file(tj)) fail<io::FileError>("[generate] no tokenizer.json in '", dir.string(), "'");
    lm.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_tokenizer_json(tj.string()));
    fs::path tc = dir / "tokenizer_config.json";
    if (fs::is_regular_file(tc)) {
      json j = json::parse(read_text(tc), nullptr, false);
      if (j.is_object() && j.contains("chat_template")) {
        const json& t = j["chat_template"];
        if (t.is_string()) lm.chat_template = t.get<std::string>();
        if (t.is_array()) {
          for (const auto& named : t)
            if (named.value("name", "") == "default") lm.chat_template = named.value("template", "");
        }
      }
    }
    if (lm.chat_template.empty() && fs::is_regular_file(dir / "chat_template.jinja")) {
      lm.chat_template = read_text(dir / "chat_template.jinja");
    }
    lm.model = models::load_llama(path, dtype);
    for (int64_t id : lm.model->config().eos_token_ids) add_stop_id(lm.stop_ids, id);
  }
  const Tokenizer& tok = *lm.tokenizer;
  add_stop_id(lm.stop_ids, tok.eos_id());
  // End-of-turn tokens of the common chat formats end a reply too.
  for (const char* t : {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>"}) {
    add_stop_id(lm.stop_ids, tok.token_to_id(t));
  }
  if (tok.bos_id() >= 0) lm.bos_token = tok.decode({tok.bos_id()});
  if (tok.eos_id() >= 0) lm.eos_token = tok.decode({tok.eos_id()});
  lm.load_seconds = seconds_since(t0);
  return lm;
}

namespace {

// How many bytes at the end of `text` could be the start of a stop string (held back until
// the next piece decides).
size_t stop_prefix_length(const std::string& text, const std::vector<std::string>& stop) {
  size_t hold = 0;
  for (const auto& s : stop) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

}  // namespace

GenerationStats generate(const LanguageModel& lm, const std::vector<int32_t>& prompt, const GenerationOptions& opt,
                         const std::function<bool(const std::string&)>& on_text, models::KVCache* cache_in,
                         std::vector<int32_t>* tokens_out) {
  if (prompt.empty()) fail<ValueError>("[generate] the prompt has no tokens");
  if (opt.max_tokens < 0) fail<ValueError>("[generate] max_tokens must be non-negative, got ", opt.max_tokens);
  for (const auto& s : opt.stop)
    if (s.empty()) fail<ValueError>("[generate] stop strings must not be empty");
  const auto& model = *lm.model;
  for (int32_t id : prompt) {
    if (id < 0 || id >= model.config().vocab_size) {
      fail<ValueError>("[generate] token id ", id, " is outside the vocabulary (", model.config().vocab_size, ")");
    }
  }
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  stats.finish_reason = "length";
  if (opt.max_tokens == 0) return stats;

  models::KVCache local = model.make_cache();
  models::KVCache& cache = cache_in ? *cache_in : local;
  int64_t base = cache.offset();
  cache.reserve(base + static_cast<int64_t>(prompt.size()) + opt.max_tokens);
  Sampler sampler(opt.sampling);
  std::vector<int32_t> history = prompt;

  auto step = [&](const array& ids) { return sampler(model(ids, &cache, /*last_only=*/true), history); };
  auto t0 = Clock::now(), t1 = t0;
  array y = step(array(prompt, Shape{1, static_cast<int64_t>(prompt.size())}));
  async_eval({y});

  // On the GPU each decoding step replays one CUDA graph (kiln/capture.h): the step's position
  // and attention mask are inputs, so its shapes never change (the cache holds every position
  // reserved above). KILN_DECODE_GRAPH=0 turns it off.
  const char* graph_env = std::getenv("KILN_DECODE_GRAPH");
  const bool use_graph = default_device().type == Device::gpu && !(graph_env && std::string(graph_env) == "0") &&
                         cache.capacity() >= base + static_cast<int64_t>(prompt.size()) + opt.max_tokens;
  std::optional<CapturedFunction> graph;
  if (use_graph) {
    graph.emplace([&](const std::vector<array>& in) {
      return std::vector<array>{model.decode_step(in[0], in[1], in[2], cache)};
    });
  }
  int64_t position = base + static_cast<int64_t>(prompt.size());  // of the next token fed
  auto decode = [&](const array& ids) {
    if (!graph) return step(ids);
    array logits = (*graph)({ids, array(static_cast<int32_t>(position)), model.decode_mask(position, cache.capacity())})[0];
    cache.set_offset(++position);
    return sampler(logits, history);
  };

  StreamDecoder decoder(*lm.tokenizer);
  std::string text;    // everything decoded so far
  size_t emitted = 0;  // bytes of it given to on_text
  auto emit = [&](size_t upto) {
    bool go_on = true;
    if (upto > emitted) go_on = on_text(text.substr(emitted, upto - emitted));
    emitted = std::max(emitted, upto);
    return go_on;
  };
  for (int i = 0; i < opt.max_tokens; ++i) {
    // The next step's graph is built from this step's (still lazy) token, so the device
    // computes it while the host decodes this one.
    bool more = i + 1 < opt.max_tokens;
    std::optional<array> next;
    if (more && !sampler.uses_history()) {
      next = decode(reshape(y, {1, 1}));
      async_eval({*next});
    }
    int32_t tok = y.item<int32_t>();
    if (i == 0) {
      stats.prompt_seconds = seconds_since(t0);
      t1 = Clock::now();
    }
    ++stats.generated_tokens;
    history.push_back(tok);
    if (tokens_out) tokens_out->push_back(tok);
    bool is_stop = false;
    for (int32_t s : lm.stop_ids) is_stop |= s == tok;
    if (opt.stop_at_eos && is_stop) {
      stats.finish_reason = "stop";
      break;
    }
    text += decoder.push(tok);
    size_t hit = std::string::npos;
    for (const auto& s : opt.stop) hit = std::min(hit, text.find(s, emitted > s.size() ? emitted - s.size() : 0));
    if (hit != std::string::npos) {
      emit(hit);
      stats.finish_reason = "stop";
      break;
    }
    if (!emit(text.size() - stop_prefix_length(text, opt.stop))) {
      stats.finish_reason = "callback";
      break;
    }
    if (!more) break;
    if (!next) {
      next = decode(reshape(y, {1, 1}));
      async_eval({*next});
    }
    y = *next;
  }
  if (stats.finish_reason == "length") {
    text += decoder.flush();
    emit(text.size());
  }
  stats.generation_seconds = seconds_since(t1);
  synchronize();
  stats.peak_memory = get_peak_memory();
  // The cache keeps the prompt and the generated tokens that were fed back, except one fed
  // ahead of need: it then holds exactly prompt + all generated tokens but the last.
  cache.trim(base + static_cast<int64_t>(prompt.size()) + std::max<int64_t>(0, stats.generated_tokens - 1));
  return stats;
}

}  // namespace kiln::text
