// The presso CLI: one file per subcommand under apps/cli/. Each add_*_command registers its
// subcommand on the app: it parses options with CLI11 into the options struct of one library
// function and calls that function from the callback. Errors propagate as presso::Error and
// become exit codes in main (2 bad input, 1 regression, 3 internal).
#pragma once

#include <CLI/CLI.hpp>

namespace presso::cli {

void add_compress_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_list_command(CLI::App& app);
void add_recipe_command(CLI::App& app);
void add_serve_check_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);

}  // namespace presso::cli
