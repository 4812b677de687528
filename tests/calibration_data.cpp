// Calibration data readers: JSONL, pre-tokenized files, plain text, and their error messages.
// The cases that need the tokenizer come last.
#include "calibration/calibration_data.h"

#include <torch/types.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calibration/windows.h"
#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/io/safetensors.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

std::string tensor_file(const presso::test::TempDir& dir, const std::string& name,
                        const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const std::string path = dir.file(name);
  presso::SafetensorsWriter writer(path);
  for (const auto& [tensor_name, tensor] : tensors) writer.add(tensor_name, tensor);
  writer.finish();
  return path;
}

presso::CalibrationSource source_for(const std::string& path) {
  presso::CalibrationSource source;
  source.path = path;
  return source;
}

const presso::Tokenizer& llama_tokenizer() {
  static const presso::Tokenizer tokenizer =
      presso::Tokenizer::from_model_dir((presso::test::test_data() / "sotu-llama-16m").string());
  return tokenizer;
}

}  // namespace

TEST_CASE("formats are chosen by name or by extension", "[unit]") {
  using presso::CalibFormat;
  CHECK(presso::detect_calib_format("a/calib.jsonl") == CalibFormat::kJsonl);
  CHECK(presso::detect_calib_format("ids.safetensors") == CalibFormat::kSafetensors);
  CHECK(presso::detect_calib_format("ids.json") == CalibFormat::kJsonIds);
  CHECK(presso::detect_calib_format("calib.txt") == CalibFormat::kText);
  CHECK(presso::detect_calib_format("wiki.train.raw") == CalibFormat::kText);
  CHECK(presso::detect_calib_format("README") == CalibFormat::kText);
  for (CalibFormat f : {CalibFormat::kAuto, CalibFormat::kText, CalibFormat::kJsonl,
                        CalibFormat::kSafetensors, CalibFormat::kJsonIds})
    CHECK(presso::calib_format_from_name(presso::calib_format_name(f)) == f);
  CHECK_THROWS_WITH(presso::calib_format_from_name("csv"), Contains("'csv'") && Contains("jsonl"));
}

TEST_CASE("JSONL gives the named field of each line, skipping blank lines", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string path = dir.write(
      "c.jsonl",
      "{\"text\": \"first doc\", \"id\": 1}\r\n\n{\"id\": 2, \"text\": \"second \\u00e9\"}\n"
      "  \n{\"text\": \"\", \"content\": \"x\"}");
  CHECK(presso::read_jsonl_texts(path, "text") ==
        std::vector<std::string>{"first doc", "second \xc3\xa9", ""});
  const std::string other = dir.write("o.jsonl", "{\"content\": \"a\"}\n{\"content\": \"b\"}\n");
  CHECK(presso::read_jsonl_texts(other, "content") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("JSONL errors name the file, the line and the field", "[unit]") {
  presso::test::TempDir dir("calib");
  std::string good;
  for (int i = 0; i < 6; ++i) good += "{\"text\": \"ok\"}\n";
  const std::string bad_json = dir.write("bad.jsonl", good + "{\"text\": \"unterminated}\n");
  CHECK_THROWS_WITH(presso::read_jsonl_texts(bad_json, "text"),
                    Contains("bad.jsonl:7: invalid JSON"));
  const std::string missing =
      dir.write("missing.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\", \"id\": 3}\n");
  CHECK_THROWS_WITH(
      presso::read_jsonl_texts(missing, "text"),
      Contains("missing.jsonl:2: field 'text' is missing") && Contains("'body', 'id'"));
  const std::string number = dir.write("number.jsonl", "{\"text\": \"a\"}\n\n{\"text\": 5}\n");
  CHECK_THROWS_WITH(presso::read_jsonl_texts(number, "text"),
                    Contains("number.jsonl:3: field 'text' is a JSON number, expected a string"));
  const std::string array = dir.write("array.jsonl", "[\"text\"]\n");
  CHECK_THROWS_WITH(presso::read_jsonl_texts(array, "text"),
                    Contains("array.jsonl:1: line is a JSON array"));
  const std::string empty = dir.write("empty.jsonl", "\n \n");
  CHECK_THROWS_WITH(presso::read_jsonl_texts(empty, "text"), Contains("empty.jsonl: no documents"));
  CHECK_THROWS_AS(presso::read_jsonl_texts(dir.file("absent.jsonl"), "text"), presso::UserError);
}

TEST_CASE("pre-tokenized safetensors ids are read flat, rows in order, padding dropped", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string flat =
      tensor_file(dir, "flat.safetensors", {{"input_ids", torch::arange(10, torch::kInt64)}});
  CHECK(presso::read_safetensors_ids(flat, 100) ==
        std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  const torch::Tensor rows = torch::tensor({5, 6, 7, 9, 8, 9}, torch::kInt32).view({2, 3});
  const torch::Tensor mask = torch::tensor({1, 1, 1, 0, 1, 1}, torch::kInt64).view({2, 3});
  const std::string padded =
      tensor_file(dir, "rows.safetensors", {{"input_ids", rows}, {"attention_mask", mask}});
  CHECK(presso::read_safetensors_ids(padded, 10) == std::vector<int32_t>{5, 6, 7, 8, 9});
  const std::string unpadded = tensor_file(dir, "rows2.safetensors", {{"input_ids", rows}});
  CHECK(presso::read_safetensors_ids(unpadded, 10) == std::vector<int32_t>{5, 6, 7, 9, 8, 9});
}

TEST_CASE("pre-tokenized safetensors errors name the file, tensor and position", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string floats =
      tensor_file(dir, "f.safetensors", {{"input_ids", torch::zeros({4}, torch::kFloat32)}});
  CHECK_THROWS_WITH(presso::read_safetensors_ids(floats, 10),
                    Contains("f.safetensors: tensor 'input_ids' has dtype F32"));
  const std::string other =
      tensor_file(dir, "o.safetensors", {{"tokens", torch::zeros({4}, torch::kInt64)}});
  CHECK_THROWS_WITH(presso::read_safetensors_ids(other, 10),
                    Contains("o.safetensors: no tensor 'input_ids'") && Contains("'tokens'"));
  const torch::Tensor ids = torch::tensor({1, 2, 3, 4, 5, 6, 7, 12}, torch::kInt64).view({2, 4});
  const std::string range = tensor_file(dir, "r.safetensors", {{"input_ids", ids}});
  CHECK_THROWS_WITH(presso::read_safetensors_ids(range, 7),
                    Contains("r.safetensors: tensor 'input_ids'[1, 2] = 7 is outside the "
                             "vocabulary [0, 7)") &&
                        Contains("2 ids out of range"));
  const std::string cube =
      tensor_file(dir, "c.safetensors", {{"input_ids", torch::zeros({1, 2, 2}, torch::kInt64)}});
  CHECK_THROWS_WITH(presso::read_safetensors_ids(cube, 7), Contains("3 dimensions"));
}

TEST_CASE("pre-tokenized JSON ids: a list or a list of lists, checked element by element",
          "[unit]") {
  presso::test::TempDir dir("calib");
  CHECK(presso::read_json_ids(dir.write("a.json", "[3, 1, 4]"), 5) ==
        std::vector<int32_t>{3, 1, 4});
  CHECK(presso::read_json_ids(dir.write("b.json", "[[3, 1], [4, 1, 0]]"), 5) ==
        std::vector<int32_t>{3, 1, 4, 1, 0});
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("c.json", "[[3, 1], [4.5]]"), 5),
                    Contains("c.json: element [1][0] is number (4.5)"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("d.json", "[3, -1]"), 5),
                    Contains("d.json: element [1] is -1, outside the vocabulary [0, 5)"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("e.json", "[3, 5]"), 5),
                    Contains("element [1] is 5, outside"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("f.json", "{\"input_ids\": [1]}"), 5),
                    Contains("f.json: the file holds a JSON object"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("g.json", ""), 5),
                    Contains("g.json: empty file"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("h.json", "[1, 2"), 5),
                    Contains("h.json: invalid JSON"));
  CHECK_THROWS_WITH(presso::read_json_ids(dir.write("i.json", "[]"), 5),
                    Contains("i.json: no token ids"));
}

// From here on the tokenizer is needed.

TEST_CASE("plain text is tokenized whole without special tokens", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string text =
      presso::read_file_bytes((presso::test::test_data() / "calib.txt").string()).substr(0, 20000);
  const std::string path = dir.write("calib.txt", text);
  const presso::Tokenizer& tokenizer = llama_tokenizer();
  const std::vector<int32_t> tokens = presso::load_calibration_tokens(source_for(path), tokenizer);
  CHECK(tokens == tokenizer.encode(text, /*add_special_tokens=*/false));
  CHECK(tokens.front() != *tokenizer.token_to_id("<|begin_of_text|>"));
  const torch::Tensor windows = presso::sample_windows(tokens, 8, 128, 0);
  CHECK(windows.max().item<int64_t>() < static_cast<int64_t>(tokenizer.vocab_size()));

  CHECK_THROWS_WITH(
      presso::load_calibration_tokens(source_for(dir.write("empty.txt", "")), tokenizer),
      Contains("empty.txt: empty file"));
}

TEST_CASE("a text too short for the windows says how many tokens it has and needs", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string path = dir.write("short.txt", "Fellow citizens of the Senate.");
  const std::vector<int32_t> tokens =
      presso::load_calibration_tokens(source_for(path), llama_tokenizer());
  const std::string count = std::to_string(tokens.size()) + " tokens";
  CHECK_THROWS_WITH(presso::sample_windows(tokens, 4, 512, 0),
                    Contains(count) && Contains("514 are needed"));
}

TEST_CASE("JSONL documents are tokenized one by one and joined by the separator", "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string path =
      dir.write("docs.jsonl", "{\"text\": \"The Union\"}\n{\"text\": \"is strong.\"}\n");
  const presso::Tokenizer& tokenizer = llama_tokenizer();
  const std::vector<int32_t> a = tokenizer.encode("The Union", false);
  const std::vector<int32_t> b = tokenizer.encode("is strong.", false);
  presso::CalibrationSource source = source_for(path);
  std::vector<int32_t> joined = a;
  joined.insert(joined.end(), b.begin(), b.end());
  CHECK(presso::load_calibration_tokens(source, tokenizer) == joined);

  const int32_t eos = *tokenizer.token_to_id("<|end_of_text|>");
  source.document_separator = eos;
  joined = a;
  joined.push_back(eos);
  joined.insert(joined.end(), b.begin(), b.end());
  CHECK(presso::load_calibration_tokens(source, tokenizer) == joined);
}

TEST_CASE("pre-tokenized ids are checked against the tokenizer's or the given vocabulary",
          "[unit]") {
  presso::test::TempDir dir("calib");
  const std::string path = dir.write("ids.json", "[0, 8191, 8192]");
  presso::CalibrationSource source = source_for(path);
  CHECK_THROWS_WITH(presso::load_calibration_tokens(source, llama_tokenizer()),
                    Contains("element [2] is 8192, outside the vocabulary [0, 8192)"));
  source.vocab_size = 8200;
  CHECK(presso::load_calibration_tokens(source, llama_tokenizer()).size() == 3);
}

TEST_CASE("reference input_ids read as pre-tokenized data equal our tokenization of the text",
          "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const fs::path model = *fx / "models" / "sotu-llama-16m";
  // reference_logits.safetensors' input_ids [2, 32] are the first 64 tokens of text/eval.txt.
  const std::vector<int32_t> ids =
      presso::read_safetensors_ids((model / "reference_logits.safetensors").string(), 8192);
  REQUIRE(ids.size() == 64);
  const std::string head =
      presso::read_file_bytes((*fx / "text" / "eval.txt").string()).substr(0, 4000);
  std::vector<int32_t> expected =
      presso::Tokenizer::from_model_dir(model.string()).encode(head, false);
  expected.resize(64);
  CHECK(ids == expected);
}
