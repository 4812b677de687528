// Added tokens of tokenizer.json ("added_tokens"): special and ordinary tokens that are cut out
// of the text before the model runs, as tokenizers' AddedVocabulary does. Tokens with
// normalized=false are matched in the raw text, the others in the normalized text; at each
// position the leftmost, then longest, token wins; lstrip/rstrip swallow adjacent whitespace and
// single_word requires word boundaries around the match.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/tokenizer/json_node.h"
#include "lib/tokenizer/normalizers.h"
#include "lib/tokenizer/regex.h"

namespace presso {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool lstrip;
  bool rstrip;
  bool single_word;
  bool normalized;
};

// A piece of the input after added tokens are cut out: either one added token (id >= 0) or
// normalized text for the pre-tokenizer (id == -1).
struct TextSegment {
  std::string text;
  int32_t id;
  bool starts_text;  // begins at offset 0 of the input
};

class AddedVocabulary {
 public:
  // Reads the "added_tokens" array (null or absent means none).
  explicit AddedVocabulary(const JsonNode& added_tokens);

  // Cuts `text` (valid UTF-8) at added tokens and normalizes the rest with `normalizer` (may be
  // null).
  std::vector<TextSegment> split(const std::string& text, const Normalizer* normalizer) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* find(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Finds added tokens among a subset (normalized or not) of the vocabulary.
  class Matcher {
   public:
    void add(const AddedToken* token);
    // The leftmost-longest token starting at or after `from`, with its start, or nullptr.
    const AddedToken* find(std::string_view text, size_t from, size_t& start) const;
    bool empty() const { return count_ == 0; }

   private:
    std::array<std::vector<const AddedToken*>, 256> by_first_byte_;  // longest first
    size_t count_ = 0;
  };

  // Appends the pieces of `text` cut at the tokens of `matcher`, as in tokenizers' find_matches.
  void cut(const std::string& text, bool starts_text, const Matcher& matcher,
           std::vector<TextSegment>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> ids_by_content_;
  std::unordered_map<int32_t, size_t> index_by_id_;
  Matcher raw_matcher_;
  Matcher normalized_matcher_;
  Regex word_character_;
};

}  // namespace presso
