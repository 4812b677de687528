#include "lib/tokenizer/unicode.h"

#include <algorithm>
#include <vector>

#include "lib/tokenizer/unicode_tables.h"

namespace presso::unicode {
namespace {

namespace tables = presso::unicode_tables;

constexpr char32_t kReplacement = 0xFFFD;

// Hangul syllable arithmetic (Unicode 15, section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28;
constexpr int kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Length of the valid UTF-8 prefix of s[pos..] that is one complete code point, or 0 with
// `consumed` set to the length of the maximal invalid subpart (at least 1).
size_t valid_sequence_at(std::string_view s, size_t pos, size_t& consumed) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    consumed = 1;
    return 0;
  }
  size_t i = 1;
  for (; i < length && pos + i < s.size(); ++i) {
    const unsigned char b = byte(pos + i);
    const bool ok = i == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
  }
  if (i == length) return length;
  consumed = i;
  return 0;
}

uint8_t combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const auto* begin = tables::kCombiningClasses;
  const auto* end = begin + tables::kCombiningClasses_size;
  const auto* it = std::lower_bound(
      begin, end, c, [](const tables::CombiningClass& e, char32_t v) { return e.code_point < v; });
  return it != end && it->code_point == c ? it->combining_class : 0;
}

const tables::Decomposition* find_decomposition(char32_t c) {
  if (c < 0xA0) return nullptr;
  const auto* begin = tables::kDecompositions;
  const auto* end = begin + tables::kDecompositions_size;
  const auto* it = std::lower_bound(
      begin, end, c, [](const tables::Decomposition& e, char32_t v) { return e.code_point < v; });
  return it != end && it->code_point == c ? it : nullptr;
}

void decompose(char32_t c, bool compat, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const int index = static_cast<int>(c - kSBase);
    out.push_back(kLBase + index / kNCount);
    out.push_back(kVBase + (index % kNCount) / kTCount);
    if (index % kTCount != 0) out.push_back(kTBase + index % kTCount);
    return;
  }
  const tables::Decomposition* d = find_decomposition(c);
  if (d != nullptr) {
    const size_t offset = compat ? d->compat_offset : d->canonical_offset;
    const size_t size = compat ? d->compat_size : d->canonical_size;
    if (size > 0) {
      out.insert(out.end(), tables::kDecompositionData + offset,
                 tables::kDecompositionData + offset + size);
      return;
    }
  }
  out.push_back(c);
}

// The primary composite of (first, second), or 0 when there is none.
char32_t compose_pair(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const auto* begin = tables::kCompositions;
  const auto* end = begin + tables::kCompositions_size;
  const auto* it =
      std::lower_bound(begin, end, std::make_pair(first, second),
                       [](const tables::Composition& e, std::pair<char32_t, char32_t> v) {
                         return std::make_pair(e.first, e.second) < v;
                       });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

// Stable sort of every run of non-starters by combining class (canonical ordering).
void canonical_order(std::vector<char32_t>& cps) {
  size_t i = 0;
  while (i < cps.size()) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }
}

// Canonical composition: a character composes with the last starter unless a character in
// between has a combining class >= its own (it is "blocked").
void compose(std::vector<char32_t>& cps) {
  if (cps.empty()) return;
  size_t starter_pos = 0;
  int last_class = combining_class(cps[0]) == 0 ? 0 : 256;
  size_t out = 1;
  for (size_t i = 1; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    const int c_class = combining_class(c);
    const char32_t composite = compose_pair(cps[starter_pos], c);
    if (composite != 0 && (last_class < c_class || last_class == 0)) {
      cps[starter_pos] = composite;
      continue;
    }
    if (c_class == 0) starter_pos = out;
    last_class = c_class;
    cps[out++] = c;
  }
  cps.resize(out);
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  size_t pos = 0;
  size_t consumed = 0;
  for (size_t n; pos < bytes.size() && (n = valid_sequence_at(bytes, pos, consumed)) != 0;)
    pos += n;
  if (pos == bytes.size()) return std::string(bytes);
  std::string out(bytes.substr(0, pos));
  while (pos < bytes.size()) {
    const size_t n = valid_sequence_at(bytes, pos, consumed);
    if (n != 0) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      append_utf8(out, kReplacement);
      pos += consumed;
    }
  }
  return out;
}

char32_t next_code_point(std::string_view s, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]) & 0x3Fu; };
  const unsigned char lead = static_cast<unsigned char>(s[pos]);
  char32_t c;
  switch (sequence_length(lead)) {
    case 1:
      c = lead;
      break;
    case 2:
      c = ((lead & 0x1Fu) << 6) | byte(pos + 1);
      break;
    case 3:
      c = ((lead & 0x0Fu) << 12) | (byte(pos + 1) << 6) | byte(pos + 2);
      break;
    default:
      c = ((lead & 0x07u) << 18) | (byte(pos + 1) << 12) | (byte(pos + 2) << 6) | byte(pos + 3);
  }
  pos += sequence_length(lead);
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::string normalize(std::string_view s, NormalForm form) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(s);
  const bool compat = form == NormalForm::kNFKC || form == NormalForm::kNFKD;
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) decompose(next_code_point(s, pos), compat, cps);
  canonical_order(cps);
  if (form == NormalForm::kNFC || form == NormalForm::kNFKC) compose(cps);
  std::string out;
  out.reserve(s.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = next_code_point(s, pos);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    } else if (c == 0x130) {  // SpecialCasing.txt: capital I with dot -> "i" + combining dot
      append_utf8(out, 'i');
      append_utf8(out, 0x307);
    } else {
      const auto* begin = unicode_tables::kLowercase;
      const auto* end = begin + unicode_tables::kLowercase_size;
      const auto* it = std::lower_bound(begin, end, c,
                                        [](const auto& e, char32_t v) { return e.code_point < v; });
      append_utf8(out, it != end && it->code_point == c ? it->mapped : c);
    }
  }
  return out;
}

}  // namespace presso::unicode
