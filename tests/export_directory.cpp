// The output directory: built under a temporary name and renamed into place, never over the
// source, never over an existing directory without --overwrite, gone without a trace when the
// writer is abandoned; the tokenizer and generation files come along, the stale weights do not.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "tests/catch_torch.h"
#include "tests/export_helpers.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

using namespace presso;
using presso::test::TempDir;
namespace fs = std::filesystem;

namespace {

const fs::path kShipped = test::test_data() / "sotu-llama-16m";

// A source checkpoint under `dir`: the shipped model's files (the weights linked, not copied)
// plus files that must not reach an output.
fs::path make_source(const fs::path& dir) {
  const fs::path source = dir / "source";
  fs::create_directories(source);
  for (const auto& entry : fs::directory_iterator(kShipped)) {
    const fs::path target = source / entry.path().filename();
    if (entry.path().extension() == ".safetensors") {
      fs::create_symlink(fs::absolute(entry.path()), target);
    } else {
      fs::copy_file(entry.path(), target);
    }
  }
  for (const char* name :
       {"reference_logits.safetensors", "reference_ppl.json", "pytorch_model.bin",
        "quantize_config.json", "presso_report.json", ".gitattributes"}) {
    std::ofstream(source / name) << "stale";
  }
  std::ofstream(source / "README.md") << "model card";
  fs::create_directories(source / "subdir");
  return source;
}

// A writer's output with one tensor, finished.
void write_small(const Model& model, const std::string& out, bool overwrite,
                 const nlohmann::json& report = {{"small", true}}) {
  CheckpointWriter writer(OutputFormat::kCompressedTensors, out, model, overwrite);
  writer.add_tensor("model.norm.weight", model.tensors().load("model.norm.weight", std::nullopt));
  writer.finish(report);
}

std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".presso-tmp-") != std::string::npos ||
        name.find(".presso-old-") != std::string::npos) {
      names.push_back(name);
    }
  }
  return names;
}

std::string user_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the output directory holds the model, its config, tokenizer files and the report",
          "[unit]") {
  TempDir tmp("export_dir");
  const fs::path source = make_source(tmp.path);
  const Model model = Model::open(source.string());
  const fs::path out = tmp.path / "nested" / "out";  // parents are created
  const nlohmann::json report = {{"recipe", "w4"}, {"layers", {1, 2, 3}}};
  write_small(model, out.string(), false, report);

  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(out)) files.push_back(entry.path().filename());
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"README.md", "config.json", "generation_config.json",
                                          "model.safetensors", "presso_report.json",
                                          "tokenizer.json", "tokenizer_config.json"});
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    CHECK(read_file_bytes((out / name).string()) == read_file_bytes((kShipped / name).string()));
  }
  CHECK(test::read_json(out / "presso_report.json") == report);
  const SafetensorsFile file((out / "model.safetensors").string());
  CHECK(file.names() == std::vector<std::string>{"model.norm.weight"});
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  // Nothing quantized: compressed-tensors writes no quantization_config then.
  CHECK(test::read_json(out / "config.json") == test::read_json(kShipped / "config.json"));
  CHECK(leftovers(tmp.path / "nested").empty());
}

TEST_CASE("the source directory is never an output", "[unit]") {
  TempDir tmp("export_source");
  const fs::path source = make_source(tmp.path);
  const Model model = Model::open(source.string());
  for (const std::string& out : {source.string(), source.string() + "/", source.string() + "/.",
                                 (tmp.path / "x" / ".." / "source").string()}) {
    INFO(out);
    const std::string message = user_error_of([&] { write_small(model, out, true); });
    CHECK_THAT(message, Catch::Matchers::Contains("source checkpoint"));
  }
  // --overwrite of a directory that holds the source would delete it.
  const std::string message = user_error_of([&] { write_small(model, tmp.path.string(), true); });
  CHECK_THAT(message, Catch::Matchers::Contains("would delete it"));
  CHECK(fs::exists(source / "model.safetensors"));
  CHECK(leftovers(tmp.path).empty());
}

TEST_CASE("an existing output is replaced only with overwrite, and only at finish", "[unit]") {
  TempDir tmp("export_overwrite");
  const Model model = Model::open(kShipped.string());
  const fs::path out = tmp.path / "out";
  fs::create_directories(out);
  write_small(model, out.string(), false);  // an empty directory may be used
  CHECK(fs::exists(out / "model.safetensors"));

  std::ofstream(out / "old.txt") << "old";
  const std::string message = user_error_of([&] { write_small(model, out.string(), false); });
  CHECK(message == out.string() + ": exists; pass --overwrite to replace it");
  CHECK(fs::exists(out / "old.txt"));

  {
    CheckpointWriter writer(OutputFormat::kDense, out.string(), model, true);
    writer.add_tensor("model.norm.weight", model.tensors().load("model.norm.weight", std::nullopt));
    CHECK(fs::exists(out / "old.txt"));  // untouched until finish()
    writer.finish({{"second", true}});
  }
  CHECK_FALSE(fs::exists(out / "old.txt"));
  CHECK(test::read_json(out / "presso_report.json") == nlohmann::json{{"second", true}});
  CHECK(leftovers(tmp.path).empty());

  std::ofstream(tmp.path / "file") << "a file";
  CHECK_THAT(user_error_of([&] { write_small(model, (tmp.path / "file").string(), true); }),
             Catch::Matchers::Contains("not a directory"));
}

TEST_CASE("a writer abandoned before finish leaves no directory behind", "[unit]") {
  TempDir tmp("export_abandon");
  const Model model = Model::open(kShipped.string());
  const fs::path out = tmp.path / "out";
  {
    CheckpointWriter writer(OutputFormat::kGptq, out.string(), model, false);
    writer.add_tensor("model.norm.weight", model.tensors().load("model.norm.weight", std::nullopt));
    CHECK(leftovers(tmp.path).size() == 1);  // the temporary directory, while it is written
  }
  CHECK_FALSE(fs::exists(out));
  CHECK(leftovers(tmp.path).empty());

  // The same after a refused finish() (GPTQ with nothing quantized).
  {
    CheckpointWriter writer(OutputFormat::kGptq, out.string(), model, false);
    CHECK_THAT(user_error_of([&] { writer.finish({}); }),
               Catch::Matchers::Contains("nothing is quantized"));
  }
  CHECK_FALSE(fs::exists(out));
  CHECK(leftovers(tmp.path).empty());
}

TEST_CASE("a dense export of a packed checkpoint drops its quantization_config", "[unit]") {
  TempDir tmp("export_requant");
  const Model source = Model::open(kShipped.string());
  test::write_model(source, OutputFormat::kCompressedTensors, test::rtn_everywhere({4, 128, true}),
                    tmp.file("packed"));
  const Model packed = Model::open(tmp.file("packed"));
  REQUIRE(packed.config().quantization_config.size() > 0);
  {
    CheckpointWriter writer(OutputFormat::kDense, tmp.file("dense"), packed, false);
    writer.add_tensor("model.norm.weight",
                      packed.tensors().load("model.norm.weight", std::nullopt));
    writer.finish({});
  }
  const nlohmann::json config = test::read_json(tmp.path / "dense" / "config.json");
  CHECK_FALSE(config.contains("quantization_config"));
  CHECK(config.at("hidden_size") == 384);
}
