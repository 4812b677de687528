// The fuzz harnesses (fuzz/harness.h) outside libFuzzer: every input the fuzzers found
// (tests/fuzz_regressions/<harness>/) must now be accepted or refused with a UserError, and the
// seeds (fuzz/seeds/<harness>/), the shipped recipes and the real fixture files must be accepted,
// so a harness that refused everything would not pass for one that finds nothing.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/harness.h"
#include "tests/catch_torch.h"
#include "tests/fixtures.h"

namespace {

namespace fs = std::filesystem;
using presso::FuzzHarness;

fs::path source_dir() { return presso::test::test_data().parent_path().parent_path(); }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The files directly in `dir`, sorted; none when it does not exist.
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Replays the saved findings of `harness` (any outcome but an exception other than UserError
// passes) and its seeds (which must be accepted).
void replay(const FuzzHarness& harness) {
  for (const fs::path& file : files_in(source_dir() / "tests/fuzz_regressions" / harness.name)) {
    INFO(harness.name << ": " << file.string());
    CHECK_NOTHROW(presso::run_fuzz_harness(harness, read_bytes(file)));
  }
  for (const fs::path& file : files_in(source_dir() / "fuzz/seeds" / harness.name)) {
    INFO(harness.name << ": " << file.string());
    CHECK(presso::run_fuzz_harness(harness, read_bytes(file)));
  }
}

bool accepts(const char* harness, const std::string& input) {
  return presso::run_fuzz_harness(presso::find_fuzz_harness(harness), input);
}

}  // namespace

TEST_CASE("saved fuzz findings are refused cleanly and the seeds are accepted", "[unit]") {
  for (const FuzzHarness& harness : presso::fuzz_harnesses())
    if (!harness.needs_fixtures) replay(harness);
}

TEST_CASE("saved tokenizer fuzz findings run cleanly through the fixture tokenizers", "[golden]") {
  if (!presso::test::fixtures_or_skip()) return;
  for (const FuzzHarness& harness : presso::fuzz_harnesses())
    if (harness.needs_fixtures) replay(harness);
}

TEST_CASE("the recipe fuzz harness accepts every shipped recipe", "[unit]") {
  std::vector<fs::path> recipes = files_in(source_dir() / "configs");
  for (const fs::path& file : files_in(presso::test::test_data() / "recipes"))
    recipes.push_back(file);
  size_t yaml_files = 0;
  for (const fs::path& file : recipes) {
    if (file.extension() != ".yaml") continue;
    ++yaml_files;
    INFO(file.string());
    CHECK(accepts("recipe", read_bytes(file)) == (file.filename() != "three-problems.yaml"));
  }
  CHECK(yaml_files > 20);
}

TEST_CASE("the fuzz harnesses accept the real fixture files", "[golden]") {
  const auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  for (const fs::path& dir : presso::test::all_checkpoint_dirs(*fixtures)) {
    INFO(dir.string());
    CHECK(accepts("model_config", read_bytes(dir / "config.json")));
    if (fs::exists(dir / "model.safetensors.index.json"))
      CHECK(accepts("shard_index", read_bytes(dir / "model.safetensors.index.json")));
    if (fs::exists(dir / "model.safetensors") && fs::file_size(dir / "model.safetensors") < 1 << 20)
      CHECK(accepts("safetensors_header", read_bytes(dir / "model.safetensors")));
  }
  for (const char* tokenizer :
       {"models/sotu-llama-16m/tokenizer.json", "tokenizers/llama2/tokenizer.json"}) {
    INFO(tokenizer);
    CHECK(accepts("tokenizer_json", read_bytes(*fixtures / tokenizer)));
  }
  const std::string text = read_bytes(*fixtures / "text/calib.txt").substr(0, 4000);
  for (char tokenizer : {'\0', '\1', '\2'}) CHECK(accepts("tokenizer_encode", tokenizer + text));
}
