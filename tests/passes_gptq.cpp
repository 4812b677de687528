// GPTQ end to end: it must beat RTN of the same scheme on every fixture model, and a run is
// reproducible byte for byte.
#include "tests/catch_torch.h"

#include <filesystem>

#include "lib/common/files.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

struct Scheme {
  std::string name;
  std::string quant;      // options both passes share
  std::string gptq_only;  // extra GPTQ options
};

const std::vector<Scheme> kSchemes = {
    {"w4g128", "bits: 4, group_size: 128, symmetric: false", ""},
    {"w4g128-act-order", "bits: 4, group_size: 128, symmetric: false", ", act_order: true"},
    {"w3g128", "bits: 3, group_size: 128, symmetric: false", ""},
    {"w4-per-channel", "bits: 4, group_size: -1, symmetric: false", ""},
};

// The protocol calibrates on 128 windows x 512 tokens (numbers in the closing note of
// issue 5); 32 windows keep this test to a few minutes on two cores and already separate GPTQ
// from RTN by a wide margin.
constexpr int64_t kCalibWindows = 32;
constexpr int64_t kEvalWindows = 16;

// `calib` empty: no calibration (RTN needs none).
double compress_and_evaluate(const TempDir& dir, const fs::path& model, const std::string& name,
                             const std::string& pass, const std::string& options,
                             const std::string& calib, const std::string& eval) {
  return presso::test::compress_and_evaluate(
      dir, model.string(), presso::test::write_recipe(dir, name, pass, options), name, calib,
      kCalibWindows, eval, kEvalWindows);
}

}  // namespace

TEST_CASE("gptq beats rtn of the same scheme on the fixture models", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const std::string calib = (*fx / "text" / "calib.txt").string();
  const std::string eval = (*fx / "text" / "eval.txt").string();
  for (const auto& model : presso::test::checkpoint_dirs(*fx, "models")) {
    TempDir dir("gptq");
    double rtn_w4g128 = 0;
    for (const auto& scheme : kSchemes) {
      INFO(model.filename().string() + " " + scheme.name);
      const double gptq = compress_and_evaluate(dir, model, "gptq-" + scheme.name, "gptq",
                                                scheme.quant + scheme.gptq_only, calib, eval);
      // Act-order changes nothing for RTN; its baseline is plain w4g128's.
      const double rtn = scheme.gptq_only.empty()
                             ? compress_and_evaluate(dir, model, "rtn-" + scheme.name, "rtn",
                                                     scheme.quant, "", eval)
                             : rtn_w4g128;
      if (scheme.name == "w4g128") rtn_w4g128 = rtn;
      std::cout << model.filename().string() << " " << scheme.name << ": ppl gptq " << gptq
                << ", rtn " << rtn << "\n";
      CHECK(gptq < rtn);
    }
  }
}

TEST_CASE("a gptq run is reproducible byte for byte", "[unit]") {
  TempDir dir("gptq_seed");
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  const std::string recipe =
      presso::test::write_recipe(dir, "r", "gptq", "bits: 4, act_order: true");
  for (const char* out : {"a", "b"}) {
    compress_model(presso::test::compress_options(model, recipe, calib, dir.file(out), 4, 64),
                   pass_registry());
  }
  CHECK(read_file_bytes(dir.file("a") + "/model.safetensors") ==
        read_file_bytes(dir.file("b") + "/model.safetensors"));
  // A different seed draws other windows, so other Hessians and other codes.
  auto options = presso::test::compress_options(model, recipe, calib, dir.file("c"), 4, 64);
  options.seed = 1;
  compress_model(options, pass_registry());
  CHECK(read_file_bytes(dir.file("a") + "/model.safetensors") !=
        read_file_bytes(dir.file("c") + "/model.safetensors"));
}
