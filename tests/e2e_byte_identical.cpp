// Byte-identical checkpoints across refactors: compresses each fixture model with the recipes and
// formats recorded in tests/data/byte_identical.json and compares the SHA-256 of the written
// model.safetensors and config.json with the digests recorded there. The file was written by the
// `presso compress` of the code before the pass-interface refactor (each combination run twice,
// with identical digests), so a mismatch means a change altered what presso writes.
//
// The digests hold for the build the file's "recorded_with" names (Debian's LibTorch 1.13 and
// OpenBLAS on x86_64, 2 or more BLAS threads) with ATen's AVX2 and OpenBLAS's Haswell kernels,
// which ctest pins for this case (tests/discover_tests.cmake; run by hand, set
// ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell); another BLAS, kernel set or a GPU rounds
// GPTQ's Cholesky and updates differently. scripts/record-byte-identical records them. config.json
// carries presso's version (GPTQ's `meta.quantizer`), so a version bump needs the file recorded
// again.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/sha256.h"
#include "lib/eval/runtime.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

const fs::path kRepoRoot = presso::test::test_data() / ".." / "..";

struct Digests {
  std::string safetensors;  // SHA-256 of model.safetensors
  std::string config;       // SHA-256 of config.json
  bool operator==(const Digests& other) const {
    return safetensors == other.safetensors && config == other.config;
  }
};

Digests digests_from_json(const nlohmann::json& entry) {
  return {entry.at("model.safetensors"), entry.at("config.json")};
}

struct PackedRun {
  std::string format;
  Digests checkpoint;
  std::optional<Digests> dense_copy;  // the --dense-copy export of the same run
};

// The runs of one (model, recipe). Each packed format needs a compress of its own, with its dense
// copy alongside; the dense format needs none of its own when one of those copies was recorded
// with its digests (compressed-tensors and dense share the weight-dtype grid).
struct RunGroup {
  std::string model;
  std::string recipe;  // relative to the repository root
  std::vector<PackedRun> packed;
  std::optional<Digests> dense;
};

struct Recorded {
  nlohmann::json protocol;
  std::string recorded_with;     // shown when a digest differs
  std::vector<RunGroup> groups;  // in the file's order
  nlohmann::json refused;
};

Recorded read_recorded() {
  const std::string path = (presso::test::test_data() / "byte_identical.json").string();
  const nlohmann::json file = nlohmann::json::parse(read_file_bytes(path));
  Recorded recorded{file.at("protocol"),
                    file.value("recorded_with", nlohmann::json()).dump(2),
                    {},
                    file.value("refused", nlohmann::json::array())};
  for (const auto& run : file.at("runs")) {
    const std::string model = run.at("model");
    const std::string recipe = run.at("recipe");
    auto group = std::find_if(recorded.groups.begin(), recorded.groups.end(), [&](const auto& g) {
      return g.model == model && g.recipe == recipe;
    });
    if (group == recorded.groups.end()) {
      recorded.groups.push_back({model, recipe, {}, std::nullopt});
      group = recorded.groups.end() - 1;
    }
    const std::string format = run.at("format");
    if (format == "dense") {
      group->dense = digests_from_json(run);
    } else {
      PackedRun packed{format, digests_from_json(run), std::nullopt};
      if (run.contains("dense_copy")) packed.dense_copy = digests_from_json(run.at("dense_copy"));
      group->packed.push_back(packed);
    }
  }
  return recorded;
}

CompressOptions recorded_options(const fs::path& fixtures, const nlohmann::json& protocol,
                                 const std::string& model, const std::string& recipe,
                                 const std::string& out) {
  CompressOptions options = presso::test::compress_options(
      (fixtures / "models" / model).string(), (kRepoRoot / recipe).string(),
      (fixtures / protocol.at("calib").get<std::string>()).string(), out,
      protocol.at("nsamples").get<int64_t>(), protocol.at("seqlen").get<int64_t>());
  options.seed = protocol.at("seed").get<uint64_t>();
  return options;
}

void check_digests(const std::string& dir, const Digests& expected) {
  CHECK(sha256_file_hex(dir + "/model.safetensors") == expected.safetensors);
  CHECK(sha256_file_hex(dir + "/config.json") == expected.config);
}

}  // namespace

// [all-threads]: run with the BLAS threads the digests were recorded with (tests/CMakeLists.txt).
TEST_CASE("rtn and gptq checkpoints are byte-identical to the recorded ones", "[e2e][all-threads]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  // As `presso compress` does for checkpoints under 512 MB: fewer page faults, same bytes.
  retain_freed_memory();
  const Recorded recorded = read_recorded();
  REQUIRE(!recorded.groups.empty());
  INFO("digests recorded with " << recorded.recorded_with);
  const auto started = std::chrono::steady_clock::now();
  int compresses = 0;
  int compared = 0;
  for (const RunGroup& group : recorded.groups) {
    if (!fs::is_directory(*fx / "models" / group.model)) {
      std::cout << "byte_identical: fixture model " << group.model << " is absent, skipped\n";
      continue;
    }
    bool dense_checked = false;
    for (const PackedRun& run : group.packed) {
      INFO(group.model << " " << group.recipe << " --format " << run.format);
      TempDir dir("byte_identical");
      CompressOptions options =
          recorded_options(*fx, recorded.protocol, group.model, group.recipe, dir.file("out"));
      options.format = output_format_from_name(run.format);
      if (run.dense_copy) options.dense_output_dir = dir.file("dense");
      compress_model(options, pass_registry());
      ++compresses;
      check_digests(dir.file("out"), run.checkpoint);
      ++compared;
      if (run.dense_copy) {
        INFO("its --dense-copy");
        check_digests(dir.file("dense"), *run.dense_copy);
        ++compared;
        dense_checked = dense_checked || (group.dense && *group.dense == *run.dense_copy);
      }
    }
    if (group.dense && !dense_checked) {
      INFO(group.model << " " << group.recipe << " --format dense");
      TempDir dir("byte_identical");
      CompressOptions options =
          recorded_options(*fx, recorded.protocol, group.model, group.recipe, dir.file("out"));
      options.format = OutputFormat::kDense;
      compress_model(options, pass_registry());
      ++compresses;
      check_digests(dir.file("out"), *group.dense);
      ++compared;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "byte_identical: " << compared << " checkpoints from " << compresses
            << " compress runs compared in " << seconds << " s\n";
  CHECK(compared > 0);
}

TEST_CASE("combinations refused when the digests were recorded are still refused", "[e2e]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const Recorded recorded = read_recorded();
  for (const auto& refusal : recorded.refused) {
    const std::string model = refusal.at("model");
    if (!fs::is_directory(*fx / "models" / model)) continue;
    INFO(model << " " << refusal.at("recipe").get<std::string>() << " --format "
               << refusal.at("format").get<std::string>());
    TempDir dir("byte_identical_refused");
    CompressOptions options =
        recorded_options(*fx, recorded.protocol, model, refusal.at("recipe"), dir.file("out"));
    options.format = output_format_from_name(refusal.at("format"));
    // Refused up front, before any output is written.
    CHECK_THROWS_AS(compress_model(options, pass_registry()), UserError);
    CHECK_FALSE(fs::exists(dir.file("out")));
  }
}
