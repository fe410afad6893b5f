#include "kiln/text/bpe.h"

#include <array>
#include <queue>

#include "kiln/errors.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

namespace {

struct ByteTable {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, int> to_byte;
  ByteTable() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      append_utf8(to_unicode[static_cast<size_t>(b)], cp);
      to_byte[cp] = b;
    }
  }
};

const ByteTable& table() {
  static const ByteTable t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return table().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) {
  auto it = table().to_byte.find(cp);
  return it == table().to_byte.end() ? -1 : it->second;
}

std::string bytes_to_unicode_string(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

BPE::BPE(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
         bool ignore_merges)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges) {
  ids_.reserve(vocab_.size());
  // The first id wins for a duplicated token text, as in llama.cpp's token_to_id map.
  for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int32_t>(i));
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    int32_t ia = id(a), ib = id(b), res = id(a + b);
    if (ia < 0 || ib < 0 || res < 0) continue;
    merges_.emplace(key(ia, ib), Merge{static_cast<int32_t>(r), res});  // first rank wins
  }
}

int32_t BPE::id(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

void BPE::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  std::string w(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(w);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= (1u << 18)) cache_.clear();  // bound memory on endless distinct input
  cache_.emplace(std::move(w), std::move(ids));
}

void BPE::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    int32_t whole = id(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  // One symbol per character, in a doubly linked list; merged symbols keep the left slot.
  struct Symbol {
    int32_t id;
    int prev, next;
  };
  std::vector<Symbol> sym;
  for (size_t pos = 0; pos < word.size();) {
    size_t n = utf8_valid_length(word, pos);
    if (n == 0) n = 1;
    std::string_view ch = word.substr(pos, n);
    int32_t t = id(ch);
    if (t < 0) fail("[tokenizer] character '", std::string(ch), "' of word '", std::string(word),
                    "' is not in the vocabulary");
    int idx = static_cast<int>(sym.size());
    sym.push_back({t, idx - 1, -1});
    if (idx > 0) sym[static_cast<size_t>(idx - 1)].next = idx;
    pos += n;
  }

  // Candidate merges, lowest rank first and leftmost first among equal ranks. Entries go
  // stale as neighbours merge; a popped entry counts only if its pair is still there.
  struct Cand {
    int32_t rank;
    int pos;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
  auto push = [&](int left) {
    if (left < 0) return;
    int right = sym[static_cast<size_t>(left)].next;
    if (right < 0) return;
    auto it = merges_.find(key(sym[static_cast<size_t>(left)].id, sym[static_cast<size_t>(right)].id));
    if (it != merges_.end()) queue.push({it->second.rank, left});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push(i);

  while (!queue.empty()) {
    Cand c = queue.top();
    queue.pop();
    Symbol& left = sym[static_cast<size_t>(c.pos)];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or no right neighbour now
    Symbol& right = sym[static_cast<size_t>(left.next)];
    auto it = merges_.find(key(left.id, right.id));
    if (it == merges_.end() || it->second.rank != c.rank) continue;  // stale
    left.id = it->second.result;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = c.pos;
    push(left.prev);
    push(c.pos);
  }
  for (int i = 0; i >= 0 && !sym.empty(); i = sym[static_cast<size_t>(i)].next) out.push_back(sym[static_cast<size_t>(i)].id);
}

}  // namespace kiln::text
