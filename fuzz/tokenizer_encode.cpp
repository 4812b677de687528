// The real tokenizers of the fixtures on arbitrary text and arbitrary ids. The first input byte
// picks the tokenizer, the rest is the text, and read again as little-endian int32 ids to decode.
// Asserted is only what the Rust `tokenizers` library guarantees for these files: ids of the
// vocabulary, decoded text that is valid UTF-8, and for the byte-level BPE of sotu-llama-16m (no
// normalizer, no stripping added tokens, BOS template) a lossless round trip and the BOS.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz/harness.h"
#include "lib/common/errors.h"
#include "lib/tokenizer/tokenizer.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

struct FixtureTokenizer {
  Tokenizer tokenizer;
  bool lossless;  // decode(encode(text)) == text, and BOS (id 0) first with special tokens
};

const std::vector<FixtureTokenizer>& fixture_tokenizers() {
  static const std::vector<FixtureTokenizer> tokenizers = [] {
    const auto fixtures = fuzz_fixtures_dir();
    if (!fixtures) fail_internal("the tokenizer_encode harness needs ../shared/fixtures");
    auto load = [&](const char* relative) {
      return Tokenizer::from_file((*fixtures / relative).string());
    };
    return std::vector<FixtureTokenizer>{
        {load("models/sotu-llama-16m/tokenizer.json"), true},
        {load("tokenizers/llama2/tokenizer.json"), false},  // byte fallback, SentencePiece style
        {load("tokenizers/qwen3/tokenizer.json"), false},   // NFC normalizer: not lossless
    };
  }();
  return tokenizers;
}

bool valid_utf8(const std::string& text) { return unicode::to_valid_utf8(text) == text; }

void check_decode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  fuzz_expect(valid_utf8(tokenizer.decode(ids, false)), "decode gives valid UTF-8");
  fuzz_expect(valid_utf8(tokenizer.decode(ids, true)), "decode gives valid UTF-8");
  fuzz_expect(tokenizer.ids_to_tokens(ids).size() == ids.size(), "one token string per id");
}

}  // namespace

bool fuzz_tokenizer_encode(std::string_view input) {
  const auto& tokenizers = fixture_tokenizers();
  if (input.empty()) return false;
  const FixtureTokenizer& chosen = tokenizers[static_cast<uint8_t>(input[0]) % tokenizers.size()];
  const Tokenizer& tokenizer = chosen.tokenizer;
  const std::string_view text = input.substr(1);

  const std::vector<int32_t> ids = tokenizer.encode(text, false);
  for (int32_t id : ids) fuzz_expect(tokenizer.id_to_token(id).has_value(), "ids are in the vocab");
  check_decode(tokenizer, ids);
  const std::vector<int32_t> with_special = tokenizer.encode(text, true);
  if (chosen.lossless) {
    fuzz_expect(tokenizer.decode(ids, false) == unicode::to_valid_utf8(text),
                "byte-level BPE decodes what it encoded");
    std::vector<int32_t> expected = {0};
    expected.insert(expected.end(), ids.begin(), ids.end());
    fuzz_expect(with_special == expected, "special tokens add exactly the BOS");
  }

  std::vector<int32_t> arbitrary(text.size() / sizeof(int32_t));
  if (!arbitrary.empty()) std::memcpy(arbitrary.data(), text.data(), arbitrary.size() * 4);
  check_decode(tokenizer, arbitrary);
  return true;
}

}  // namespace presso
