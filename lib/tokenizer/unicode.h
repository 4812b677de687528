// UTF-8 and Unicode helpers for the tokenizer: lossy UTF-8 repair as Rust's
// String::from_utf8_lossy does it, code point iteration, normalization forms and lowercasing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace presso::unicode {

// `bytes` with each maximal invalid subsequence replaced by U+FFFD (the Unicode "substitution of
// maximal subparts" practice, which Rust's from_utf8_lossy follows). Valid input is returned as is.
std::string to_valid_utf8(std::string_view bytes);

// Length in bytes of the UTF-8 sequence whose lead byte is `lead` (valid input assumed).
inline size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at s[pos] (valid UTF-8 assumed) and advances pos past it.
char32_t next_code_point(std::string_view s, size_t& pos);

void append_utf8(std::string& out, char32_t code_point);

// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t c);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Unicode normalization (UAX #15) of valid UTF-8.
std::string normalize(std::string_view s, NormalForm form);

// Per-code-point lowercasing as Rust's char::to_lowercase (no context-dependent final sigma).
std::string lowercase(std::string_view s);

}  // namespace presso::unicode
