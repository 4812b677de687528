// RTN end to end on the fixture models, perplexity on eval.txt at seqlen 512: every packed format
// must evaluate to the perplexity of the dense export of the same run. RTN's output does not
// depend on the calibration windows (they only feed the reported output errors; passes_driver
// checks that the checkpoints are byte-identical), so 2 windows x 512 tokens of calib.txt stand
// in for the protocol's 128 here.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/export_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

struct RtnCase {
  std::string name;
  std::string options;  // recipe options
  int bits;
  bool awq_layout;  // AutoAWQ GEMM holds it (4 bits, grouped)
};

const std::vector<RtnCase> kCases = {
    {"w4g128-asym", "bits: 4, group_size: 128, symmetric: false", 4, true},
    {"w4-per-channel-asym", "bits: 4, group_size: -1, symmetric: false", 4, false},
    {"w3g128-asym", "bits: 3, group_size: 128, symmetric: false", 3, false},
};

// Windows of eval.txt scored per perplexity; the equality is per window, so a subset suffices.
constexpr int64_t kEvalWindows = 8;

}  // namespace

TEST_CASE("rtn outputs in every packed format evaluate like the dense export", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const std::string calib = (*fx / "text" / "calib.txt").string();
  const std::string eval = (*fx / "text" / "eval.txt").string();
  for (const auto& model : presso::test::checkpoint_dirs(*fx, "models")) {
    const double base = presso::test::perplexity(model.string(), eval, kEvalWindows);
    for (const auto& rtn : kCases) {
      std::vector<OutputFormat> formats = {OutputFormat::kCompressedTensors, OutputFormat::kGptq};
      if (rtn.awq_layout) formats.push_back(OutputFormat::kAwq);
      for (OutputFormat format : formats) {
        const std::string label =
            model.filename().string() + " " + rtn.name + " " + output_format_name(format);
        INFO(label);
        TempDir dir("rtn");
        const std::string recipe = presso::test::write_recipe(dir, rtn.name, "rtn", rtn.options);
        CompressOptions options = presso::test::compress_options(model.string(), recipe, calib,
                                                                 dir.file("packed"), 2, 512);
        options.format = format;
        options.dense_output_dir = dir.file("dense");
        const nlohmann::json report = compress_model(options, pass_registry()).to_json();

        const double packed = presso::test::perplexity(dir.file("packed"), eval, kEvalWindows);
        const double dense = presso::test::perplexity(dir.file("dense"), eval, kEvalWindows);
        std::cout << label << ": ppl base " << base << ", dense " << dense << ", packed " << packed
                  << "\n";
        CHECK(std::abs(packed / dense - 1.0) < 1e-4);
        // Quantization costs something, but RTN at these widths does not wreck the model.
        CHECK(dense > base);
        CHECK(dense < base * (rtn.bits == 3 ? 4.0 : 1.6));

        // Every block linear is quantized and has a measured output error.
        int quantized = 0;
        for (const auto& layer : report["layers"]) {
          CHECK(layer["scheme"]["bits"] == rtn.bits);
          const double error = layer["relative_output_error"].get<double>();
          CHECK(error > 0.0);
          CHECK(error < (rtn.bits == 3 ? 0.6 : 0.3));
          ++quantized;
        }
        CHECK(quantized > 0);

        // An independent reader of the documented layouts decodes every packed linear to
        // exactly the dense export's tensor.
        const SafetensorsFile packed_file(dir.file("packed") + "/model.safetensors");
        const SafetensorsFile dense_file(dir.file("dense") + "/model.safetensors");
        const auto q = presso::test::read_json(fs::path(dir.file("packed")) / "config.json")
                           .at("quantization_config");
        for (const auto& layer : report["layers"]) {
          const std::string name = layer["name"];
          const torch::Tensor dense = dense_file.load(name + ".weight");
          const torch::Tensor read =
              presso::test::read_packed_linear(packed_file, q, name).to(dense.scalar_type());
          INFO(name);
          CHECK(torch::equal(read, dense));
        }
      }
    }
  }
}
