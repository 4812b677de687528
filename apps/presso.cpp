// presso: post-training compression of transformer language models.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "apps/cli/commands.h"
#include "lib/common/errors.h"
#include "lib/common/version.h"
#include "lib/eval/runtime.h"

int main(int argc, char** argv) {
  presso::configure_runtime();
  CLI::App app{
      "presso: post-training compression of transformer language models.\n"
      "Reads Hugging Face checkpoints, compresses them with recipes of passes (presso list),\n"
      "writes checkpoints serving engines load, and measures perplexity."};
  app.set_version_flag("--version", "presso " + presso::version_description() + "\n" +
                                         presso::libtorch_description());
  app.require_subcommand(1);
  presso::cli::add_compress_command(app);
  presso::cli::add_eval_command(app);
  presso::cli::add_inspect_command(app);
  presso::cli::add_list_command(app);
  presso::cli::add_recipe_command(app);
  presso::cli::add_serve_check_command(app);
  presso::cli::add_sweep_command(app);
  presso::cli::add_tokenize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 uses 0 for --help/--version; any other parse error is bad input.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const presso::Error& e) {
    std::fprintf(stderr, "presso: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "presso: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
