// Self-contained tokenizer tests: error messages, UTF-8 repair, normalization, pre-tokenizer
// split behaviors, BPE merge order and added tokens, on small hand-written tokenizer.json files.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lib/common/errors.h"
#include "lib/tokenizer/pre_tokenizers.h"
#include "lib/tokenizer/tokenizer.h"
#include "lib/tokenizer/unicode.h"

namespace {

using nlohmann::json;
using presso::Tokenizer;

// A BPE tokenizer over the characters a, b, c, d, space with merges a+b, ab+c (in that order).
json small_bpe() {
  return json::parse(R"({
    "version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
    "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "d": 3, " ": 4, "ab": 5, "abc": 6, "bc": 7},
              "merges": ["a b", ["ab", "c"], "b c"]}})");
}

std::string error_of(const json& config) {
  try {
    Tokenizer::from_json(config.dump(), "tokenizer.json");
  } catch (const presso::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<std::string> pre_tokenize(const json& config, const std::string& text) {
  const auto tokenizer = presso::make_pre_tokenizer(presso::JsonNode(config, "t.json", "p"));
  std::vector<presso::PreToken> pieces{{text, true}};
  tokenizer->pre_tokenize(pieces);
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

}  // namespace

TEST_CASE("malformed tokenizer.json gives a UserError naming the key", "[unit]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(Tokenizer::from_json("{\"model\": ", "tokenizer.json"), presso::UserError);
  CHECK_THAT(error_of(json::parse("[1, 2]")), Contains("tokenizer.json"));
  json config = small_bpe();
  config.erase("model");
  CHECK_THAT(error_of(config), Contains("'model'") && Contains("missing"));
  config = small_bpe();
  config["model"]["type"] = "WordPiece";
  CHECK_THAT(error_of(config), Contains("model.type") && Contains("WordPiece"));
  config = small_bpe();
  config["pre_tokenizer"] = {{"type", "Sentencepiece"}};
  CHECK_THAT(error_of(config), Contains("pre_tokenizer.type") && Contains("Sentencepiece"));
  config = small_bpe();
  config["model"]["merges"].push_back("a zz");
  CHECK_THAT(error_of(config), Contains("model.merges[3]") && Contains("zz"));
  config = small_bpe();
  config["model"]["unk_token"] = "<unk>";
  CHECK_THAT(error_of(config), Contains("model.unk_token"));
  config = small_bpe();
  config["pre_tokenizer"] = {{"type", "Split"},
                             {"pattern", {{"Regex", "(unclosed"}}},
                             {"behavior", "Isolated"},
                             {"invert", false}};
  CHECK_THAT(error_of(config), Contains("pre_tokenizer.pattern.Regex"));
  config = small_bpe();
  config["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Bogus"}}}}};
  CHECK_THAT(error_of(config), Contains("normalizer.normalizers[0].type"));
}

TEST_CASE("invalid UTF-8 becomes U+FFFD per maximal invalid subsequence", "[unit]") {
  using presso::unicode::to_valid_utf8;
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(to_valid_utf8("ok \xC3\xA9") == "ok \xC3\xA9");
  CHECK(to_valid_utf8("\xC3\x28") == fffd + "(");
  CHECK(to_valid_utf8("a\xF0\x9F\x98") == "a" + fffd);         // truncated emoji: one
  CHECK(to_valid_utf8("\xED\xA0\x80") == fffd + fffd + fffd);  // surrogate: one per byte
  CHECK(to_valid_utf8("\xC0\xAF\xFF") == fffd + fffd + fffd);  // overlong, invalid lead
  CHECK(to_valid_utf8("\xE2\x82") == fffd);
  // Encoding never fails on such input; the byte-level decoder repairs the same way.
  json config = small_bpe();
  const Tokenizer tokenizer = Tokenizer::from_json(config.dump(), "t.json");
  // U+FFFD is not in the vocabulary and there is no unk_token: dropped, then a+b+c merge.
  CHECK(tokenizer.encode("ab\xFF"
                         "c",
                         false) == std::vector<int32_t>{6});
}

TEST_CASE("empty text encodes to nothing and decodes from nothing", "[unit]") {
  const Tokenizer tokenizer = Tokenizer::from_json(small_bpe().dump(), "t.json");
  CHECK(tokenizer.encode("", false).empty());
  CHECK(tokenizer.encode("", true).empty());
  CHECK(tokenizer.decode({}, false).empty());
}

TEST_CASE("BPE applies merges by rank, leftmost first", "[unit]") {
  const Tokenizer tokenizer = Tokenizer::from_json(small_bpe().dump(), "t.json");
  // "abc": a+b (rank 0) beats b+c (rank 2), then ab+c.
  CHECK(tokenizer.encode("abc", false) == std::vector<int32_t>{6});
  CHECK(tokenizer.encode("abcbc d", false) == std::vector<int32_t>{6, 7, 4, 3});
  CHECK(tokenizer.vocab_size() == 8);
  CHECK(tokenizer.token_to_id("abc") == 6);
  CHECK(tokenizer.id_to_token(7) == std::optional<std::string>("bc"));
  CHECK(!tokenizer.id_to_token(99));
  // No decoder: tokens joined by spaces; unknown ids skipped.
  CHECK(tokenizer.decode({6, 99, 4}, false) == "abc  ");
}

TEST_CASE("added tokens are cut out before the model, longest first, with lstrip/rstrip",
          "[unit]") {
  json config = small_bpe();
  config["model"]["vocab"]["<x>"] = 8;
  config["added_tokens"] = json::parse(R"([
    {"id": 8, "content": "<x>", "special": true, "normalized": false},
    {"id": 9, "content": "<x>>", "special": false, "normalized": false, "lstrip": true,
     "rstrip": true}])");
  config["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<x>", "type_id": 0}}, {"Sequence": {"id": "A"}}],
    "pair": [], "special_tokens": {"<x>": {"id": "<x>", "ids": [8], "tokens": ["<x>"]}}})");
  const Tokenizer tokenizer = Tokenizer::from_json(config.dump(), "t.json");
  CHECK(tokenizer.encode("ab<x>c", false) == std::vector<int32_t>{5, 8, 2});
  CHECK(tokenizer.encode("ab  <x>>  c", false) == std::vector<int32_t>{5, 9, 2});
  CHECK(tokenizer.encode("ab", true) == std::vector<int32_t>{8, 5});
  CHECK(tokenizer.vocab_size() == 10);
  CHECK(tokenizer.decode({8, 5, 9}, true) == "ab <x>>");
}

TEST_CASE("Split pre-tokenizer honours every behavior", "[unit]") {
  const auto split = [](const char* behavior, bool invert = false) {
    return pre_tokenize({{"type", "Split"},
                         {"pattern", {{"String", "-"}}},
                         {"behavior", behavior},
                         {"invert", invert}},
                        "the-final--countdown");
  };
  using V = std::vector<std::string>;
  CHECK(split("Removed") == V{"the", "final", "countdown"});
  CHECK(split("Isolated") == V{"the", "-", "final", "-", "-", "countdown"});
  CHECK(split("MergedWithPrevious") == V{"the-", "final-", "-", "countdown"});
  CHECK(split("MergedWithNext") == V{"the", "-final", "-", "-countdown"});
  CHECK(split("Contiguous") == V{"the", "-", "final", "--", "countdown"});
  CHECK(split("Removed", true) == V{"-", "-", "-"});
}

TEST_CASE("Metaspace, Digits and ByteLevel pre-tokenizers", "[unit]") {
  using V = std::vector<std::string>;
  const json metaspace = {{"type", "Metaspace"},
                          {"replacement", "\u2581"},
                          {"prepend_scheme", "always"},
                          {"split", true}};
  CHECK(pre_tokenize(metaspace, "Hey friend") == V{"\u2581Hey", "\u2581friend"});
  CHECK(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "a12") == V{"a", "1", "2"});
  CHECK(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "a12") == V{"a", "12"});
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  CHECK(pre_tokenize(byte_level, "Hi  you's") == V{"Hi", "\xC4\xA0", "\xC4\xA0you", "'s"});
  // U+0085 is whitespace to Oniguruma's \s (tokenizers' engine), so NEL + space is one run.
  CHECK(pre_tokenize(byte_level, "x\xC2\x85 ") == V{"x", "\xC3\x82\xC4\xA7\xC4\xA0"});
}

TEST_CASE("Unicode normalization forms compose, decompose and reorder", "[unit]") {
  using presso::unicode::NormalForm;
  using presso::unicode::normalize;
  CHECK(normalize("e\xCC\x81", NormalForm::kNFC) == "\xC3\xA9");  // e + acute
  CHECK(normalize("\xC3\xA9", NormalForm::kNFD) == "e\xCC\x81");
  CHECK(normalize("\xEF\xAC\x81", NormalForm::kNFKC) == "fi");  // ligature
  CHECK(normalize("\xEF\xAC\x81", NormalForm::kNFC) == "\xEF\xAC\x81");
  CHECK(normalize("\xE1\x84\x80\xE1\x85\xA1", NormalForm::kNFC) == "\xEA\xB0\x80");  // Hangul
  CHECK(normalize("\xEA\xB0\x81", NormalForm::kNFD) == "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  // dot below (class 220) sorts before dot above (230); NFC then composes to U+1E69.
  CHECK(normalize("s\xCC\x87\xCC\xA3", NormalForm::kNFC) == "\xE1\xB9\xA9");
  CHECK(presso::unicode::lowercase("\xC3\x89T\xC3\x89") == "\xC3\xA9t\xC3\xA9");
}
