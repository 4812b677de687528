// Peak memory of `presso compress` on a checkpoint larger than the budget: the driver must hold
// one block at a time, never the model.
#include "tests/catch_torch.h"

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lib/io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

extern char** environ;

namespace fs = std::filesystem;
using presso::test::TempDir;

namespace {

// A Llama checkpoint with random bf16 weights: hidden 2048, MLP 5632, 16 heads, untied
// embeddings of 32000 rows; 13 blocks make 1.6 GB. The tokenizer is the shipped model's (its
// ids are all below vocab_size).
void write_synthetic_llama(const fs::path& dir, int blocks) {
  const int64_t hidden = 2048, mlp = 5632, vocab = 32000;
  fs::create_directories(dir);
  nlohmann::json config = {{"model_type", "llama"},
                           {"architectures", {"LlamaForCausalLM"}},
                           {"hidden_size", hidden},
                           {"intermediate_size", mlp},
                           {"num_hidden_layers", blocks},
                           {"num_attention_heads", 16},
                           {"num_key_value_heads", 16},
                           {"vocab_size", vocab},
                           {"max_position_embeddings", 2048},
                           {"rms_norm_eps", 1e-5},
                           {"rope_theta", 10000.0},
                           {"hidden_act", "silu"},
                           {"tie_word_embeddings", false},
                           {"eos_token_id", 1},
                           {"torch_dtype", "bfloat16"}};
  std::ofstream(dir / "config.json") << config.dump(2);
  fs::copy_file(presso::test::test_data() / "sotu-llama-16m" / "tokenizer.json",
                dir / "tokenizer.json");

  torch::manual_seed(0);
  presso::SafetensorsWriter writer((dir / "model.safetensors").string());
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    writer.add(name, (torch::randn(shape) * 0.02).to(torch::kBFloat16));
  };
  add("model.embed_tokens.weight", {vocab, hidden});
  add("lm_head.weight", {vocab, hidden});
  writer.add("model.norm.weight", torch::ones({hidden}, torch::kBFloat16));
  for (int i = 0; i < blocks; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* name : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      add(p + "self_attn." + name + ".weight", {hidden, hidden});
    }
    add(p + "mlp.gate_proj.weight", {mlp, hidden});
    add(p + "mlp.up_proj.weight", {mlp, hidden});
    add(p + "mlp.down_proj.weight", {hidden, mlp});
    writer.add(p + "input_layernorm.weight", torch::ones({hidden}, torch::kBFloat16));
    writer.add(p + "post_attention_layernorm.weight", torch::ones({hidden}, torch::kBFloat16));
  }
  writer.finish();
}

struct ChildRun {
  int exit_code = -1;
  long peak_rss_kib = 0;
};

// Runs the presso binary with `args` and reports its exit code and peak resident set size.
ChildRun run_measured(const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings = {PRESSO_CLI_PATH};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, PRESSO_CLI_PATH, nullptr, nullptr, argv.data(), environ) == 0);
  int status = 0;
  struct rusage usage {};
  REQUIRE(wait4(pid, &status, 0, &usage) == pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, usage.ru_maxrss};
}

}  // namespace

TEST_CASE("compress keeps peak memory below 1 GB on a 1.6 GB checkpoint", "[e2e]") {
  TempDir dir("memory");
  // PRESSO_SYNTHETIC_DIR keeps the checkpoint there (and reuses it), for benchmarking by hand.
  const char* keep = std::getenv("PRESSO_SYNTHETIC_DIR");
  const fs::path model = keep ? fs::path(keep) : dir.path / "synthetic-llama";
  if (!fs::exists(model / "model.safetensors")) write_synthetic_llama(model, 13);
  const auto model_bytes = fs::file_size(model / "model.safetensors");
  REQUIRE(model_bytes >= 1500000000ull);

  const std::string recipe = dir.write("rtn.yaml", "passes:\n  - rtn: {bits: 4, group_size: 128}\n");
  const ChildRun run = run_measured(
      {"compress", model.string(), "--recipe", recipe, "--calib",
       (presso::test::test_data() / "calib.txt").string(), "--nsamples", "4", "--seqlen", "64",
       "-o", (dir.path / "out").string(), "--no-progress"});
  REQUIRE(run.exit_code == 0);
  // The child's own high-water mark, as presso records it (VmHWM). wait4's ru_maxrss would
  // also count this test process, whose address space the spawned child shared until exec.
  std::ifstream report_file(dir.path / "out" / "presso_report.json");
  const auto report = nlohmann::json::parse(report_file);
  const double peak_mib = report.at("peak_rss_mib").get<double>();
  std::cout << "compress of a " << model_bytes / 1e9 << " GB checkpoint: peak RSS " << peak_mib
            << " MiB (wait4 ru_maxrss, which includes this test's own peak: "
            << run.peak_rss_kib / 1024.0 << " MiB)\n";
  CHECK(peak_mib < 1e9 / (1024.0 * 1024.0));
}
