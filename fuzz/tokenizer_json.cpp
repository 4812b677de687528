// tokenizer.json: any file that loads must then encode and decode without failing, and decode to
// valid UTF-8 (the Rust library returns a String). Encoding runs a few fixed texts through the
// loaded pipeline, so a hostile normalizer, regex or merge list is exercised, not only parsed.
#include <cstdint>
#include <vector>

#include "fuzz/harness.h"
#include "lib/tokenizer/tokenizer.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

constexpr const char* kTexts[] = {
    "",
    "Hello, world! It's 2024: 3.14 apples\n\n\ttabs  and   spaces ",
    "ünïcödé Ω ≠ 東京 😀 <|begin_of_text|><s></s><unk> [CLS]",
    "\xff\xfe broken \xc3 utf-8",
};

bool valid_utf8(const std::string& text) { return unicode::to_valid_utf8(text) == text; }

}  // namespace

bool fuzz_tokenizer_json(std::string_view input) {
  const Tokenizer tokenizer = Tokenizer::from_json(std::string(input), "tokenizer.json");
  for (const char* text : kTexts) {
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = tokenizer.encode(text, special);
      fuzz_expect(valid_utf8(tokenizer.decode(ids, false)), "decode gives valid UTF-8");
      fuzz_expect(valid_utf8(tokenizer.decode(ids, true)), "decode gives valid UTF-8");
      tokenizer.ids_to_tokens(ids);
    }
  }
  std::vector<int32_t> arbitrary = {-1, INT32_MAX, INT32_MIN};
  for (int32_t id = 0; id < 300; ++id) arbitrary.push_back(id);
  fuzz_expect(valid_utf8(tokenizer.decode(arbitrary, false)), "decode gives valid UTF-8");
  tokenizer.ids_to_tokens(arbitrary);
  return true;
}

}  // namespace presso
