#include "lib/common/json_input.h"

#include <algorithm>

namespace presso {

void check_json_nesting(std::string_view text, const std::string& source, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        const auto line = 1 + std::count(text.begin(), text.begin() + i, '\n');
        fail_user("{}: line {}: JSON nests deeper than {} levels (no file presso reads needs more)",
                  source, line, max_depth);
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace presso
