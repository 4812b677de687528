// `presso inspect MODEL_DIR`: prints a checkpoint's family, sizes, parameters and storage.
#include "lib/model/inspect.h"

#include <iostream>
#include <memory>
#include <string>

#include "apps/cli/commands.h"

namespace presso::cli {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Print a checkpoint's family, sizes and storage");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("MODEL_DIR", *dir, "Hugging Face model directory")->required();
  cmd->callback([dir] { std::cout << presso::inspect_model(*dir); });
}

}  // namespace presso::cli
