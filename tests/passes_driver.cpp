// The block-wise driver on the shipped model: what passes see, what the output holds, and every
// way a job is refused before work starts.
#include <ATen/Context.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "calibration/linear_statistics.h"
#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/interrupt.h"
#include "lib/compress/memory_estimate.h"
#include "lib/compress/report.h"
#include "lib/compress/resume_journal.h"
#include "lib/compress/tf32_scope.h"
#include "lib/recipe/option_groups.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kCalib = (presso::test::test_data() / "calib.txt").string();

// Records what the driver hands a pass; asks for every statistic, and with `resequence` re-gathers
// them after the first linear; `sequential` declares it true-sequential, so that the driver gathers
// only its first input group up front.
struct Observations {
  std::vector<std::string> targets;
  std::map<std::string, int64_t> tokens, samples;
  std::map<std::string, torch::Tensor> xtx_before, xtx_after;
};

class RecordingPass : public Pass {
 public:
  RecordingPass(Observations* seen, bool resequence, bool sequential)
      : seen_(seen), resequence_(resequence), sequential_(sequential) {}
  StatsRequest wants() const override { return {true, true, true}; }
  bool true_sequential() const override { return sequential_; }
  void run(PassContext& context) override {
    // A true-sequential pass finds only its first input group gathered.
    const std::vector<std::string> ready =
        sequential_ ? input_groups(context).front() : context.targets();
    for (const auto& name : ready) {
      seen_->targets.push_back(name);
      const LinearStatistics& stats = context.statistics(name);
      seen_->tokens[name] = stats.token_count();
      seen_->samples[name] = stats.sample_count();
      seen_->xtx_before[name] = stats.xtx().clone();
    }
    if (!resequence_) return;
    // Zero the first linear, then re-gather the inputs of the linears after it.
    const std::string first = context.targets().front();
    context.state(first).linear->weight.zero_();
    std::vector<std::string> rest(context.targets().begin() + 1, context.targets().end());
    context.recollect(rest, {true, false, false});
    for (const auto& name : rest) seen_->xtx_after[name] = context.statistics(name).xtx().clone();
  }

 private:
  Observations* seen_;
  bool resequence_;
  bool sequential_;
};

// Re-collects block 1's MLP inputs in GPTQ's true-sequential order — gate/up (which keeps the
// MLP's input), then down_proj (from that kept input) — after scaling the norm before the MLP by
// `norm_scale`; and, for comparison, down_proj's XᵀX from whole-block forwards.
struct KeptInputRun {
  float norm_scale = 1;
  torch::Tensor from_kept, from_block;  // down_proj's XᵀX, on the host
};

class KeptInputPass : public Pass {
 public:
  explicit KeptInputPass(KeptInputRun* run) : run_(run) {}
  StatsRequest wants() const override { return {true, false, false}; }
  bool true_sequential() const override { return true; }
  void run(PassContext& context) override {
    const std::string mlp = context.block().prefix + "mlp.";
    context.block().norm("post_attention_layernorm").weight.mul_(run_->norm_scale);
    context.recollect({mlp + "gate_proj", mlp + "up_proj"}, {true, false, false});
    context.recollect({mlp + "down_proj"}, {true, false, false});
    run_->from_kept = context.statistics(mlp + "down_proj").xtx().cpu();
    LinearStatistics whole({true, false, false}, context.device());
    for (int64_t i = 0; i < context.calibration_batches(); ++i)
      context.run_module("", context.calibration_batch(i), {{mlp + "down_proj", &whole}});
    run_->from_block = whole.xtx().cpu();
  }

 private:
  KeptInputRun* run_;
};

PassRegistry registry_with_recorder(Observations* seen, bool resequence, bool sequential = false) {
  return presso::test::registry_with_test_pass("record", [seen, resequence, sequential] {
    return std::unique_ptr<Pass>(std::make_unique<RecordingPass>(seen, resequence, sequential));
  });
}

std::string read_text(const fs::path& path) { return read_file_bytes(path.string()); }

}  // namespace

TEST_CASE("compress writes a complete directory with a report of every layer", "[unit]") {
  TempDir dir("driver");
  const std::string recipe =
      presso::test::write_recipe(dir, "r", "rtn", "bits: 4, group_size: 128, symmetric: false");
  auto options = presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 8, 64);
  const nlohmann::json report = compress_model(options, pass_registry()).to_json();

  const fs::path out = dir.file("out");
  for (const char* file :
       {"config.json", "model.safetensors", "tokenizer.json", "presso_report.json"}) {
    CHECK(fs::exists(out / file));
  }
  CHECK(nlohmann::json::parse(read_text(out / "presso_report.json")) == report);
  const auto config = nlohmann::json::parse(read_text(out / "config.json"));
  CHECK(config["quantization_config"]["quant_method"] == "compressed-tensors");
  CHECK(report["layers"].size() == 6 * 7);
  CHECK(report["calibration"]["nsamples"] == 8);
  CHECK(report["blocks"].size() == 6);
  for (const auto& layer : report["layers"]) {
    CHECK(layer["relative_output_error"].get<double>() > 0.0);
    CHECK(layer["scheme"]["bits"] == 4);
  }
  // Nothing else is left beside the output (no temporaries).
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) entries += entry.path() != out;
  CHECK(entries == 1);  // the recipe
}

TEST_CASE("rtn checkpoints do not depend on the calibration windows", "[unit]") {
  TempDir dir("driver_rtn_calib");
  const std::string recipe = presso::test::write_recipe(dir, "r", "rtn", "bits: 3");
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("a"), 2, 64),
                 pass_registry());
  auto options = presso::test::compress_options(kModel, recipe, kCalib, dir.file("b"), 6, 128);
  options.seed = 7;
  compress_model(options, pass_registry());
  CHECK(read_text(dir.file("a") + "/model.safetensors") ==
        read_text(dir.file("b") + "/model.safetensors"));
}

TEST_CASE("without calibration data rtn still runs, with no output errors", "[unit]") {
  TempDir dir("driver_nocalib");
  const std::string recipe =
      presso::test::write_recipe(dir, "r", "rtn", "targets: [mlp.down_proj]");
  auto options = presso::test::compress_options(kModel, recipe, "", dir.file("out"), 4, 64);
  const nlohmann::json report = compress_model(options, pass_registry()).to_json();
  CHECK(report["calibration"].is_null());
  CHECK(report["layers"].size() == 6);
  for (const auto& layer : report["layers"]) CHECK(layer["relative_output_error"].is_null());
}

TEST_CASE("passes get the statistics they declared over every calibration token", "[unit]") {
  TempDir dir("driver_stats");
  Observations seen;
  const std::string recipe =
      presso::test::write_recipe(dir, "r", "record", "targets: [\"re:.*layers\\\\.0\\\\..*\"]");
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 6, 32),
                 registry_with_recorder(&seen, false));
  REQUIRE(seen.targets.size() == 7);
  CHECK(seen.targets.front() == "model.layers.0.self_attn.q_proj");
  CHECK(seen.targets.back() == "model.layers.0.mlp.down_proj");
  for (const auto& name : seen.targets) {
    CHECK(seen.tokens[name] == 6 * 32);
    CHECK(seen.samples[name] == 6);
  }
  // q, k and v read the same input.
  CHECK(torch::equal(seen.xtx_before["model.layers.0.self_attn.q_proj"],
                     seen.xtx_before["model.layers.0.self_attn.v_proj"]));
}

TEST_CASE("recollect gathers the inputs that the changed weights produce", "[unit]") {
  TempDir dir("driver_recollect");
  Observations seen;
  const std::string recipe = presso::test::write_recipe(
      dir, "r", "record",
      "targets: [model.layers.1.self_attn.v_proj, model.layers.1.self_attn.o_proj]");
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 4, 32),
                 registry_with_recorder(&seen, true));
  const std::string o_proj = "model.layers.1.self_attn.o_proj";
  REQUIRE(seen.xtx_after.count(o_proj) == 1);
  // With v_proj zeroed, the attention output (o_proj's input) is zero.
  CHECK(seen.xtx_before[o_proj].abs().max().item<float>() > 0.0f);
  CHECK(seen.xtx_after[o_proj].abs().max().item<float>() == 0.0f);
}

TEST_CASE("a true-sequential pass's first run gathers its first input group only", "[unit]") {
  TempDir dir("driver_first_group");
  Observations seen;
  const std::string recipe = presso::test::write_recipe(
      dir, "r", "record", "targets: [\"re:.*layers\\\\.2\\\\..*\"]");
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 4, 32),
                 registry_with_recorder(&seen, true, true));
  // q/k/v were gathered up front; o_proj and the MLP only by the pass's own recollect.
  CHECK(seen.targets == std::vector<std::string>{"model.layers.2.self_attn.q_proj",
                                                 "model.layers.2.self_attn.k_proj",
                                                 "model.layers.2.self_attn.v_proj"});
  CHECK(seen.xtx_after.count("model.layers.2.mlp.down_proj") == 1);
}

TEST_CASE("jobs that cannot run are refused before any output exists", "[unit]") {
  TempDir dir("driver_refused");
  Observations seen;
  const PassRegistry registry = registry_with_recorder(&seen, false);
  struct Case {
    std::string what, recipe, calib, expected;
    OutputFormat format = OutputFormat::kCompressedTensors;
  };
  const std::string too_short = dir.write("short.txt", "only a few words");
  const std::string jsonl = dir.write("c.jsonl", "{\"text\": \"fine\"}\n{\"body\": \"x\"}\n");
  const std::vector<Case> cases = {
      {"lm_head selected", "passes:\n  - rtn: {targets: [lm_head]}\n", kCalib,
       "lm_head, which lies outside the decoder blocks"},
      {"statistics without calibration", "passes:\n  - record: {}\n", "", "need calibration data"},
      {"gptq layout of 5 bits", "passes:\n  - rtn: {bits: 5}\n", kCalib, "--format gptq",
       OutputFormat::kGptq},
      {"awq layout of 3 bits", "passes:\n  - rtn: {bits: 3}\n", kCalib, "--format awq",
       OutputFormat::kAwq},
      {"group size not dividing", "passes:\n  - rtn: {group_size: 100}\n", kCalib,
       "group_size 100 does not divide"},
      {"calibration text too short", "passes:\n  - rtn: {}\n", too_short, "short.txt"},
      {"jsonl without the field", "passes:\n  - rtn: {}\n", jsonl, "c.jsonl:2"},
      {"bad recipe key", "passes:\n  - rtn: {bitz: 4}\n", kCalib, "unknown key 'bitz'"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const std::string recipe = dir.write("bad.yaml", c.recipe);
    auto options = presso::test::compress_options(kModel, recipe, c.calib, dir.file("out"), 8, 64);
    options.format = c.format;
    try {
      compress_model(options, registry);
      FAIL("no error");
    } catch (const UserError& e) {
      CHECK_THAT(e.what(), Catch::Contains(c.expected));
    }
    CHECK_FALSE(fs::exists(dir.file("out")));
  }
}

TEST_CASE("an existing output is kept unless --overwrite, and the input never", "[unit]") {
  TempDir dir("driver_overwrite");
  const std::string recipe = presso::test::write_recipe(dir, "r", "rtn", "");
  fs::create_directories(dir.file("out"));
  dir.write("out/keep.txt", "mine");
  auto options = presso::test::compress_options(kModel, recipe, "", dir.file("out"), 4, 64);
  CHECK_THROWS_AS(compress_model(options, pass_registry()), UserError);
  CHECK(fs::exists(dir.file("out/keep.txt")));
  // Not even with --overwrite: the directory is not an earlier presso output.
  options.overwrite = true;
  CHECK_THROWS_AS(compress_model(options, pass_registry()), UserError);
  CHECK(fs::exists(dir.file("out/keep.txt")));
  dir.write("out/presso_report.json", "{}");  // now it is one
  compress_model(options, pass_registry());
  CHECK_FALSE(fs::exists(dir.file("out/keep.txt")));
  CHECK(fs::exists(dir.file("out/model.safetensors")));

  options.output_dir = kModel;
  CHECK_THROWS_AS(compress_model(options, pass_registry()), UserError);
}

TEST_CASE("Ctrl-C during compression leaves no output behind, only its resume journal",
          "[unit]") {
  TempDir dir("driver_interrupt");
  const std::string recipe = presso::test::write_recipe(dir, "r", "rtn", "");
  auto options = presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 4, 64);
  options.dense_output_dir = dir.file("dense");
  install_interrupt_handler();
  CompressCallbacks callbacks;
  callbacks.on_progress = [](const CompressProgress& event) {
    if (event.stage == CompressProgress::Stage::kBlockDone && event.block == 2) std::raise(SIGINT);
  };
  try {
    compress_model(options, pass_registry(), callbacks);
    FAIL("the run was not interrupted");
  } catch (const Interrupted& interrupted) {
    CHECK_THAT(interrupted.what(), Catch::Contains("3 finished blocks are recorded") &&
                                       Catch::Contains("--resume continues from block 4"));
  }
  clear_interrupt_request();
  std::signal(SIGINT, SIG_DFL);
  // Only the recipe and the journal remain: no output, no dense copy, no temporary directory.
  std::set<std::string> entries;
  for (const auto& entry : fs::directory_iterator(dir.path))
    entries.insert(entry.path().filename().string());
  CHECK(entries == std::set<std::string>{"r.yaml", "out.presso-resume"});
  CHECK(fs::exists(dir.file("out.presso-resume/block-0002.safetensors")));
}

TEST_CASE("reading ahead and writing in the background change no byte of the output", "[unit]") {
  TempDir dir("overlap");
  const std::string recipe =
      presso::test::write_recipe(dir, "r", "gptq", "bits: 4, group_size: 128, symmetric: false");
  std::map<std::string, std::string> files[2];
  for (const OverlapIo overlap : {OverlapIo::kOff, OverlapIo::kOn}) {
    const bool on = overlap == OverlapIo::kOn;
    auto options =
        presso::test::compress_options(kModel, recipe, kCalib, dir.file(on ? "on" : "off"), 8, 128);
    options.overlap_io = overlap;
    const nlohmann::json report = compress_model(options, pass_registry()).to_json();
    CHECK(report["blocks"].size() == 6);
    for (const auto& entry : fs::directory_iterator(options.output_dir)) {
      if (entry.path().filename() != "presso_report.json")
        files[on][entry.path().filename().string()] = read_text(entry.path());
    }
    CHECK_FALSE(fs::exists(ResumeJournal::directory_for(options.output_dir)));
  }
  CHECK(files[0].size() >= 3);
  CHECK(files[0] == files[1]);
}

TEST_CASE("down_proj re-collected from the kept MLP input sees what the block gives", "[unit]") {
  TempDir dir("kept_input");
  const std::string recipe = presso::test::write_recipe(
      dir, "r", "kept", "targets: [\"re:.*layers\\\\.1\\\\.mlp\\\\..*\"]");
  std::vector<std::string> devices = {"cpu"};
  if (torch::cuda::is_available()) devices.push_back("cuda");  // kept in fp16 there, under TF32
  // 1e5 puts the MLP's input beyond fp16's range (65504): then nothing may be kept.
  for (const std::string& device : devices) {
    for (const float norm_scale : {1.0f, 1e5f}) {
      CAPTURE(device, norm_scale);
      KeptInputRun run{norm_scale, {}, {}};
      auto options = presso::test::compress_options(
          kModel, recipe, kCalib, dir.file(fmt::format("{}-{}", device, norm_scale)), 4, 64);
      options.device = device;
      compress_model(options, presso::test::registry_with_test_pass("kept", [&run] {
                       return std::unique_ptr<Pass>(std::make_unique<KeptInputPass>(&run));
                     }));
      REQUIRE(run.from_block.defined());
      // TF32 products on a GPU, against the fp32 of the whole-block forward; NaN if inf was kept.
      CHECK(max_rel_error(run.from_kept, run.from_block) < (device == "cpu" ? 1e-5 : 5e-3));
    }
  }
}

TEST_CASE("a block's timings and GPU memory peaks read back from their JSON", "[unit]") {
  BlockTimings timings{3, 0.1, 0.2, 0.3, 0.4, 0.5, {{"passes", 12000.5}, {"rerun", 9000.25}}};
  const BlockTimings back = block_timings_from_json(block_timings_json(timings));
  CHECK(back.block == 3);
  CHECK(back.statistics == 0.2);
  CHECK(back.write == 0.5);
  CHECK(back.peak_device_mib == timings.peak_device_mib);
  timings.peak_device_mib.clear();  // a CPU run's
  CHECK_FALSE(block_timings_json(timings).contains("peak_device_mib"));
}

TEST_CASE("a run that cannot fit the GPU's free memory is refused with the numbers", "[unit]") {
  MemoryEstimate estimate;
  estimate.device_parts = {{"hidden states and kept module inputs", 6.0 * (1 << 30)},
                           {"one block's statistics", 1.0 * (1 << 30)}};
  CHECK_NOTHROW(check_device_fits(estimate, "cuda:0", std::nullopt));
  CHECK_NOTHROW(
      check_device_fits(estimate, "cuda:0", DeviceMemory{uint64_t{8} << 30, uint64_t{80} << 30}));
  try {
    check_device_fits(estimate, "cuda:0", DeviceMemory{uint64_t{4} << 30, uint64_t{80} << 30});
    FAIL("no refusal");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("7.00 GiB") && Catch::Contains("cuda:0") &&
                            Catch::Contains("4.00 GiB free of 80.00 GiB") &&
                            Catch::Contains("hidden states and kept module inputs") &&
                            Catch::Contains("--bf16-activations"));
  }
}

TEST_CASE("a TF32 scope sets the matmul flag and restores it", "[unit]") {
  const bool before = at::globalContext().allowTF32CuBLAS();
  {
    const Tf32Scope on(true);
    CHECK(at::globalContext().allowTF32CuBLAS());
    {
      const Tf32Scope off(false);
      CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
    }
    CHECK(at::globalContext().allowTF32CuBLAS());
  }
  CHECK(at::globalContext().allowTF32CuBLAS() == before);
}
