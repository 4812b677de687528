// `presso list`: what this build has — passes with their options, model families, formats.
#include <cstdio>

#include "apps/cli/commands.h"
#include "lib/export/formats.h"
#include "lib/model/family.h"
#include "passes/registry.h"

namespace presso::cli {

void add_list_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "list",
      "List the registered passes (with every recipe option, its type and default), the\n"
      "supported model families and the output formats.");
  cmd->callback([] {
    std::printf("passes:\n");
    for (const auto& entry : pass_registry()) {
      std::printf("%s\n", describe_schema(entry.schema).c_str());
    }
    std::printf("model families:\n");
    for (const auto& family : model_families()) {
      std::string types;
      for (const auto& type : family.model_types) types += (types.empty() ? "" : ", ") + type;
      std::printf("  %-8s model_type: %s\n", family.name.c_str(), types.c_str());
    }
    std::printf("output formats:\n");
    for (const auto& format : output_formats()) {
      std::printf("  %-19s %s\n", format.name, format.summary);
    }
  });
}

}  // namespace presso::cli
