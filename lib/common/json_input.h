// JSON read from user files (config.json, the shard index, tokenizer.json, calibration ids,
// adapter configs, baselines and reports read back) with a nesting limit. nlohmann's parser is
// iterative, but much of what follows a parse is not (dump(), copies, comparisons, the readers'
// own descent), so a hostile "[[[[..." 100k levels deep used to crash presso with SIGSEGV. No
// file presso reads nests more than a handful of levels.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "lib/common/errors.h"

namespace presso {

constexpr int kMaxJsonNesting = 128;

// UserError naming `source` and the line where `text` opens its (max_depth + 1)-th nested array
// or object. A pre-scan over the bytes (strings skipped): it never recurses and leaves syntax
// errors to the parser.
void check_json_nesting(std::string_view text, const std::string& source,
                        int max_depth = kMaxJsonNesting);

// check_json_nesting, then the parse; a syntax error (or a number beyond a double) is a UserError
// "<source>: not valid JSON: <parser's message>". Json: nlohmann::json or ordered_json.
template <typename Json = nlohmann::json>
Json parse_json_input(std::string_view text, const std::string& source) {
  check_json_nesting(text, source);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const typename Json::exception& e) {  // parse_error, or out_of_range for 1e400
    fail_user("{}: not valid JSON: {}", source, e.what());
  }
}

}  // namespace presso
