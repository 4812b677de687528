#include "lib/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

// Byte offset where the run of whitespace that ends `text` begins.
size_t trailing_whitespace_start(std::string_view text) {
  size_t start = text.size();
  for (size_t pos = 0; pos < text.size();) {
    const size_t at = pos;
    if (!unicode::is_whitespace(unicode::next_code_point(text, pos))) {
      start = text.size();
    } else if (start == text.size()) {
      start = at;
    }
  }
  return start;
}

// Byte length of the run of whitespace that begins `text`.
size_t leading_whitespace_length(std::string_view text) {
  size_t end = 0;
  for (size_t pos = 0; pos < text.size();) {
    if (!unicode::is_whitespace(unicode::next_code_point(text, pos))) break;
    end = pos;
  }
  return end;
}

}  // namespace

void AddedVocabulary::Matcher::add(const AddedToken* token) {
  auto& bucket = by_first_byte_[static_cast<unsigned char>(token->content[0])];
  bucket.push_back(token);
  std::stable_sort(bucket.begin(), bucket.end(), [](const AddedToken* a, const AddedToken* b) {
    return a->content.size() > b->content.size();
  });
  ++count_;
}

const AddedToken* AddedVocabulary::Matcher::find(std::string_view text, size_t from,
                                                 size_t& start) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    for (const AddedToken* token : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const std::string& content = token->content;
      if (content.size() <= text.size() - pos &&
          std::memcmp(text.data() + pos, content.data(), content.size()) == 0) {
        start = pos;
        return token;
      }
    }
  }
  return nullptr;
}

AddedVocabulary::AddedVocabulary(const JsonNode& added_tokens)
    : word_character_(R"(\A\w)", added_tokens.where()) {
  if (added_tokens.is_null()) return;
  for (const JsonNode& entry : added_tokens.elements()) {
    AddedToken token{entry.string_at("content"),
                     0,
                     entry.bool_or("special", false),
                     entry.bool_or("lstrip", false),
                     entry.bool_or("rstrip", false),
                     entry.bool_or("single_word", false),
                     entry.bool_or("normalized", !entry.bool_or("special", false))};
    const int64_t id = entry.at("id").as_int();
    if (id < 0 || id > INT32_MAX) entry.at("id").fail("expected a non-negative 32-bit id");
    if (token.content.empty()) entry.at("content").fail("an added token cannot be empty");
    token.id = static_cast<int32_t>(id);
    tokens_.push_back(std::move(token));
  }
  // Pointers into tokens_ are taken only now that it no longer grows.
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    ids_by_content_[token.content] = token.id;
    index_by_id_[token.id] = i;
    (token.normalized ? normalized_matcher_ : raw_matcher_).add(&token);
  }
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  const auto it = ids_by_content_.find(std::string(content));
  if (it == ids_by_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  const auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::cut(const std::string& text, bool starts_text, const Matcher& matcher,
                          std::vector<TextSegment>& out) const {
  const auto is_word_at = [&](std::string_view s) {
    std::vector<Span> match;
    word_character_.find_all(s, match);
    return !match.empty();
  };
  size_t consumed = 0;  // end of the last token taken, with the whitespace it swallowed
  size_t search = 0;
  size_t start = 0;
  while (const AddedToken* token = matcher.find(text, search, start)) {
    size_t stop = start + token->content.size();
    // Matches do not overlap: the search goes on after this one even if it is rejected below.
    search = stop;
    if (token->single_word) {
      const std::string_view view(text);
      bool word_before = false;
      if (start > 0) {
        size_t previous = start - 1;  // back to the lead byte of the code point before the match
        while (previous > 0 && (static_cast<unsigned char>(text[previous]) & 0xC0) == 0x80)
          --previous;
        word_before = is_word_at(view.substr(previous));
      }
      if (word_before || (stop < text.size() && is_word_at(view.substr(stop)))) continue;
    }
    if (token->lstrip) {
      start =
          std::max(consumed, trailing_whitespace_start(std::string_view(text).substr(0, start)));
    }
    if (token->rstrip) stop += leading_whitespace_length(std::string_view(text).substr(stop));
    if (start > consumed)
      out.push_back({text.substr(consumed, start - consumed), -1, starts_text && consumed == 0});
    out.push_back({text.substr(start, stop - start), token->id, starts_text && start == 0});
    consumed = stop;
  }
  if (consumed < text.size() || text.empty())
    out.push_back({text.substr(consumed), -1, starts_text && consumed == 0});
}

std::vector<TextSegment> AddedVocabulary::split(const std::string& text,
                                                const Normalizer* normalizer) const {
  std::vector<TextSegment> raw;
  if (raw_matcher_.empty()) {
    raw.push_back({text, -1, true});
  } else {
    cut(text, true, raw_matcher_, raw);
  }
  std::vector<TextSegment> out;
  for (TextSegment& segment : raw) {
    if (segment.id >= 0) {
      out.push_back(std::move(segment));
      continue;
    }
    if (normalizer != nullptr) normalizer->normalize(segment.text);
    if (normalized_matcher_.empty()) {
      out.push_back(std::move(segment));
    } else {
      cut(segment.text, segment.starts_text, normalized_matcher_, out);
    }
  }
  return out;
}

}  // namespace presso
