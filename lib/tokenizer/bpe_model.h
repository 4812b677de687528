// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocabulary, ranked merges,
// byte fallback, unknown-token handling and a per-word cache. It turns one pre-token into ids.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/tokenizer/json_node.h"

namespace presso {

class BpeModel {
 public:
  // Reads the "model" object; UserError for other model types or inconsistent merges.
  explicit BpeModel(const JsonNode& model);

  // Appends the ids of `word` (one pre-token, valid UTF-8) to `ids`.
  void tokenize(const std::string& word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr when `id` is not in the vocabulary.
  const std::string* id_to_token(int32_t id) const;
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  void read_vocab(const JsonNode& vocab);
  void read_merges(const JsonNode& merges);
  // The id of `text` (a single character plus any prefix/suffix), or -1.
  int32_t symbol_id(std::string_view text) const;
  // Through the cache (when short enough) and merge_word.
  void tokenize_word(std::string_view word, std::vector<int32_t>& ids) const;
  // Cuts a long word where no merge can cross and tokenizes each chunk; see crossable_pairs_.
  void tokenize_in_chunks(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_by_id_;  // "" where an id is unused
  std::vector<bool> id_used_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::unordered_map<char32_t, int32_t> char_ids_;  // single-character tokens, for speed
  // (last character of left, first character of right) of every merge, as pair_key of the two
  // code points. A merge across the boundary between characters a|b needs (a, b) in this set,
  // so BPE on the two sides of any other boundary is independent: a long word (a whole
  // document, for tokenizers without a pre-tokenizer such as Llama 2's) is cut there.
  std::unordered_set<uint64_t> crossable_pairs_;
  std::array<int32_t, 256> byte_fallback_ids_{};  // <0xXX> tokens, -1 where absent
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  // Words seen before and their ids; bounded so that huge inputs do not grow it without end.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace presso
