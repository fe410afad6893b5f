// The tokenizer of a language model: byte-level BPE (GPT-2, Llama 3, SmolLM, Qwen style), loaded
// from a GGUF file or a Hugging Face tokenizer.json, giving the same ids as Hugging Face
// `tokenizers`; or SentencePiece BPE (Llama 2, Mistral), loaded from a GGUF file or a
// `tokenizer.model`, giving the same ids as `sentencepiece` (kiln/text/sentencepiece.h says how
// it encodes and decodes). The rest of this comment is about byte-level BPE.
//
// encode: added/special tokens written in the text ("<|im_start|>") are matched first, longest
// first, and emitted as their ids. The rest is split by the pre-tokenizer regexes (PCRE2, UTF +
// UCP), applied in sequence; each regex splits every piece into its matches and the gaps between
// them. Each piece is spelled through the GPT-2 byte->unicode table and BPE-merged.
//
// Invalid UTF-8 given to encode never throws: the text is cut into maximal well-formed runs,
// which are pre-tokenized as usual, and stray bytes, each of which becomes a piece of its own
// (its single-byte token), so decode() of those ids gives the original bytes back. A stray
// byte that no token spells (vocabularies learnt from UTF-8 text lack 0xC0, 0xC1, 0xF5-0xFF)
// becomes the tokens of U+FFFD, as Python's errors="replace" would give. (Hugging Face takes
// Python str, so it never sees such input.)
//
// decode: tokens back to bytes through the inverse table; added tokens as their text. The
// result is the raw bytes, which can be broken UTF-8 when the ids cut a character;
// StreamDecoder gives only complete characters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/io/gguf.h"
#include "kiln/text/bpe.h"
#include "kiln/text/sentencepiece.h"

namespace kiln::text {

// The pre-tokenizer regexes for a GGUF tokenizer.ggml.pre name, as llama.cpp maps them (and
// as the model family's tokenizer.json defines them). Throws ValueError for an unknown name.
// Sets `ignore_merges` where the family's BPE model does (Llama 3).
std::vector<std::string> pretokenizer_patterns(const std::string& pre, bool* ignore_merges = nullptr);

// The GPT-2 pre-tokenizer regex.
extern const char* const kGPT2Pattern;

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,pre,tokens,merges,token_type,bos_token_id,eos_token_id,
  // add_bos_token,add_eos_token} for model "gpt2" (byte-level BPE), and for model "llama"
  // (SentencePiece) tokens, scores, token_type, bos/eos/unknown_token_id, add_space_prefix,
  // remove_extra_whitespaces, add_bos_token (default true) and add_eos_token. Throws ValueError
  // when the keys are missing or name something unsupported.
  static Tokenizer from_gguf(const io::GGUFFile& gguf);
  // A SentencePiece `tokenizer.model` of the BPE type. BOS is added (add_special) unless a
  // tokenizer_config.json next to it says otherwise (add_bos_token / add_eos_token). Throws
  // FileError when it cannot be read and ValueError when it is invalid or unsupported.
  static Tokenizer from_sentencepiece(const std::string& path);
  // A Hugging Face tokenizer.json with a BPE model and byte-level pre-tokenizer (ByteLevel, or
  // a Sequence of Split(Regex, Isolated) / Digits / ByteLevel). bos/eos come from a
  // tokenizer_config.json next to it, when there is one. Throws FileError when it cannot be
  // read and ValueError when it is invalid or unsupported.
  static Tokenizer from_tokenizer_json(const std::string& path);

  // `add_special` adds BOS/EOS where the model asks for them (add_bos_token / add_eos_token).
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // The bytes of one token (throws IndexError for an id out of range).
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const { return spm_ ? spm_->vocab_size() : bpe_->vocab_size(); }
  int32_t bos_id() const { return bos_; }  // -1 when the model has none
  int32_t eos_id() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  // The stored token text (byte-level spelling, or the SentencePiece piece: "▁the", "<0x0A>");
  // -1 from token_to_id when absent.
  const std::string& id_to_token(int32_t id) const;
  int32_t token_to_id(std::string_view token) const { return spm_ ? spm_->id(token) : bpe_->id(token); }
  // Tokens matched whole in the text (added tokens; SentencePiece control and user-defined pieces).
  bool is_added_token(int32_t id) const;
  // The pre-tokenizer regexes (none for SentencePiece).
  const std::vector<std::string>& patterns() const { return patterns_; }
  // The SentencePiece model, null for byte-level BPE.
  const SentencePiece* sentencepiece() const { return spm_.get(); }

  struct Regex;  // a compiled PCRE2 pattern (tokenizer.cpp)

 private:
  Tokenizer() = default;
  void init(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
            bool ignore_merges, std::vector<std::string> patterns);
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void encode_valid(std::string_view text, std::vector<int32_t>& out) const;
  // One token of a sequence being decoded: SentencePiece drops the dummy prefix's space at the start.
  std::string decode_next(int32_t id, SentencePiece::DecodeState& state) const;
  friend class StreamDecoder;

  std::shared_ptr<const BPE> bpe_;  // one of these two is set
  std::shared_ptr<const SentencePiece> spm_;
  std::vector<std::string> patterns_;
  std::vector<std::shared_ptr<const Regex>> regexes_;
  // Added tokens matched in the text: by first byte, longest first.
  std::unordered_map<unsigned char, std::vector<std::pair<std::string, int32_t>>> added_;
  std::unordered_map<int32_t, std::string> added_ids_;
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_prefix_space_ = false;
  void add_token(const std::string& content, int32_t id);
};

// Turns ids into text one at a time, emitting only complete UTF-8: the bytes of a character
// split across tokens are held back until the rest arrives. Bytes that can never form a
// character come out as U+FFFD, so the output is always valid UTF-8. For ids whose decode()
// is valid UTF-8, the concatenated output (with flush) equals decode().
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t id);
  // Emits what is held back (as U+FFFD: the character was never completed).
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;
  SentencePiece::DecodeState state_;
};

}  // namespace kiln::text
