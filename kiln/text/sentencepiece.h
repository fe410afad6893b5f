// SentencePiece tokenization of the BPE type (Llama 2, Mistral): the model that a SentencePiece
// `tokenizer.model` holds, or that a GGUF file with tokenizer.ggml.model "llama" describes. It
// gives the same ids as the `sentencepiece` library.
//
// encode: control pieces written in the text ("</s>") are matched first, longest first, and cut
// the text into fragments. Each fragment is normalized as SentencePiece does (a "▁" in front as
// the dummy prefix, spaces written as "▁", optionally extra spaces removed), split into
// characters, with user-defined pieces kept whole and never merged, and then the adjacent pair
// whose concatenation is a piece with the highest score is merged, again and again (the leftmost
// pair among equal scores). A character no piece spells becomes its UTF-8 bytes as <0xXX> pieces
// with byte fallback, else the unknown piece (a run of them one unknown piece).
//
// Where this differs from `sentencepiece`, which never sees control pieces in the text and
// takes only UTF-8: the fragment after a control piece gets its own dummy prefix (as llama.cpp
// and Llama 2's tokenizer.json do), and a byte that is not UTF-8 stays itself (a byte piece, or
// the unknown piece) where `sentencepiece` would read U+FFFD, so decode() gives it back.
//
// decode: "▁" back to a space, byte pieces to their bytes, the unknown piece to " ⁇ " (the
// model's unk_surface), the space of the dummy prefix dropped at the start. Control pieces come
// out as their text (`sentencepiece` drops them), and the text after one starts afresh, so
// decode(encode(s)) == s for text with control pieces in it too.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/io/gguf.h"

namespace kiln::text {

// Piece types, numbered as in SentencePiece's ModelProto and in tokenizer.ggml.token_type.
enum class PieceType : int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

class SentencePiece {
 public:
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::normal;
  };
  struct Options {
    bool add_dummy_prefix = true;
    bool remove_extra_whitespaces = false;
    bool escape_whitespaces = true;
    bool byte_fallback = false;
    std::string unk_surface = " \xE2\x81\x87 ";
  };

  // Checks the pieces (byte pieces spelled <0xXX>, all 256 of them with byte fallback, an
  // unknown piece without it); throws ValueError naming `where` otherwise. A piece text that
  // repeats keeps its first id.
  SentencePiece(std::vector<Piece> pieces, Options options, const std::string& where);

  // A serialized ModelProto (the `tokenizer.model` file). bos/eos are the control pieces the
  // trainer spec names (-1 when absent). Throws ValueError "[sentencepiece] ..." when the bytes
  // are not a valid model or the model is not of the BPE type with identity normalization.
  static std::shared_ptr<const SentencePiece> from_model_proto(std::string_view bytes, const std::string& where);
  // tokenizer.ggml.{tokens,scores,token_type,bos_token_id,eos_token_id,unknown_token_id,
  // add_space_prefix,remove_extra_whitespaces}; byte fallback when there are byte tokens.
  static std::shared_ptr<const SentencePiece> from_gguf(const io::GGUFFile& gguf);

  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  const Piece& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  const Options& options() const { return options_; }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t unk_id() const { return unk_; }
  // The id of a piece text (control, unknown and byte pieces first, as in sentencepiece), -1
  // when absent.
  int32_t id(std::string_view text) const;
  // Control and user-defined pieces: those matched whole in the text.
  bool is_special(int32_t id) const;

  void encode(std::string_view text, std::vector<int32_t>& out) const;

  // The text of one piece out of context: "▁" as a space, a byte piece as its byte.
  std::string piece_bytes(int32_t id) const;
  // What decode() tracks from one piece to the next to drop the dummy prefix's space.
  struct DecodeState {
    bool at_start = true;  // nothing but control pieces so far
    bool space_seen = false;
    bool any_text = false;
  };
  // The text of piece `id` following those that led to `state`, which it updates.
  std::string decode_next(int32_t id, DecodeState& state) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using PieceMap = std::unordered_map<std::string, int32_t, Hash, std::equal_to<>>;
  // Whole pieces matched at text[pos]: the longest, or {0, -1}.
  using Candidates = std::unordered_map<unsigned char, std::vector<std::pair<std::string, int32_t>>>;
  static std::pair<size_t, int32_t> match(const Candidates& c, std::string_view text, size_t pos);

  std::string normalize(std::string_view text) const;
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<Piece> pieces_;
  Options options_;
  PieceMap mergeable_;  // normal, user-defined and unused pieces: what merges may produce
  PieceMap reserved_;   // control, unknown and byte pieces
  Candidates controls_, user_defined_;
  int32_t bytes_[256];
  int32_t unk_ = -1, bos_ = -1, eos_ = -1;
};

}  // namespace kiln::text
