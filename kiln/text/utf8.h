// UTF-8 helpers for the tokenizer: validation, code point encode/decode, and the split of a
// byte string into its valid runs and stray bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::text {

// Bytes in the sequence that `lead` starts: 1-4, or 0 when `lead` cannot start one
// (a continuation byte, 0xC0/0xC1, or 0xF5-0xFF).
size_t utf8_sequence_length(uint8_t lead);

// Length of the well-formed sequence starting at s[pos] (1-4), or 0 when the bytes there are
// not one (bad lead, bad or missing continuation, overlong, surrogate, above U+10FFFF).
size_t utf8_valid_length(std::string_view s, size_t pos);

// True when `s` is entirely well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// Appends code point `cp` (<= 0x10FFFF) as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// Decodes the well-formed sequence at s[pos], advancing `pos`. The caller checks validity first.
uint32_t next_code_point(std::string_view s, size_t& pos);

// How many bytes at the end of `s` are the start of a sequence that more bytes could still
// complete (0-3): the streaming decoder holds these back.
size_t utf8_incomplete_tail(std::string_view s);

// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string utf8_replace_invalid(std::string_view s);

}  // namespace kiln::text
