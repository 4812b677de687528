// tokenizer.json contents that used to hang presso, crash it with an internal error or exhaust
// its memory: a pattern that backtracks catastrophically, Sequences nested 10k levels deep, an id
// of 2^31, and a FIFO in place of the file.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/temp_dir.h"
#include "tests/user_error.h"

namespace {

using Catch::Matchers::Contains;
using nlohmann::json;
using presso::Tokenizer;
using presso::test::user_error_of;

// A BPE tokenizer over a, b, x and space, with these components (JSON text).
std::string tokenizer_json(const std::string& pre_tokenizer, const std::string& normalizer = "null",
                           const std::string& decoder = "null") {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": )" + normalizer +
         R"(, "pre_tokenizer": )" + pre_tokenizer + R"(, "post_processor": null, "decoder": )" +
         decoder + R"(, "model": {"type": "BPE", "dropout": null, "unk_token": null,
    "byte_fallback": false, "vocab": {"a": 0, "b": 1, "x": 2, " ": 3}, "merges": []}})";
}

// `depth` Sequences of `type`s, each holding the next under `list_key`, around `innermost`.
std::string nested_sequences(const std::string& list_key, int depth, const std::string& innermost) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += R"({"type": "Sequence", ")" + list_key + R"(": [)";
  text += innermost;
  for (int i = 0; i < depth; ++i) text += "]}";
  return text;
}

}  // namespace

TEST_CASE("a tokenizer.json regex that backtracks catastrophically is a user error", "[unit]") {
  // Was "internal error: regex match failed: match limit exceeded" (exit 3).
  const Tokenizer tokenizer = Tokenizer::from_json(
      tokenizer_json(
          R"({"type": "Split", "pattern": {"Regex": "(a+)+[bc]"}, "behavior": "Isolated",
              "invert": false})"),
      "m/tokenizer.json");
  CHECK(tokenizer.encode("aab", false) == std::vector<int32_t>{0, 0, 1});
  CHECK_THAT(user_error_of([&] { tokenizer.encode(std::string(64, 'a') + "x", false); }),
             Contains("m/tokenizer.json: key 'pre_tokenizer.pattern.Regex'") &&
                 Contains("(a+)+[bc]") && Contains("backtracks catastrophically"));
}

TEST_CASE("Sequences nested 10k levels deep are refused at once naming tokenizer.json", "[unit]") {
  // Each level kept a copy of its key path: 2.1 GB at depth 10k, bad_alloc at 20k.
  const std::string split = R"({"type": "WhitespaceSplit"})";
  const std::vector<std::string> deep = {
      tokenizer_json(nested_sequences("pretokenizers", 10000, split)),
      tokenizer_json("null", nested_sequences("normalizers", 10000, R"({"type": "Lowercase"})")),
      tokenizer_json("null", "null", nested_sequences("decoders", 10000, R"({"type": "Fuse"})"))};
  for (const std::string& text : deep) {
    CHECK_THAT(user_error_of([&] { Tokenizer::from_json(text, "m/tokenizer.json"); }),
               Contains("m/tokenizer.json") && Contains("nests deeper"));
  }
  // A few levels, as real tokenizers have, still load.
  CHECK_NOTHROW(Tokenizer::from_json(tokenizer_json(nested_sequences("pretokenizers", 8, split)),
                                     "m/tokenizer.json"));
}

TEST_CASE("a vocabulary id far beyond any vocabulary is refused before allocating", "[unit]") {
  json config = json::parse(tokenizer_json("null"));
  config["model"]["vocab"]["huge"] = int64_t{1} << 31;
  CHECK_THAT(user_error_of([&] { Tokenizer::from_json(config.dump(), "m/tokenizer.json"); }),
             Contains("m/tokenizer.json") && Contains("'huge'"));
}

TEST_CASE("a FIFO named tokenizer.json is refused instead of blocking", "[unit]") {
  presso::test::TempDir dir("fifo_tokenizer");
  REQUIRE(::mkfifo(dir.file("tokenizer.json").c_str(), 0600) == 0);
  CHECK_THAT(user_error_of([&] { Tokenizer::from_model_dir(dir.path.string()); }),
             Contains("tokenizer.json") && Contains("FIFO"));
}
