#include "kiln/text/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/errors.h"
#include "kiln/io/mapped_file.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

using json = nlohmann::json;

const char* const kGPT2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

std::vector<std::string> pretokenizer_patterns(const std::string& pre, bool* ignore_merges) {
  if (ignore_merges) *ignore_merges = false;
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2") return {kGPT2Pattern};
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "pixtral") {
    if (ignore_merges) *ignore_merges = true;
    return {kLlama3Pattern};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "megrez") return {kQwen2Pattern};
  // StarCoder-family tokenizer.json: Sequence[Digits(individual_digits=true), ByteLevel(GPT-2 regex)].
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell" || pre == "command-r" ||
      pre == "exaone" || pre == "minerva")
    return {R"(\p{N})", kGPT2Pattern};
  fail("[tokenizer] unsupported pre-tokenizer '", pre, "' (tokenizer.ggml.pre)");
}

struct Tokenizer::Regex {
  pcre2_code* code = nullptr;
  explicit Regex(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                         &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("[tokenizer] bad pre-tokenizer regex '", pattern, "' at offset ", off, ": ", reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter works too
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Splits `s` (valid UTF-8) into matches and the gaps between them, in order.
  void split(std::string_view s, std::vector<std::string_view>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    size_t pos = 0, gap = 0;
    while (pos < s.size()) {
      int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, md,
                           nullptr);
      if (rc < 0) break;  // no more matches (or a match-limit error: the rest stays one piece)
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step over one character
        pos = b + std::max<size_t>(1, utf8_valid_length(s, b));
        continue;
      }
      if (b > gap) out.push_back(s.substr(gap, b - gap));
      out.push_back(s.substr(b, e - b));
      gap = pos = e;
    }
    if (gap < s.size()) out.push_back(s.substr(gap));
    pcre2_match_data_free(md);
  }
};

void Tokenizer::init(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                     bool ignore_merges, std::vector<std::string> patterns) {
  bpe_ = std::make_shared<const BPE>(std::move(vocab), merges, ignore_merges);
  patterns_ = std::move(patterns);
  for (const auto& p : patterns_) regexes_.push_back(std::make_shared<const Regex>(p));
}

void Tokenizer::add_token(const std::string& content, int32_t id) {
  if (content.empty()) return;
  added_ids_[id] = content;
  auto& bucket = added_[static_cast<unsigned char>(content[0])];
  bucket.emplace_back(content, id);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

Tokenizer Tokenizer::from_gguf(const io::GGUFFile& g) {
  if (!g.has_key("tokenizer.ggml.model"))
    fail("[tokenizer] '", g.path(), "' has no tokenizer (no tokenizer.ggml.model key)");
  std::string model = g.get_string("tokenizer.ggml.model");
  if (model == "llama") {
    Tokenizer t;
    t.spm_ = SentencePiece::from_gguf(g);
    t.bos_ = t.spm_->bos_id();
    t.eos_ = t.spm_->eos_id();
    t.add_bos_ = g.get_bool("tokenizer.ggml.add_bos_token", true);  // llama.cpp's default for SentencePiece
    t.add_eos_ = g.get_bool("tokenizer.ggml.add_eos_token", false);
    return t;
  }
  if (model != "gpt2")
    fail("[tokenizer] unsupported tokenizer model '", model, "' in '", g.path(),
         "': only byte-level BPE ('gpt2') and SentencePiece ('llama') are supported");
  for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
    if (!g.has_key(k)) fail("[tokenizer] '", g.path(), "' has no ", k, " key");
  std::vector<std::string> tokens = g.get_string_array("tokenizer.ggml.tokens");
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : g.get_string_array("tokenizer.ggml.merges")) {
    size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) fail("[tokenizer] bad merge '", m, "' in '", g.path(), "': expected 'left right'");
    merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  std::vector<int64_t> types;
  if (g.has_key("tokenizer.ggml.token_type")) types = g.get_int_array("tokenizer.ggml.token_type");
  bool ignore_merges = false;
  auto patterns = pretokenizer_patterns(g.get_string("tokenizer.ggml.pre", "default"), &ignore_merges);

  Tokenizer t;
  auto n = static_cast<int64_t>(tokens.size());
  t.bos_ = static_cast<int32_t>(g.get_int("tokenizer.ggml.bos_token_id", -1));
  t.eos_ = static_cast<int32_t>(g.get_int("tokenizer.ggml.eos_token_id", -1));
  for (int32_t* id : {&t.bos_, &t.eos_})
    if (*id >= n) fail("[tokenizer] special token id ", *id, " in '", g.path(), "' is outside the vocabulary of ", n);
  t.add_bos_ = g.get_bool("tokenizer.ggml.add_bos_token", false);
  t.add_eos_ = g.get_bool("tokenizer.ggml.add_eos_token", false);
  // Control (3) and user-defined (4) tokens are matched whole in the text.
  for (size_t i = 0; i < types.size() && i < tokens.size(); ++i)
    if (types[i] == 3 || types[i] == 4) t.add_token(tokens[i], static_cast<int32_t>(i));
  t.init(std::move(tokens), merges, ignore_merges, std::move(patterns));
  return t;
}

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<io::FileError>("[tokenizer] cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail("[tokenizer] '", path, "' is not valid JSON: ", e.what());
  }
}

// Walks a tokenizer.json pre_tokenizer into regexes; notes whether ByteLevel is there.
void collect_pretokenizer(const json& p, const std::string& path, std::vector<std::string>& patterns,
                          bool& byte_level, bool& prefix_space) {
  if (p.is_null()) return;
  std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& q : p.at("pretokenizers")) collect_pretokenizer(q, path, patterns, byte_level, prefix_space);
  } else if (type == "ByteLevel") {
    byte_level = true;
    prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) patterns.emplace_back(kGPT2Pattern);
  } else if (type == "Digits") {
    patterns.emplace_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Split") {
    if (p.value("behavior", "") != "Isolated" || p.value("invert", false))
      fail("[tokenizer] unsupported Split pre-tokenizer in '", path, "': only behavior Isolated without invert");
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) patterns.push_back(pat["Regex"].get<std::string>());
    else patterns.push_back("\\Q" + pat.at("String").get<std::string>() + "\\E");
  } else {
    fail("[tokenizer] unsupported pre-tokenizer type '", type, "' in '", path, "'");
  }
}

// A special token in tokenizer_config.json: a string, or an object with "content".
std::string config_token(const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg[key].is_null()) return {};
  const json& v = cfg[key];
  return v.is_string() ? v.get<std::string>() : v.value("content", "");
}

}  // namespace

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  json j = read_json(path);
  Tokenizer t;
  std::vector<std::string> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::string> patterns;
  bool ignore_merges = false;
  try {
    if (!j.is_object() || !j.contains("model")) fail("[tokenizer] '", path, "' has no \"model\"");
    const json& m = j["model"];
    std::string type = m.value("type", "");
    if (type != "BPE")
      fail("[tokenizer] unsupported model type '", type, "' in '", path, "': only byte-level BPE is supported");
    if (j.contains("normalizer") && !j["normalizer"].is_null())
      fail("[tokenizer] unsupported normalizer '", j["normalizer"].value("type", ""), "' in '", path, "'");
    bool byte_level = false;
    if (j.contains("pre_tokenizer"))
      collect_pretokenizer(j["pre_tokenizer"], path, patterns, byte_level, t.add_prefix_space_);
    if (!byte_level) fail("[tokenizer] '", path, "' is not byte-level BPE (no ByteLevel pre-tokenizer)");
    ignore_merges = m.value("ignore_merges", false);

    for (const auto& [tok, id] : m.at("vocab").items()) {
      auto i = id.get<int64_t>();
      if (i < 0 || i > (1 << 24)) fail("[tokenizer] token id ", i, " of '", tok, "' in '", path, "' is out of range");
      if (static_cast<size_t>(i) >= vocab.size()) vocab.resize(static_cast<size_t>(i) + 1);
      vocab[static_cast<size_t>(i)] = tok;
    }
    std::vector<std::pair<std::string, int32_t>> added;
    if (j.contains("added_tokens"))
      for (const auto& a : j["added_tokens"]) {
        auto i = a.at("id").get<int64_t>();
        if (i < 0 || i > (1 << 24)) fail("[tokenizer] added token id ", i, " in '", path, "' is out of range");
        if (static_cast<size_t>(i) >= vocab.size()) vocab.resize(static_cast<size_t>(i) + 1);
        std::string content = a.at("content").get<std::string>();
        vocab[static_cast<size_t>(i)] = content;
        added.emplace_back(content, static_cast<int32_t>(i));
      }
    for (const auto& mg : m.at("merges")) {
      if (mg.is_string()) {
        auto s = mg.get<std::string>();
        size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) fail("[tokenizer] bad merge '", s, "' in '", path, "'");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else {
        merges.emplace_back(mg.at(0).get<std::string>(), mg.at(1).get<std::string>());
      }
    }
    for (const auto& [content, id] : added) t.add_token(content, id);
  } catch (const json::exception& e) {
    fail("[tokenizer] malformed '", path, "': ", e.what());
  }
  t.init(std::move(vocab), merges, ignore_merges, std::move(patterns));

  // bos/eos live in tokenizer_config.json, next to tokenizer.json.
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  std::ifstream probe(dir + "tokenizer_config.json");
  if (probe) {
    json cfg = read_json(dir + "tokenizer_config.json");
    if (auto b = config_token(cfg, "bos_token"); !b.empty()) t.bos_ = t.token_to_id(b);
    if (auto e = config_token(cfg, "eos_token"); !e.empty()) t.eos_ = t.token_to_id(e);
    t.add_bos_ = cfg.value("add_bos_token", false) && t.bos_ >= 0;
    t.add_eos_ = cfg.value("add_eos_token", false) && t.eos_ >= 0;
  }
  return t;
}

Tokenizer Tokenizer::from_sentencepiece(const std::string& path) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail<io::FileError>("[sentencepiece] cannot open '", path, "'");
    std::stringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  }
  Tokenizer t;
  t.spm_ = SentencePiece::from_model_proto(bytes, path);
  t.bos_ = t.spm_->bos_id();
  t.eos_ = t.spm_->eos_id();
  t.add_bos_ = t.bos_ >= 0;  // as Llama's tokenizer_config.json has it
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (std::ifstream probe(dir + "tokenizer_config.json"); probe) {
    json cfg = read_json(dir + "tokenizer_config.json");
    t.add_bos_ = cfg.value("add_bos_token", t.add_bos_) && t.bos_ >= 0;
    t.add_eos_ = cfg.value("add_eos_token", false) && t.eos_ >= 0;
  }
  return t;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail<IndexError>("[tokenizer] token id ", id, " is out of range for a vocabulary of ", vocab_size());
  return spm_ ? spm_->piece(id).text : bpe_->token(id);
}

bool Tokenizer::is_added_token(int32_t id) const {
  if (spm_) return id >= 0 && id < vocab_size() && spm_->is_special(id);
  return added_ids_.count(id) != 0;
}

void Tokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& re : regexes_) {
    next.clear();
    for (auto p : pieces) re->split(p, next);
    pieces.swap(next);
  }
  for (auto p : pieces) bpe_->encode_word(bytes_to_unicode_string(p), out);
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  std::string prefixed;
  if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed += ' ';
    prefixed.append(text);
    text = prefixed;
  }
  // Well-formed runs go through the regexes; each stray byte is a piece of its own.
  size_t run = 0, i = 0;
  while (i < text.size()) {
    size_t n = utf8_valid_length(text, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > run) encode_valid(text.substr(run, i - run), out);
    const std::string& byte = byte_to_unicode(static_cast<uint8_t>(text[i]));
    if (bpe_->id(byte) >= 0) bpe_->encode_word(byte, out);
    else encode_valid("\xEF\xBF\xBD", out);  // a byte no token spells (0xFF, say): U+FFFD
    run = ++i;
  }
  if (i > run) encode_valid(text.substr(run, i - run), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  if (spm_) {
    spm_->encode(text, out);
    if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
    return out;
  }
  size_t start = 0;
  if (!added_.empty()) {
    for (size_t i = 0; i < text.size(); ++i) {
      auto it = added_.find(static_cast<unsigned char>(text[i]));
      if (it == added_.end()) continue;
      for (const auto& [content, id] : it->second) {  // longest first
        if (text.compare(i, content.size(), content) != 0) continue;
        encode_plain(text.substr(start, i - start), out);
        out.push_back(id);
        start = i + content.size();
        i = start - 1;
        break;
      }
    }
  }
  encode_plain(text.substr(start), out);
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string& tok = id_to_token(id);
  if (spm_) return spm_->piece_bytes(id);
  auto it = added_ids_.find(id);
  if (it != added_ids_.end()) return it->second;
  std::string out;
  for (size_t pos = 0; pos < tok.size();) {
    size_t n = utf8_valid_length(tok, pos);
    if (n == 0) {  // not UTF-8 at all: pass the byte through
      out += tok[pos++];
      continue;
    }
    size_t at = pos;
    uint32_t cp = next_code_point(tok, pos);
    int b = unicode_to_byte(cp);
    if (b >= 0) out += static_cast<char>(b);
    else out.append(tok, at, n);  // not a byte-level character: keep its text
  }
  return out;
}

std::string Tokenizer::decode_next(int32_t id, SentencePiece::DecodeState& state) const {
  if (!spm_) return token_bytes(id);
  id_to_token(id);  // range check
  return spm_->decode_next(id, state);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  SentencePiece::DecodeState state;
  for (int32_t id : ids) out += decode_next(id, state);
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_->decode_next(id, state_);
  size_t keep = utf8_incomplete_tail(pending_);
  std::string out = utf8_replace_invalid(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_replace_invalid(pending_);
  pending_.clear();
  return out;
}

}  // namespace kiln::text
