// Byte-pair-encoding model: a vocabulary, ranked merges, and the merge loop that turns one
// pre-tokenized word (already mapped through the byte-level table) into token ids. Also the
// GPT-2 byte <-> unicode table that byte-level BPE uses to spell raw bytes as printable text.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kiln::text {

// GPT-2's bytes_to_unicode(): the printable bytes map to themselves, the other 68 to U+0100
// and up, so that every byte string is spelled by a printable string.
const std::string& byte_to_unicode(uint8_t b);  // the code point as UTF-8
// The inverse: the byte a code point stands for, or -1 when it is not in the table.
int unicode_to_byte(uint32_t cp);
// Maps every byte of `bytes` through the table.
std::string bytes_to_unicode_string(std::string_view bytes);

class BPE {
 public:
  // `vocab[id]` is the token text (byte-level spelling). `merges` are "left right" pairs in
  // rank order. A merge whose parts or result are not in the vocabulary is skipped, as
  // llama.cpp does. With `ignore_merges`, a word that is itself a token is emitted whole
  // (Hugging Face's BPE.ignore_merges, set by Llama 3).
  BPE(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      bool ignore_merges = false);

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.size()); }
  const std::string& token(int32_t id) const { return vocab_[static_cast<size_t>(id)]; }
  // -1 when absent.
  int32_t id(std::string_view token) const;

  // Appends the ids of one word (byte-level spelling) to `out`. Throws ValueError when a
  // character of the word is not in the vocabulary.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  bool ignore_merges_;

  // Words repeat a lot in real text; the merge loop runs once per distinct word.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace kiln::text
