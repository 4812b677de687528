// `presso serve-check DIR`: which serving engines and kernels run a checkpoint directory.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/cli/commands.h"
#include "lib/common/errors.h"
#include "lib/export/serving.h"

namespace presso::cli {

void add_serve_check_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto strict = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "serve-check",
      "Say which serving engines (vLLM, GPTQModel / transformers, AutoAWQ) load a checkpoint\n"
      "directory, presso's or another tool's, and on which kernel, from its config.json\n"
      "(dtype and quantization_config) and the loaders' rules in docs/formats.md.\n"
      "Example:\n"
      "  presso serve-check out/llama-gptq-w4");
  cmd->add_option("dir", *dir, "checkpoint directory (reads DIR/config.json)")->required();
  cmd->add_flag("--strict", *strict,
                "exit 1 when none of the fast kernels (vLLM's Marlin / Machete) will run it");
  cmd->callback([dir, strict] {
    const ServingVerdict verdict = serving_verdict_of_dir(*dir);
    std::fputs(verdict_text(verdict).c_str(), stdout);
    if (*strict && !verdict.fast()) throw RegressionError("no fast serving kernel runs " + *dir);
  });
}

}  // namespace presso::cli
