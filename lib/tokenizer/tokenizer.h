// lib/tokenizer: Hugging Face tokenizer.json tokenizers, exactly as the Rust `tokenizers` library
// encodes and decodes (BPE models: GPT-2/OPT, Llama 1/2/3, Mistral, Qwen2/3). Owns text -> ids and
// ids -> text; knows nothing of tensors or models. May include lib/common, nlohmann-json and
// PCRE2 only (no LibTorch).
//
// Pipeline of encode (tokenizers' encode_single_sequence): invalid UTF-8 is repaired (U+FFFD per
// maximal invalid subsequence) -> added tokens are cut out -> the rest is normalized ->
// pre-tokenized into words -> each word goes through the BPE model -> the post-processor adds
// special tokens when asked.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presso {

class Tokenizer {
 public:
  // Reads a tokenizer.json; UserError naming the file and the key for anything malformed or
  // unsupported (e.g. a WordPiece or Unigram model).
  static Tokenizer from_file(const std::string& tokenizer_json);
  // dir/tokenizer.json.
  static Tokenizer from_model_dir(const std::string& dir);
  // A tokenizer.json given as text; `source_name` stands for the file name in error messages.
  static Tokenizer from_json(const std::string& json_text, const std::string& source_name);

  // Thread-safe. add_special_tokens applies the post-processor (e.g. prepends BOS).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Unknown ids are skipped, as tokenizers does; skip_special_tokens drops special added tokens.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  // The vocabulary string of each id ("" for an unknown id).
  std::vector<std::string> ids_to_tokens(const std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // Distinct ids of the model vocabulary and the added tokens together.
  size_t vocab_size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// `presso tokenize`: what to tokenize and how to print it.
enum class TokenFormat { kIds, kTokens, kJson };

struct TokenizeOptions {
  std::string tokenizer_path;  // a model directory or a tokenizer.json
  std::optional<std::string> text;
  std::optional<std::string> file;  // read the text from this file instead
  bool add_special_tokens = false;
  TokenFormat format = TokenFormat::kIds;
};

// Tokenizes options.text, else the contents of options.file, else all of `input`, and prints
//   ids:    the ids separated by single spaces, on one line
//   tokens: the token strings separated by single spaces, on one line
//   json:   {"ids": [...], "tokens": [...], "decoded": "..."} (decoded keeps special tokens)
void tokenize_command(const TokenizeOptions& options, std::istream& input, std::ostream& out);

}  // namespace presso
