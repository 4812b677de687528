// `presso eval`'s gates as a CI job meets them: exit 0 on pass, 1 on a regression, 2 on bad
// input and on a refused comparison (other data, protocol, missing fields, a truncated log-prob
// file), each with the cause named.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/common/files.h"
#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace {

using nlohmann::json;
using presso::test::run_cli;

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kEval = (presso::test::test_data() / "eval.txt").string();
const std::string kCalib = (presso::test::test_data() / "calib.txt").string();
// Two windows of 64 tokens: the gate logic, not the numbers, is under test.
const std::string kProtocol = " --seqlen 64 --max-windows 2 --no-progress";

json read_json(const std::string& path) { return json::parse(presso::read_file_bytes(path)); }

void expect(const std::string& args, int exit_code, const std::string& expected) {
  const auto result = run_cli(args);
  INFO(args << "\n" << result.output);
  CHECK(result.exit_code == exit_code);
  CHECK_THAT(result.output, Catch::Contains(expected));
}

}  // namespace

TEST_CASE("presso eval --baseline passes then fails then refuses with exit codes 0 1 2", "[e2e]") {
  presso::test::TempDir dir("gate_baseline");
  const std::string eval = "eval " + kModel + " --data " + kEval;
  const std::string base = dir.file("base.json");
  const auto first = run_cli(eval + kProtocol + " --json " + base);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  const json report = read_json(base);
  CHECK(report["schema_version"] == 1);
  CHECK(report["protocol"]["id"] == "presso-ppl-v1");
  CHECK(report["fingerprints"]["data"].get<std::string>().size() == 64);
  CHECK(report["fingerprints"]["model"].get<std::string>().size() == 64);
  CHECK(report["versions"].contains("presso"));

  // Pass: the same model against its own report; the verdict is one line.
  expect(eval + kProtocol + " --baseline " + base + " --max-increase 1%", 0, "PASS: ppl");
  // Fail: a baseline half as perplexed, and an absolute limit below the model's ppl; the report
  // is still written, with the verdict.
  json better = report;
  better["ppl"] = report["ppl"].get<double>() / 2;
  const std::string better_path = dir.write("better.json", better.dump());
  const std::string gated = dir.file("gated.json");
  expect(eval + kProtocol + " --baseline " + better_path + " --max-increase 1% --json " + gated, 1,
         "REGRESSION: ppl");
  CHECK(read_json(gated)["gate"]["passed"] == false);
  expect(eval + kProtocol + " --max-ppl 1.5", 1, "EXCEEDED");

  // Refused (exit 2): other data, another protocol, fields missing.
  expect("eval " + kModel + " --data " + kCalib + kProtocol + " --baseline " + base +
             " --max-increase 1%",
         2, "'/fingerprints/data'");
  expect(eval + " --seqlen 32 --max-windows 2 --baseline " + base + " --max-increase 1%", 2,
         "'/protocol/seqlen'");
  expect(eval + " --seqlen 64 --max-windows 3 --baseline " + base + " --max-increase 1%", 2,
         "'/protocol/windows'");
  json other_protocol = report;
  other_protocol["protocol"]["id"] = "presso-ppl-v0";
  expect(eval + kProtocol + " --baseline " + dir.write("proto.json", other_protocol.dump()) +
             " --max-increase 1%",
         2, "'/protocol/id'");
  json no_fingerprints = report;
  no_fingerprints.erase("fingerprints");
  expect(eval + kProtocol + " --baseline " + dir.write("nofp.json", no_fingerprints.dump()) +
             " --max-increase 1%",
         2, "'/fingerprints/data' is missing");
  json old_schema = report;
  old_schema.erase("schema_version");
  expect(eval + kProtocol + " --baseline " + dir.write("old.json", old_schema.dump()), 2,
         "'/schema_version' is missing");
  expect(eval + kProtocol + " --baseline " + dir.write("broken.json", "{\"ppl\": 1"), 2,
         "not valid JSON");
  // A KL limit against a baseline needs the baseline's KL.
  expect(eval + kProtocol + " --baseline " + base + " --max-kl-increase 10% --reference " + kModel,
         2, "'/kl_reference/fingerprint' is missing");
}

TEST_CASE("presso eval --max-kl passes then fails then refuses with exit codes 0 1 2", "[e2e]") {
  presso::test::TempDir dir("gate_kl");
  const std::string logprobs = dir.file("original.logprobs");
  const std::string eval = "eval " + kModel + " --data " + kEval;
  const auto saved = run_cli(eval + kProtocol + " --save-logprobs " + logprobs);
  INFO(saved.output);
  REQUIRE(saved.exit_code == 0);

  // A model against its own log-probs: KL 0, any limit passes.
  const std::string self = dir.file("self.json");
  expect(eval + kProtocol + " --logprobs " + logprobs + " --max-kl 0 --json " + self, 0,
         "PASS: mean KL");
  CHECK(read_json(self)["mean_kl"] == 0.0);
  CHECK(read_json(self)["top1_agreement"] == 1.0);

  // A 3-bit model diverges: over a tight limit it fails, under a loose one it passes.
  const std::string recipe =
      dir.write("rtn3.yaml", "passes:\n  - rtn: {bits: 3, group_size: 128}\n");
  const std::string out = dir.file("rtn3");
  const auto compressed = run_cli("compress " + kModel + " --recipe " + recipe + " -o " + out);
  INFO(compressed.output);
  REQUIRE(compressed.exit_code == 0);
  const std::string quantized = "eval " + out + " --data " + kEval + kProtocol;
  expect(quantized + " --logprobs " + logprobs + " --max-kl 0.001", 1, "REGRESSION: mean KL");
  expect(quantized + " --logprobs " + logprobs + " --max-kl 5", 0, "PASS: mean KL");
  expect(quantized + " --reference " + kModel + " --max-kl 0.001", 1, "REGRESSION: mean KL");

  // Refused (exit 2): a truncated file, other windows, other data, no reference at all.
  const std::string bytes = presso::read_file_bytes(logprobs);
  const std::string truncated = dir.write("truncated.logprobs", bytes.substr(0, bytes.size() / 2));
  expect(quantized + " --logprobs " + truncated + " --max-kl 1", 2, "truncated.logprobs");
  expect("eval " + out + " --data " + kEval + " --seqlen 64 --max-windows 1 --logprobs " + logprobs,
         2, "field 'windows' differs");
  expect("eval " + out + " --data " + kCalib + kProtocol + " --logprobs " + logprobs, 2,
         "field 'data_fingerprint' differs");
  expect(quantized + " --max-kl 1", 2, "--max-kl needs a KL reference");
  expect(quantized + " --logprobs " + logprobs + " --reference " + kModel, 2, "pass one of them");
  expect(quantized + " --logprobs " + dir.write("notes.logprobs", "not a file of tensors"), 2,
         "notes.logprobs");
}
