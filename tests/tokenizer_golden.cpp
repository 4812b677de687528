// The tokenizer against encodings made by the Rust `tokenizers` library (../shared/fixtures).
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lib/tokenizer/tokenizer.h"
#include "tests/fixtures.h"

namespace {

using presso::Tokenizer;
namespace fs = std::filesystem;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

fs::path tokenizer_json(const fs::path& fixtures, const std::string& name) {
  if (name == "sotu-llama-16m") return fixtures / "models" / name / "tokenizer.json";
  return fixtures / "tokenizers" / name / "tokenizer.json";
}

// Empty when equal, else where and how the sequences first differ.
template <typename T>
std::string first_difference(const std::vector<T>& got, const std::vector<T>& want) {
  for (size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
    if (i >= got.size() || i >= want.size() || got[i] != want[i]) {
      std::ostringstream message;
      message << "first difference at position " << i << ": got "
              << (i < got.size() ? std::to_string(got[i]) : "(end)") << ", want "
              << (i < want.size() ? std::to_string(want[i]) : "(end)") << " (lengths " << got.size()
              << " and " << want.size() << ")";
      return message.str();
    }
  }
  return "";
}

// The int64 tensor `name` of a safetensors file (8-byte header length, JSON header, data).
std::vector<int64_t> read_int64_tensor(const fs::path& path, const std::string& name) {
  const std::string bytes = read_all(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  const auto& entry = header.at(name);
  REQUIRE(entry.at("dtype") == "I64");
  const size_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
  std::vector<int64_t> values((end - begin) / 8);
  std::memcpy(values.data(), bytes.data() + 8 + header_size + begin, end - begin);
  return values;
}

}  // namespace

TEST_CASE("tokenizer matches every golden encoding of the tokenizers library", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const auto golden = nlohmann::json::parse(read_all(*fx / "tokenizers" / "golden_encodings.json"));
  REQUIRE(golden.size() == 3);
  for (const auto& [name, entries] : golden.items()) {
    const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_json(*fx, name).string());
    for (const auto& entry : entries) {
      const std::string text = entry.at("text");
      const auto want_ids = entry.at("ids").get<std::vector<int32_t>>();
      const auto want_special = entry.at("ids_with_special").get<std::vector<int32_t>>();
      INFO("tokenizer " << name << ", text " << nlohmann::json(text).dump());
      const auto ids = tokenizer.encode(text, false);
      INFO("ids: " << first_difference(ids, want_ids));
      CHECK(ids == want_ids);
      const auto special = tokenizer.encode(text, true);
      INFO("ids_with_special: " << first_difference(special, want_special));
      CHECK(special == want_special);
      // The fixture's "decoded" keeps special tokens (skip_special_tokens=false).
      CHECK(tokenizer.decode(want_ids, false) == entry.at("decoded").get<std::string>());
    }
  }
}

TEST_CASE("sotu tokenizer gives eval.txt the token count behind reference_ppl.json", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const fs::path model = *fx / "models" / "sotu-llama-16m";
  const Tokenizer tokenizer = Tokenizer::from_model_dir(model.string());
  const auto ids = tokenizer.encode(read_all(*fx / "text" / "eval.txt"), false);
  const auto reference = nlohmann::json::parse(read_all(model / "reference_ppl.json"));
  for (const int seq_len : {128, 512}) {
    const std::string key = "eval/seq" + std::to_string(seq_len) + "/all";
    INFO(key << ": " << ids.size() << " tokens");
    CHECK(ids.size() / seq_len == reference.at(key).at("windows").get<size_t>());
  }
  // reference_logits.safetensors holds the first 64 tokens of eval.txt as input_ids [2, 32].
  const auto first_ids = read_int64_tensor(model / "reference_logits.safetensors", "input_ids");
  REQUIRE(first_ids.size() == 64);
  CHECK(std::vector<int64_t>(ids.begin(), ids.begin() + 64) == first_ids);
}
