#include "lib/tokenizer/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/tokenizer/added_vocabulary.h"
#include "lib/tokenizer/bpe_model.h"
#include "lib/tokenizer/decoders.h"
#include "lib/tokenizer/json_node.h"
#include "lib/tokenizer/normalizers.h"
#include "lib/tokenizer/post_processors.h"
#include "lib/tokenizer/pre_tokenizers.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

// The value at `key`, or a null node when the key is absent.
JsonNode child_or_null(const JsonNode& root, const char* key) {
  static const nlohmann::json null_value;
  return root.has(key) ? root.at(key) : JsonNode(null_value, "", key);
}

}  // namespace

struct Tokenizer::Impl {
  explicit Impl(const JsonNode& root)
      : model(root.at("model")), added(child_or_null(root, "added_tokens")) {
    if (root.has("normalizer")) normalizer = make_normalizer(root.at("normalizer"));
    if (root.has("pre_tokenizer")) pre_tokenizer = make_pre_tokenizer(root.at("pre_tokenizer"));
    if (root.has("post_processor")) post_processor = make_post_processor(root.at("post_processor"));
    if (root.has("decoder")) decoder = make_decoder(root.at("decoder"));
    std::unordered_set<int32_t> ids;
    for (const auto& entry : model.vocab()) ids.insert(entry.second);
    for (const AddedToken& token : added.tokens()) ids.insert(token.id);
    vocab_size = ids.size();
  }

  BpeModel model;
  AddedVocabulary added;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  size_t vocab_size = 0;
};

Tokenizer Tokenizer::from_json(const std::string& json_text, const std::string& source_name) {
  const auto root = parse_json_input(json_text, source_name);
  const JsonNode node(root, source_name, "");
  if (!root.is_object()) node.fail("expected a JSON object at the top level");
  return Tokenizer(std::make_shared<const Impl>(node));
}

Tokenizer Tokenizer::from_file(const std::string& tokenizer_json) {
  return from_json(read_file_bytes(tokenizer_json), tokenizer_json);
}

Tokenizer Tokenizer::from_model_dir(const std::string& dir) {
  const std::filesystem::path path = std::filesystem::path(dir) / "tokenizer.json";
  if (!std::filesystem::exists(path))
    fail_user("{}: no tokenizer.json in this model directory", dir);
  return from_file(path.string());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& impl = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  std::vector<PreToken> words;
  for (TextSegment& segment :
       impl.added.split(unicode::to_valid_utf8(text), impl.normalizer.get())) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    words.clear();
    words.push_back({std::move(segment.text), segment.starts_text});
    if (impl.pre_tokenizer) impl.pre_tokenizer->pre_tokenize(words);
    for (const PreToken& word : words) impl.model.tokenize(word.text, ids);
  }
  if (add_special_tokens && impl.post_processor) impl.post_processor->add_special_tokens(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* added = impl_->added.find(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
    } else if (const std::string* token = impl_->model.id_to_token(id)) {
      tokens.push_back(*token);
    }
  }
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    std::string text;
    for (const std::string& token : tokens) text += token;
    return text;
  }
  // Without a decoder, tokenizers joins the tokens with spaces.
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  return text;
}

std::vector<std::string> Tokenizer::ids_to_tokens(const std::vector<int32_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.push_back(id_to_token(id).value_or(""));
  return tokens;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.token_to_id(token)) return id;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = impl_->added.find(id)) return added->content;
  if (const std::string* token = impl_->model.id_to_token(id)) return *token;
  return std::nullopt;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

}  // namespace presso
