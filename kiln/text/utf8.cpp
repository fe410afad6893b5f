#include "kiln/text/utf8.h"

namespace kiln::text {

size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

namespace {
bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// The allowed range of the second byte, which is where overlongs, surrogates and code points
// above U+10FFFF are excluded (Unicode table 3-7).
bool second_ok(uint8_t lead, uint8_t b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return is_cont(b);
}
}  // namespace

size_t utf8_valid_length(std::string_view s, size_t pos) {
  auto lead = static_cast<uint8_t>(s[pos]);
  size_t n = utf8_sequence_length(lead);
  if (n <= 1) return n;
  if (pos + n > s.size()) return 0;
  if (!second_ok(lead, static_cast<uint8_t>(s[pos + 1]))) return 0;
  for (size_t k = 2; k < n; ++k)
    if (!is_cont(static_cast<uint8_t>(s[pos + k]))) return 0;
  return n;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_valid_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t next_code_point(std::string_view s, size_t& pos) {
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + k])); };
  size_t n = utf8_sequence_length(static_cast<uint8_t>(s[pos]));
  uint32_t cp;
  if (n == 1) cp = b(0);
  else if (n == 2) cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  else if (n == 3) cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  else cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  pos += n == 0 ? 1 : n;
  return cp;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end, and check that
  // the bytes present so far could still be well-formed.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    size_t pos = s.size() - back;
    auto lead = static_cast<uint8_t>(s[pos]);
    if (is_cont(lead)) continue;
    size_t n = utf8_sequence_length(lead);
    if (n <= back) return 0;  // complete (or invalid): nothing to wait for
    if (back >= 2 && !second_ok(lead, static_cast<uint8_t>(s[pos + 1]))) return 0;
    return back;
  }
  return 0;
}

std::string utf8_replace_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_valid_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace kiln::text
