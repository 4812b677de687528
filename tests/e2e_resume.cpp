// Resuming an interrupted `presso compress`: a run killed with SIGKILL after a random block and
// then run again with --resume writes the same bytes as a run that was never stopped, for every
// fixture checkpoint; and the journal's rules (refused without --resume, discarded for another
// job, gone after success, one run per output at a time).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "lib/common/files.h"
#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using presso::test::run_cli;
using presso::test::TempDir;

namespace {

// GPTQ and a low-rank path (codes, grids, an adapter and changed weights to record), in groups
// that divide the tiny fixtures' 64 columns.
constexpr const char* kRecipe =
    "passes:\n"
    "  - gptq: {ignore: [lm_head], bits: 4, group_size: 32, symmetric: false}\n"
    "  - lowrank: {ignore: [lm_head], method: svd, rank: 8}\n";
// AWQ folds its scales into the norms and the producing linears: tensors no pass targets change.
// A coarse grid: the search's cost is not what is tested.
constexpr const char* kAwqRecipe =
    "passes:\n"
    "  - awq: {ignore: [lm_head], bits: 4, group_size: 32, symmetric: false, n_grid: 4, "
    "duo_scaling: false}\n";

nlohmann::json model_config(const fs::path& model) {
  return nlohmann::json::parse(presso::read_file_bytes((model / "config.json").string()));
}

int block_count(const fs::path& model) {
  const nlohmann::json config = model_config(model);
  for (const char* key : {"num_hidden_layers", "n_layer"})
    if (config.contains(key)) return config.at(key).get<int>();
  FAIL("no layer count in " << model);
  return 0;
}

// The fixtures' calibration text, or for a checkpoint without a tokenizer (tiny/) random ids
// of its vocabulary, written into `dir`.
std::string calibration_for(const TempDir& dir, const fs::path& model) {
  if (fs::exists(model / "tokenizer.json"))
    return (model.parent_path().parent_path() / "text/calib.txt").string();
  const std::string ids_file = dir.file(model.filename().string() + "-ids.json");
  if (fs::exists(ids_file)) return ids_file;  // rewritten, it would be another job's input
  const int64_t vocab = model_config(model).at("vocab_size").get<int64_t>();
  std::mt19937 random(0);
  std::string ids = "[";
  for (int i = 0; i < 4096; ++i) ids += (i ? "," : "") + std::to_string(random() % vocab);
  return dir.write(model.filename().string() + "-ids.json", ids + "]");
}

std::string compress_args(const TempDir& dir, const fs::path& model, const std::string& recipe,
                          const fs::path& out) {
  return fmt::format(
      "compress {} --recipe {} --calib {} --nsamples 16 --seqlen 128 -o {} --dense-copy {}-dense "
      "--no-progress",
      model.string(), recipe, calibration_for(dir, model), out.string(), out.string());
}

// Starts presso with `args`, its output going to `log`; returns its process id.
pid_t spawn_cli(const std::string& args, const fs::path& log) {
  const std::string command = "exec " + std::string(PRESSO_CLI_PATH) + " " + args;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// SIGKILLs `pid` the moment block `block` (0-based) appears in `journal`, woken by inotify so
// that the kill lands in the next block even on a tiny model. False when the run ended first.
bool kill_after_block(pid_t pid, const fs::path& journal, int block) {
  const fs::path record = journal / fmt::format("block-{:04d}.safetensors", block);
  int status = 0;
  while (!fs::exists(journal)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    ::usleep(1000);
  }
  const int watch = ::inotify_init1(IN_CLOEXEC);
  REQUIRE(watch >= 0);
  REQUIRE(::inotify_add_watch(watch, journal.c_str(), IN_MOVED_TO | IN_CREATE) >= 0);
  ::fcntl(watch, F_SETFL, O_NONBLOCK);
  char events[4096];
  while (!fs::exists(record)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ::close(watch);
      return false;
    }
    if (::read(watch, events, sizeof events) <= 0) ::usleep(500);
  }
  ::kill(pid, SIGKILL);
  ::close(watch);
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

// Every file below `a` whose bytes differ from its twin below `b` (or that `b` lacks), and every
// file `b` has beyond `a`'s; presso_report.json aside, whose timings differ between any two runs.
std::vector<std::string> differing_files(const fs::path& a, const fs::path& b) {
  std::vector<std::string> differ;
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(a)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const fs::path relative = fs::relative(entry.path(), a);
    if (relative == "presso_report.json") continue;
    if (!fs::exists(b / relative) || presso::read_file_bytes(entry.path().string()) !=
                                         presso::read_file_bytes((b / relative).string())) {
      differ.push_back(relative.string());
    }
  }
  size_t twins = 0;
  for (const auto& entry : fs::recursive_directory_iterator(b)) twins += entry.is_regular_file();
  if (twins != files) differ.push_back(fmt::format("{} files against {}", twins, files));
  return differ;
}

// The layers of presso_report.json, which a resumed run takes from the journal.
nlohmann::json report_layers(const fs::path& out) {
  return nlohmann::json::parse(presso::read_file_bytes((out / "presso_report.json").string()))
      .at("layers");
}

void check_resume(const TempDir& dir, const fs::path& model, const std::string& recipe,
                  std::mt19937& random) {
  const std::string name = model.filename().string() + "-" + fs::path(recipe).stem().string();
  const fs::path whole = dir.path / (name + "-whole");
  const fs::path resumed = dir.path / (name + "-resumed");
  const presso::test::CliResult reference = run_cli(compress_args(dir, model, recipe, whole));
  INFO(reference.output);
  REQUIRE(reference.exit_code == 0);

  const int blocks = block_count(model);
  const int kill_block = std::uniform_int_distribution<int>(0, blocks - 2)(random);
  INFO("killed after block " << kill_block + 1 << " of " << blocks);
  const fs::path journal = resumed.string() + ".presso-resume";
  const pid_t pid =
      spawn_cli(compress_args(dir, model, recipe, resumed), dir.path / (name + ".log"));
  REQUIRE(kill_after_block(pid, journal, kill_block));
  CHECK_FALSE(fs::exists(resumed));

  const presso::test::CliResult again =
      run_cli(compress_args(dir, model, recipe, resumed) + " --resume");
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  // At least up to the kill's block: on a loaded machine the kill may land a block later.
  std::smatch replayed;
  REQUIRE(std::regex_search(again.output, replayed, std::regex("recorded blocks 1-([0-9]+)")));
  CHECK(std::stoi(replayed[1]) >= kill_block + 1);
  CHECK(differing_files(whole, resumed).empty());
  CHECK(differing_files(whole.string() + "-dense", resumed.string() + "-dense").empty());
  CHECK(report_layers(whole) == report_layers(resumed));
  CHECK_FALSE(fs::exists(journal));
}

}  // namespace

TEST_CASE("a compress killed after a random block resumes to the bytes of an uninterrupted run",
          "[e2e]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  TempDir dir("resume");
  const std::string recipe = dir.write("gptq-lowrank.yaml", kRecipe);
  const std::string awq = dir.write("awq.yaml", kAwqRecipe);
  std::random_device seed_source;
  const unsigned seed = seed_source();
  INFO("kill points drawn with seed " << seed);
  std::mt19937 random(seed);
  for (const auto& model : presso::test::all_checkpoint_dirs(*fixtures)) {
    SECTION(model.filename().string()) {
      check_resume(dir, model, recipe, random);
      check_resume(dir, model, awq, random);
    }
  }
}

TEST_CASE("the resume journal of an interrupted run is refused without --resume", "[e2e]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  TempDir dir("resume_rules");
  const fs::path model = *fixtures / "models/sotu-llama-16m";
  const std::string recipe = dir.write("gptq-lowrank.yaml", kRecipe);
  const fs::path out = dir.path / "out";
  const fs::path journal = out.string() + ".presso-resume";
  REQUIRE(kill_after_block(spawn_cli(compress_args(dir, model, recipe, out), dir.path / "log"),
                           journal, 1));

  SECTION("without --resume: exit 2, naming the journal and both ways on") {
    const auto result = run_cli(compress_args(dir, model, recipe, out));
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.output, Catch::Contains(journal.string()) &&
                                  Catch::Matches("(.|\n)*recorded [2-9] of its blocks(.|\n)*") &&
                                  Catch::Contains("--resume") && Catch::Contains("--overwrite"));
    CHECK(fs::exists(journal / "block-0001.safetensors"));
  }
  SECTION("--overwrite starts over, and the journal goes with success") {
    const auto result = run_cli(compress_args(dir, model, recipe, out) + " --overwrite");
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.output, !Catch::Contains("replaying"));
    CHECK_FALSE(fs::exists(journal));
  }
  SECTION("a different job discards it, with a warning naming what differs") {
    const auto result = run_cli(compress_args(dir, model, recipe, out) + " --seed 7 --resume");
    CHECK(result.exit_code == 0);
    CHECK_THAT(result.output, Catch::Contains("another job (seed differ)"));
    CHECK_THAT(result.output, !Catch::Contains("replaying"));
  }
  SECTION("a damaged record is an exit 2 naming the file") {
    const fs::path record = journal / "block-0001.safetensors";
    presso::write_file_atomically(record.string(), "not a safetensors file");
    const auto result = run_cli(compress_args(dir, model, recipe, out) + " --resume");
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.output, Catch::Contains(record.string()));
  }
  SECTION("a second run on the same output while one holds the journal is refused") {
    const int lock = ::open((journal / "lock").c_str(), O_RDWR);
    REQUIRE(lock >= 0);
    REQUIRE(::flock(lock, LOCK_EX) == 0);
    const auto result = run_cli(compress_args(dir, model, recipe, out) + " --resume");
    ::close(lock);
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.output, Catch::Contains("another presso compress is writing"));
  }
}

TEST_CASE("a compress with --resume and nothing recorded runs the whole job", "[e2e]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  TempDir dir("resume_none");
  const std::string recipe = dir.write("gptq-lowrank.yaml", kRecipe);
  const fs::path model = *fixtures / "tiny/llama-tied";
  const auto result = run_cli(compress_args(dir, model, recipe, dir.path / "out") + " --resume");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("no interrupted run"));
  CHECK(fs::exists(dir.path / "out/model.safetensors"));
}
