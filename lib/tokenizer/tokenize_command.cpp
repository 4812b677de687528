// `presso tokenize`: the library side of the CLI subcommand (apps/cli/tokenize.cpp parses flags).
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <ostream>

#include "lib/common/files.h"
#include "lib/tokenizer/tokenizer.h"

namespace presso {

void tokenize_command(const TokenizeOptions& options, std::istream& input, std::ostream& out) {
  const Tokenizer tokenizer = std::filesystem::is_directory(options.tokenizer_path)
                                  ? Tokenizer::from_model_dir(options.tokenizer_path)
                                  : Tokenizer::from_file(options.tokenizer_path);
  std::string text;
  if (options.text) {
    text = *options.text;
  } else if (options.file) {
    text = read_file_bytes(*options.file);
  } else {
    text.assign(std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>());
  }
  const std::vector<int32_t> ids = tokenizer.encode(text, options.add_special_tokens);
  switch (options.format) {
    case TokenFormat::kIds:
      for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
      out << '\n';
      break;
    case TokenFormat::kTokens: {
      const std::vector<std::string> tokens = tokenizer.ids_to_tokens(ids);
      for (size_t i = 0; i < tokens.size(); ++i) out << (i ? " " : "") << tokens[i];
      out << '\n';
      break;
    }
    case TokenFormat::kJson: {
      const nlohmann::json result = {{"ids", ids},
                                     {"tokens", tokenizer.ids_to_tokens(ids)},
                                     {"decoded", tokenizer.decode(ids, false)}};
      out << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      break;
    }
  }
}

}  // namespace presso
