// `presso recipe check`: validates a recipe, and with a model prints the per-layer plan.
#include <cstdio>
#include <memory>

#include "apps/cli/commands.h"
#include "lib/compress/compression_plan.h"
#include "passes/registry.h"

namespace presso::cli {

void add_recipe_command(CLI::App& app) {
  CLI::App* recipe = app.add_subcommand("recipe", "Work with recipes.");
  recipe->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto model_dir = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("compressed-tensors");
  auto strict_serving = std::make_shared<bool>(false);
  CLI::App* check = recipe->add_subcommand(
      "check",
      "Validate a recipe (presso's `passes:` list or an llm-compressor recipe) and print it in\n"
      "canonical form with every option explicit. With --model, resolve it against the model:\n"
      "print which passes apply to each linear, check that --format can store the result, and\n"
      "say which serving engines and kernels will run it (presso serve-check).\n"
      "All problems are reported at once, each with file, line and key; exit 2 if any.\n"
      "Examples:\n"
      "  presso recipe check configs/rtn-w4g128.yaml\n"
      "  presso recipe check my_llmc_recipe.yaml --model tests/data/sotu-llama-16m --format gptq");
  check->add_option("recipe", *path, "recipe YAML")->required()->check(CLI::ExistingFile);
  check->add_option("--model", *model_dir, "model directory to resolve the recipe against")
      ->check(CLI::ExistingDirectory);
  check->add_option("--format", *format, "output format to check the plan against (with --model)")
      ->capture_default_str();
  check->add_flag("--strict-serving", *strict_serving,
                  "with --model: exit 2 when no serving engine runs the result on a fast kernel");
  check->callback([path, model_dir, format, strict_serving] {
    std::fputs(check_recipe(*path, pass_registry(), *model_dir, output_format_from_name(*format),
                            *strict_serving)
                   .c_str(),
               stdout);
  });
}

}  // namespace presso::cli
