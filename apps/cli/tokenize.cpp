// `presso tokenize`: encodes text with a checkpoint's tokenizer.json and prints ids or tokens.
#include <iostream>
#include <map>
#include <memory>

#include "apps/cli/commands.h"
#include "lib/tokenizer/tokenizer.h"

namespace presso::cli {

void add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  auto text = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "tokenize",
      "Encode text exactly as the Hugging Face `tokenizers` library does with the model's\n"
      "tokenizer.json. The text comes from TEXT, else --file, else standard input.\n"
      "Examples:\n"
      "  presso tokenize models/llama 'Hello world'\n"
      "  presso tokenize tokenizer.json --file eval.txt --format tokens\n"
      "  echo 'Hello' | presso tokenize models/llama --special --format json");
  command->add_option("path", options->tokenizer_path, "model directory or tokenizer.json")
      ->required();
  CLI::Option* text_option = command->add_option("text", *text, "text to encode");
  command->add_option("--file", *file, "encode the contents of this file")
      ->check(CLI::ExistingFile)
      ->excludes(text_option);
  command->add_flag("--special", options->add_special_tokens,
                    "add special tokens (e.g. BOS) as the tokenizer's post-processor says");
  const std::map<std::string, TokenFormat> formats = {
      {"ids", TokenFormat::kIds}, {"tokens", TokenFormat::kTokens}, {"json", TokenFormat::kJson}};
  command
      ->add_option("--format", options->format,
                   "ids: ids separated by spaces on one line; tokens: token strings likewise; "
                   "json: {ids, tokens, decoded}")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
      ->option_text("ids|tokens|json (default ids)");
  command->callback([options, text, file, text_option, command] {
    TokenizeOptions run = *options;
    if (text_option->count() > 0) run.text = *text;
    if (command->count("--file") > 0) run.file = *file;
    tokenize_command(run, std::cin, std::cout);
  });
}

}  // namespace presso::cli
