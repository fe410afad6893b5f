#include "kiln/text/sentencepiece.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <queue>

#include "kiln/errors.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, what a space is written as

// The byte a piece "<0xXX>" stands for (upper-case hex, as SentencePiece writes them), else -1.
int byte_value(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int v = 0;
  for (char c : p.substr(3, 2)) {
    if (c >= '0' && c <= '9') v = v * 16 + (c - '0');
    else if (c >= 'A' && c <= 'F') v = v * 16 + (c - 'A' + 10);
    else return -1;
  }
  return v;
}

std::string unescape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    if (s.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
      out += ' ';
      pos += kSpaceSymbol.size();
    } else {
      out += s[pos++];
    }
  }
  return out;
}

// The protobuf wire format, as far as a ModelProto needs it. Every read is bounds-checked and
// a failure names the file and the offset.
class ProtoReader {
 public:
  enum Wire { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

  ProtoReader(std::string_view buf, const char* base, const std::string& where)
      : p_(buf.data()), end_(buf.data() + buf.size()), base_(base), where_(where) {}

  bool done() const { return p_ == end_; }

  [[noreturn]] void bad(const std::string& what) const {
    fail("[sentencepiece] '", where_, "' is not a valid SentencePiece model: ", what, " (at byte ", p_ - base_, ")");
  }

  // The next field's number and wire type.
  std::pair<uint64_t, int> tag() {
    uint64_t t = varint();
    if ((t >> 3) == 0) bad("field number 0");
    return {t >> 3, static_cast<int>(t & 7)};
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) bad("varint runs past the end");
      auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
  }

  std::string_view bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) bad("a field of " + std::to_string(n) + " bytes runs past the end");
    std::string_view s(p_, static_cast<size_t>(n));
    p_ += n;
    return s;
  }

  float fixed32() {
    if (end_ - p_ < 4) bad("a 4-byte field runs past the end");
    uint32_t u = 0;
    for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<uint8_t>(p_[k]);  // little-endian
    p_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }

  void skip(int wire) {
    if (wire == kVarint) varint();
    else if (wire == kLen) bytes();
    else if (wire == kFixed32 || wire == kFixed64) {
      size_t n = wire == kFixed32 ? 4 : 8;
      if (static_cast<size_t>(end_ - p_) < n) bad("a fixed-size field runs past the end");
      p_ += n;
    } else {
      bad("unsupported wire type " + std::to_string(wire));
    }
  }

  void want(uint64_t field, int wire, int expected, const char* what) const {
    if (wire != expected)
      bad(std::string(what) + " (field " + std::to_string(field) + ") has wire type " + std::to_string(wire) +
          ", expected " + std::to_string(expected));
  }

  ProtoReader sub(std::string_view buf) const { return ProtoReader(buf, base_, where_); }

 private:
  const char* p_;
  const char* end_;
  const char* base_;
  const std::string& where_;
};

// The fields of ModelProto (sentencepiece_model.proto) that tokenization depends on, with the
// proto's defaults.
struct ModelFields {
  std::vector<SentencePiece::Piece> pieces;
  int64_t model_type = 1;  // UNIGRAM
  bool treat_whitespace_as_suffix = false;
  std::string bos_piece = "<s>", eos_piece = "</s>";
  std::string normalizer_name, charsmap, denormalizer_charsmap;
  SentencePiece::Options options;
};

void read_piece(ProtoReader r, ModelFields& m) {
  SentencePiece::Piece pc;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) {
      r.want(field, wire, ProtoReader::kLen, "piece");
      pc.text = std::string(r.bytes());
    } else if (field == 2) {
      r.want(field, wire, ProtoReader::kFixed32, "score");
      pc.score = r.fixed32();
    } else if (field == 3) {
      r.want(field, wire, ProtoReader::kVarint, "type");
      auto t = static_cast<int64_t>(r.varint());
      if (t < 1 || t > 6) r.bad("piece " + std::to_string(m.pieces.size()) + " has unknown type " + std::to_string(t));
      pc.type = static_cast<PieceType>(t);
    } else {
      r.skip(wire);
    }
  }
  if (pc.text.empty()) r.bad("piece " + std::to_string(m.pieces.size()) + " is empty");
  m.pieces.push_back(std::move(pc));
}

void read_trainer_spec(ProtoReader r, ModelFields& m) {
  while (!r.done()) {
    auto [field, wire] = r.tag();
    auto flag = [&](const char* what) {
      r.want(field, wire, ProtoReader::kVarint, what);
      return r.varint() != 0;
    };
    auto text = [&](const char* what) {
      r.want(field, wire, ProtoReader::kLen, what);
      return std::string(r.bytes());
    };
    if (field == 3) {
      r.want(field, wire, ProtoReader::kVarint, "model_type");
      m.model_type = static_cast<int64_t>(r.varint());
    } else if (field == 24) {
      m.treat_whitespace_as_suffix = flag("treat_whitespace_as_suffix");
    } else if (field == 35) {
      m.options.byte_fallback = flag("byte_fallback");
    } else if (field == 44) {
      m.options.unk_surface = text("unk_surface");
    } else if (field == 46) {
      m.bos_piece = text("bos_piece");
    } else if (field == 47) {
      m.eos_piece = text("eos_piece");
    } else {
      r.skip(wire);
    }
  }
}

void read_normalizer_spec(ProtoReader r, ModelFields& m, bool denormalizer) {
  while (!r.done()) {
    auto [field, wire] = r.tag();
    auto flag = [&](const char* what) {
      r.want(field, wire, ProtoReader::kVarint, what);
      return r.varint() != 0;
    };
    if (field == 1 && !denormalizer) {
      r.want(field, wire, ProtoReader::kLen, "name");
      m.normalizer_name = std::string(r.bytes());
    } else if (field == 2) {
      r.want(field, wire, ProtoReader::kLen, "precompiled_charsmap");
      (denormalizer ? m.denormalizer_charsmap : m.charsmap) = std::string(r.bytes());
    } else if (field == 3 && !denormalizer) {
      m.options.add_dummy_prefix = flag("add_dummy_prefix");
    } else if (field == 4 && !denormalizer) {
      m.options.remove_extra_whitespaces = flag("remove_extra_whitespaces");
    } else if (field == 5 && !denormalizer) {
      m.options.escape_whitespaces = flag("escape_whitespaces");
    } else {
      r.skip(wire);
    }
  }
}

const char* model_type_name(int64_t t) {
  switch (t) {
    case 1: return "unigram";
    case 2: return "bpe";
    case 3: return "word";
    case 4: return "char";
    default: return "unknown";
  }
}

}  // namespace

SentencePiece::SentencePiece(std::vector<Piece> pieces, Options options, const std::string& where)
    : pieces_(std::move(pieces)), options_(std::move(options)) {
  if (pieces_.empty()) fail("[sentencepiece] '", where, "' has no pieces");
  if (pieces_.size() > (1u << 30)) fail("[sentencepiece] '", where, "' has too many pieces: ", pieces_.size());
  std::fill(std::begin(bytes_), std::end(bytes_), -1);
  auto sort_longest_first = [](Candidates& c) {
    for (auto& [first, bucket] : c)
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  };
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    auto id = static_cast<int32_t>(i);
    auto t = static_cast<int32_t>(p.type);
    if (t < 1 || t > 6) fail("[sentencepiece] piece ", i, " of '", where, "' has unknown type ", t);
    if (p.text.empty()) continue;  // can match nothing
    bool mergeable = p.type == PieceType::normal || p.type == PieceType::user_defined || p.type == PieceType::unused;
    (mergeable ? mergeable_ : reserved_).emplace(p.text, id);  // the first id wins
    auto first = static_cast<unsigned char>(p.text[0]);
    if (p.type == PieceType::user_defined) user_defined_[first].emplace_back(p.text, id);
    if (p.type == PieceType::control) controls_[first].emplace_back(p.text, id);
    if (p.type == PieceType::unknown && unk_ < 0) unk_ = id;
    if (p.type == PieceType::byte) {
      int b = byte_value(p.text);
      if (b < 0)
        fail("[sentencepiece] byte piece '", p.text, "' (id ", i, ") of '", where, "' is not of the form <0xXX>");
      if (!options_.byte_fallback)
        fail("[sentencepiece] '", where, "' has byte piece '", p.text, "' but byte fallback is off");
      if (bytes_[b] < 0) bytes_[b] = id;
    }
  }
  sort_longest_first(user_defined_);
  sort_longest_first(controls_);
  if (options_.byte_fallback)
    for (int b = 0; b < 256; ++b)
      if (bytes_[b] < 0) fail("[sentencepiece] '", where, "' uses byte fallback but has no piece for byte ", b);
  if (!options_.byte_fallback && unk_ < 0)
    fail("[sentencepiece] '", where, "' has neither an unknown piece nor byte fallback");
}

std::shared_ptr<const SentencePiece> SentencePiece::from_model_proto(std::string_view bytes, const std::string& where) {
  ModelFields m;
  m.options.remove_extra_whitespaces = true;  // the proto's default, unlike GGUF's
  ProtoReader r(bytes, bytes.data(), where);
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field >= 1 && field <= 5 && field != 4) {
      r.want(field, wire, ProtoReader::kLen, "a ModelProto message");
      ProtoReader sub = r.sub(r.bytes());
      if (field == 1) read_piece(sub, m);
      else if (field == 2) read_trainer_spec(sub, m);
      else read_normalizer_spec(sub, m, field == 5);
    } else {
      r.skip(wire);
    }
  }
  if (m.pieces.empty()) fail("[sentencepiece] '", where, "' is not a valid SentencePiece model: it has no pieces");
  if (m.model_type != 2)
    fail("[sentencepiece] unsupported model type '", model_type_name(m.model_type), "' in '", where,
         "': only BPE-type models are supported");
  if (m.treat_whitespace_as_suffix)
    fail("[sentencepiece] unsupported option treat_whitespace_as_suffix in '", where, "'");
  if (!m.charsmap.empty())
    fail("[sentencepiece] unsupported normalization '", m.normalizer_name, "' in '", where,
         "': only identity (no precompiled_charsmap) is supported");
  if (!m.denormalizer_charsmap.empty()) fail("[sentencepiece] unsupported denormalization in '", where, "'");

  auto sp = std::make_shared<SentencePiece>(std::move(m.pieces), std::move(m.options), where);
  // As sentencepiece: bos/eos are the trainer's pieces when they are control pieces.
  for (auto [name, dst] : {std::pair{&m.bos_piece, &sp->bos_}, std::pair{&m.eos_piece, &sp->eos_}}) {
    auto it = sp->reserved_.find(*name);
    if (it != sp->reserved_.end() && sp->pieces_[static_cast<size_t>(it->second)].type == PieceType::control)
      *dst = it->second;
  }
  return sp;
}

std::shared_ptr<const SentencePiece> SentencePiece::from_gguf(const io::GGUFFile& g) {
  for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores"})
    if (!g.has_key(k)) fail("[sentencepiece] '", g.path(), "' has no ", k, " key");
  std::vector<std::string> tokens = g.get_string_array("tokenizer.ggml.tokens");
  std::vector<double> scores = g.get_float_array("tokenizer.ggml.scores");
  std::vector<int64_t> types;
  if (g.has_key("tokenizer.ggml.token_type")) types = g.get_int_array("tokenizer.ggml.token_type");
  else types.assign(tokens.size(), static_cast<int64_t>(PieceType::normal));
  if (scores.size() != tokens.size() || types.size() != tokens.size())
    fail("[sentencepiece] '", g.path(), "' has ", tokens.size(), " tokens but ", scores.size(), " scores and ",
         types.size(), " token types");

  Options o;
  o.add_dummy_prefix = g.get_bool("tokenizer.ggml.add_space_prefix", true);
  o.remove_extra_whitespaces = g.get_bool("tokenizer.ggml.remove_extra_whitespaces", false);
  std::vector<Piece> pieces(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] < 1 || types[i] > 6)
      fail("[sentencepiece] token ", i, " of '", g.path(), "' has unknown token type ", types[i]);
    pieces[i] = {std::move(tokens[i]), static_cast<float>(scores[i]), static_cast<PieceType>(types[i])};
    o.byte_fallback = o.byte_fallback || pieces[i].type == PieceType::byte;
  }
  auto sp = std::make_shared<SentencePiece>(std::move(pieces), std::move(o), g.path());
  auto n = static_cast<int64_t>(sp->pieces_.size());
  for (auto [key, dst] : {std::pair{"tokenizer.ggml.bos_token_id", &sp->bos_},
                          std::pair{"tokenizer.ggml.eos_token_id", &sp->eos_},
                          std::pair{"tokenizer.ggml.unknown_token_id", &sp->unk_}}) {
    int64_t v = g.get_int(key, *dst);
    if (v < -1 || v >= n)
      fail("[sentencepiece] ", key, " ", v, " in '", g.path(), "' is outside the vocabulary of ", n);
    *dst = static_cast<int32_t>(v);
  }
  if (sp->unk_ < 0 && !sp->options_.byte_fallback)
    fail("[sentencepiece] '", g.path(), "' has neither an unknown token nor byte fallback");
  return sp;
}

int32_t SentencePiece::id(std::string_view text) const {
  auto it = reserved_.find(text);
  if (it != reserved_.end()) return it->second;
  auto jt = mergeable_.find(text);
  return jt == mergeable_.end() ? -1 : jt->second;
}

bool SentencePiece::is_special(int32_t id) const {
  PieceType t = piece(id).type;
  return t == PieceType::control || t == PieceType::user_defined;
}

std::pair<size_t, int32_t> SentencePiece::match(const Candidates& c, std::string_view text, size_t pos) {
  auto it = c.find(static_cast<unsigned char>(text[pos]));
  if (it != c.end())
    for (const auto& [p, id] : it->second)  // longest first
      if (text.compare(pos, p.size(), p) == 0) return {p.size(), id};
  return {0, -1};
}

std::string SentencePiece::normalize(std::string_view text) const {
  // One unit: a user-defined piece, else a character, else a byte that is not UTF-8.
  auto unit = [&](size_t pos) {
    size_t m = match(user_defined_, text, pos).first;
    return m > 0 ? m : std::max<size_t>(1, utf8_valid_length(text, pos));
  };
  const bool strip = options_.remove_extra_whitespaces;
  const std::string_view space = options_.escape_whitespaces ? kSpaceSymbol : " ";
  std::string out;
  size_t pos = 0;
  while (strip && pos < text.size() && text.substr(pos, unit(pos)) == " ") ++pos;
  if (pos == text.size()) return out;
  out.reserve((text.size() - pos) * 2 + space.size());
  if (options_.add_dummy_prefix) out += space;
  bool prev_space = strip;
  while (pos < text.size()) {
    std::string_view u = text.substr(pos, unit(pos));
    pos += u.size();
    if (prev_space)
      while (!u.empty() && u[0] == ' ') u.remove_prefix(1);
    if (!u.empty()) {
      for (char c : u) {
        if (c == ' ') out += space;
        else out += c;
      }
      prev_space = strip && u.back() == ' ';
    }
  }
  if (strip)
    while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
      out.resize(out.size() - space.size());
  return out;
}

void SentencePiece::encode_fragment(std::string_view text, std::vector<int32_t>& out) const {
  const std::string norm = normalize(text);
  if (norm.empty()) return;
  const std::string_view all(norm);

  // One symbol per unit, in a linked list; a merge grows the left symbol and empties the right.
  struct Symbol {
    size_t begin, size;
    int prev, next;
    bool frozen;  // a user-defined piece: never merged
  };
  std::vector<Symbol> sym;
  for (size_t pos = 0; pos < norm.size();) {
    size_t m = match(user_defined_, all, pos).first;
    size_t n = m > 0 ? m : std::max<size_t>(1, utf8_valid_length(all, pos));
    int idx = static_cast<int>(sym.size());
    sym.push_back({pos, n, idx - 1, pos + n < norm.size() ? idx + 1 : -1, m > 0});
    pos += n;
  }
  auto view = [&](int i) { return all.substr(sym[static_cast<size_t>(i)].begin, sym[static_cast<size_t>(i)].size); };

  // Candidate merges, best score first and leftmost first among equal scores. Entries go stale
  // as neighbours merge; a popped entry counts only if both symbols are still as they were.
  struct Cand {
    float score;
    int left, right;
    size_t size;
  };
  auto worse = [](const Cand& a, const Cand& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> agenda(worse);
  // Unused pieces may be merged through but are not emitted: how to split them again.
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> unmerge;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0 || sym[static_cast<size_t>(l)].frozen || sym[static_cast<size_t>(r)].frozen) return;
    std::string_view merged = all.substr(sym[static_cast<size_t>(l)].begin,
                                         sym[static_cast<size_t>(l)].size + sym[static_cast<size_t>(r)].size);
    auto it = mergeable_.find(merged);
    if (it == mergeable_.end()) return;
    const Piece& p = pieces_[static_cast<size_t>(it->second)];
    agenda.push({p.score, l, r, merged.size()});
    if (p.type == PieceType::unused) unmerge[merged] = {view(l), view(r)};
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) consider(i - 1, i);

  while (!agenda.empty()) {
    Cand c = agenda.top();
    agenda.pop();
    Symbol& l = sym[static_cast<size_t>(c.left)];
    Symbol& r = sym[static_cast<size_t>(c.right)];
    if (l.size == 0 || r.size == 0 || l.size + r.size != c.size) continue;  // stale
    l.size += r.size;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.left;
    r.size = 0;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  bool prev_unknown = false;
  std::function<void(std::string_view)> emit = [&](std::string_view w) {
    int32_t found = id(w);  // reserved pieces first, as sentencepiece looks them up
    PieceType type = found < 0 ? PieceType::unknown : pieces_[static_cast<size_t>(found)].type;
    if (type == PieceType::unused) {
      auto it = unmerge.find(w);
      if (it != unmerge.end()) {
        emit(it->second.first);
        emit(it->second.second);
        return;
      }
    }
    bool unknown = type == PieceType::unknown;
    if (unknown && options_.byte_fallback) {
      for (char b : w) out.push_back(bytes_[static_cast<uint8_t>(b)]);
    } else if (!(unknown && prev_unknown)) {  // a run of unknowns is one unknown piece
      out.push_back(found < 0 ? unk_ : found);
    }
    prev_unknown = unknown;
  };
  for (int i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) emit(view(i));
}

void SentencePiece::encode(std::string_view text, std::vector<int32_t>& out) const {
  size_t start = 0;
  if (!controls_.empty()) {
    for (size_t i = 0; i < text.size(); ++i) {
      auto [len, id] = match(controls_, text, i);
      if (len == 0) continue;
      encode_fragment(text.substr(start, i - start), out);
      out.push_back(id);
      start = i + len;
      i = start - 1;
    }
  }
  encode_fragment(text.substr(start), out);
}

std::string SentencePiece::piece_bytes(int32_t id) const {
  const Piece& p = piece(id);
  switch (p.type) {
    case PieceType::control: return p.text;
    case PieceType::unknown: return options_.unk_surface;
    case PieceType::byte: return std::string(1, static_cast<char>(byte_value(p.text)));
    default: return unescape_spaces(p.text);
  }
}

std::string SentencePiece::decode_next(int32_t id, DecodeState& st) const {
  const Piece& p = piece(id);
  if (p.type == PieceType::control) {
    st = DecodeState{};  // the text after it starts afresh, as encode gave it its own dummy prefix
    return p.text;
  }
  if (p.type == PieceType::byte) {
    st.any_text = true;
    return piece_bytes(id);
  }
  if (st.space_seen || st.any_text) st.at_start = false;
  std::string out;
  if (p.type == PieceType::unknown) {
    out = options_.unk_surface;
    st.space_seen = false;
  } else {
    std::string_view t = p.text;
    bool consumed = false;
    if (st.at_start && (options_.add_dummy_prefix || options_.remove_extra_whitespaces) &&
        t.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      t.remove_prefix(kSpaceSymbol.size());
      consumed = true;
    }
    // With remove_extra_whitespaces every leading space goes, else only the first.
    st.space_seen = consumed && !options_.remove_extra_whitespaces;
    out = unescape_spaces(t);
  }
  st.any_text = st.any_text || !out.empty();
  return out;
}

}  // namespace kiln::text
