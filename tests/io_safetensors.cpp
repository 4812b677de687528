// safetensors reading and writing: round trips through SafetensorsWriter and SafetensorsFile, and
// every checkpoint of the fixtures (written by Hugging Face's own library) read back.
#include "tests/catch_torch.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using presso::SafetensorsFile;
using presso::SafetensorsWriter;
using presso::StDtype;
using presso::TensorStore;
using presso::test::TempDir;

namespace {

// True when both tensors have the same dtype, shape and bytes (NaN payloads and -0 included).
bool bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;  // empty tensors may have no storage: memcmp on null is UB
  torch::Tensor ca = a.contiguous();
  torch::Tensor cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// A [3, 5] tensor of every dtype, with infinities, NaN and -0 among the floats.
torch::Tensor sample_tensor(torch::ScalarType type) {
  if (type == torch::kBool) return torch::randint(0, 2, {3, 5}).to(torch::kBool);
  if (!c10::isFloatingType(type)) return torch::randint(-100, 100, {3, 5}).to(type);
  torch::Tensor values = torch::randn({3, 5}, torch::TensorOptions().dtype(torch::kFloat64));
  values[0][0] = std::numeric_limits<double>::infinity();
  values[0][1] = -std::numeric_limits<double>::infinity();
  values[0][2] = std::numeric_limits<double>::quiet_NaN();
  values[0][3] = -0.0;
  return values.to(type);
}

const std::vector<torch::ScalarType> kAllTorchTypes = {
    torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
    torch::kInt32,   torch::kInt16,   torch::kInt8,    torch::kUInt8,    torch::kBool};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

TEST_CASE("every dtype round-trips bit-exactly through writer and reader", "[unit]") {
  torch::manual_seed(0);
  TempDir dir("roundtrip");
  std::string path = dir.file("all.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> written;
  {
    SafetensorsWriter writer(path, {{"format", "pt"}, {"note", "ünïcödé, \"quoted\""}});
    for (torch::ScalarType type : kAllTorchTypes) {
      std::string name =
          std::string("t.") + presso::st_dtype_name(presso::st_dtype_from_torch(type));
      written.emplace_back(name, sample_tensor(type));
      writer.add(name, written.back().second);
    }
    writer.finish();
  }
  SafetensorsFile file(path);
  REQUIRE(file.names().size() == written.size());
  CHECK(file.metadata() ==
        std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcödé, \"quoted\""}});
  for (const auto& [name, tensor] : written) {
    INFO(name);
    CHECK(file.info(name).dtype == presso::st_dtype_from_torch(tensor.scalar_type()));
    CHECK(bit_equal(file.load(name), tensor));
  }
  CHECK(file.names().front() == written.front().first);  // header order = insertion order
}

TEST_CASE("written files pad the header to 8 bytes and align every tensor", "[unit]") {
  TempDir dir("align");
  std::string path = dir.file("mixed.safetensors");
  {
    // Odd element counts, so that insertion order alone would misalign the later tensors.
    SafetensorsWriter writer(path, {{"k", "v"}});
    writer.add("u8", torch::ones({3}, torch::kUInt8));
    writer.add("bf16", torch::ones({5}, torch::kBFloat16));
    writer.add("f32", torch::ones({3}, torch::kFloat32));
    writer.add("f64", torch::ones({1}, torch::kFloat64));
    writer.finish();
  }
  std::string bytes = read_file(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHECK(header_length % 8 == 0);
  auto header = nlohmann::json::parse(bytes.substr(8, header_length));
  CHECK(header["__metadata__"]["k"] == "v");
  SafetensorsFile file(path);
  for (const std::string& name : file.names()) {
    INFO(name);
    CHECK((8 + header_length + file.info(name).begin) %
              presso::st_dtype_size(file.info(name).dtype) ==
          0);
  }
}

TEST_CASE("empty tensors, 0-d scalars and views round-trip", "[unit]") {
  TempDir dir("shapes");
  std::string path = dir.file("shapes.safetensors");
  torch::Tensor matrix = torch::arange(24, torch::kFloat32).reshape({4, 6});
  std::vector<std::pair<std::string, torch::Tensor>> written = {
      {"empty_1d", torch::empty({0}, torch::kFloat32)},
      {"empty_3d", torch::empty({2, 0, 3}, torch::kBFloat16)},
      {"scalar_f32", torch::tensor(3.5f)},
      {"scalar_i64", torch::tensor(int64_t{-7})},
      {"transposed", matrix.t()},
      {"strided_slice", matrix.slice(1, 1, 6, 2)},
      {"offset_row", matrix[2]},
  };
  {
    SafetensorsWriter writer(path);
    for (const auto& [name, tensor] : written) writer.add(name, tensor);
    writer.finish();
  }
  SafetensorsFile file(path);
  CHECK(file.metadata().empty());
  for (const auto& [name, tensor] : written) {
    INFO(name);
    torch::Tensor loaded = file.load(name);
    CHECK(loaded.sizes() == tensor.sizes());
    CHECK(bit_equal(loaded, tensor));
  }
  CHECK(file.info("scalar_f32").shape.empty());
}

TEST_CASE("a file with no tensors round-trips", "[unit]") {
  TempDir dir("no_tensors");
  std::string path = dir.file("none.safetensors");
  SafetensorsWriter writer(path);
  writer.finish();
  SafetensorsFile file(path);
  CHECK(file.names().empty());
}

TEST_CASE("a writer destroyed without finish leaves nothing behind", "[unit]") {
  TempDir dir("abandoned");
  {
    SafetensorsWriter writer(dir.file("out.safetensors"), {{"k", "v"}});
    writer.add("a", torch::ones({64, 64}));
    writer.add("b", torch::ones({8}, torch::kInt8));
  }
  CHECK(fs::is_empty(dir.path));

  // A file already at the path keeps its content.
  std::ofstream(dir.file("keep.safetensors")) << "previous";
  {
    SafetensorsWriter writer(dir.file("keep.safetensors"));
    writer.add("a", torch::ones({4}));
  }
  CHECK(read_file(dir.file("keep.safetensors")) == "previous");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("the writer refuses duplicate names, reserved names and unsupported dtypes", "[unit]") {
  TempDir dir("writer_errors");
  SafetensorsWriter writer(dir.file("w.safetensors"));
  writer.add("a", torch::ones({2}));
  REQUIRE_THROWS_WITH(writer.add("a", torch::ones({2})), Catch::Contains("w.safetensors") &&
                                                             Catch::Contains("'a'") &&
                                                             Catch::Contains("twice"));
  REQUIRE_THROWS_AS(writer.add("__metadata__", torch::ones({2})), presso::UserError);
  REQUIRE_THROWS_WITH(writer.add("c", torch::ones({2}, torch::kComplexFloat)),
                      Catch::Contains("w.safetensors") && Catch::Contains("'c'"));
  writer.finish();
  CHECK(SafetensorsFile(dir.file("w.safetensors")).names() == std::vector<std::string>{"a"});
  CHECK(fs::exists(dir.file("w.safetensors")));
  CHECK_FALSE(fs::exists(dir.file("w.safetensors.tmp")));
}

TEST_CASE("loading converts on request, and bf16 and f16 upcast as torch converts", "[unit]") {
  TempDir dir("convert");
  std::string path = dir.file("c.safetensors");
  torch::Tensor bf16 = sample_tensor(torch::kBFloat16);
  torch::Tensor f16 = sample_tensor(torch::kFloat16);
  torch::Tensor flags = torch::tensor({0, 1, 1}, torch::kUInt8).to(torch::kBool);
  {
    SafetensorsWriter writer(path);
    writer.add("bf16", bf16);
    writer.add("f16", f16);
    writer.add("flags", flags);
    writer.finish();
  }
  SafetensorsFile file(path);
  CHECK(bit_equal(file.load("bf16", torch::kFloat32), bf16.to(torch::kFloat32)));
  CHECK(bit_equal(file.load("f16", torch::kFloat32), f16.to(torch::kFloat32)));
  CHECK(bit_equal(file.load("flags", torch::kFloat32), flags.to(torch::kFloat32)));
  CHECK(file.load("bf16", torch::kBFloat16).scalar_type() == torch::kBFloat16);
}

TEST_CASE("stored BOOL bytes other than 0 and 1 load as true", "[unit]") {
  TempDir dir("bool_bytes");
  std::string path = dir.file("b.safetensors");
  {
    SafetensorsWriter writer(path);
    writer.add("flags", torch::tensor({0, 1, 1}, torch::kUInt8).to(torch::kBool));
    writer.finish();
  }
  std::string bytes = read_file(path);
  bytes[bytes.size() - 1] = 7;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  torch::Tensor flags = SafetensorsFile(path).load("flags");
  CHECK(flags.scalar_type() == torch::kBool);
  CHECK(torch::equal(flags.to(torch::kUInt8), torch::tensor({0, 1, 1}, torch::kUInt8)));
}

TEST_CASE("a TensorStore over a single file loads fp32 by default and suggests names", "[unit]") {
  TempDir dir("store");
  {
    SafetensorsWriter writer(dir.file("model.safetensors"));
    writer.add("model.layers.0.mlp.up_proj.weight", torch::ones({4, 2}, torch::kBFloat16));
    writer.add("model.norm.weight", torch::ones({2}, torch::kFloat32));
    writer.finish();
  }
  TensorStore store = TensorStore::open_dir(dir.path.string());
  CHECK(store.names() ==
        std::vector<std::string>{"model.layers.0.mlp.up_proj.weight", "model.norm.weight"});
  CHECK(store.load("model.layers.0.mlp.up_proj.weight").scalar_type() == torch::kFloat32);
  CHECK(store.load("model.layers.0.mlp.up_proj.weight", std::nullopt).scalar_type() ==
        torch::kBFloat16);
  CHECK(store.total_bytes() == 4 * 2 * 2 + 2 * 4);
  CHECK(store.files().size() == 1);
  REQUIRE_THROWS_WITH(store.load("model.layers.0.mlp.up_proj.weights"),
                      Catch::Contains("'model.layers.0.mlp.up_proj.weights'") &&
                          Catch::Contains(dir.path.string()) &&
                          Catch::Contains("did you mean 'model.layers.0.mlp.up_proj.weight'"));
  REQUIRE_THROWS_AS(store.info("lm_head.weight"), presso::UserError);
}

TEST_CASE("every fixture checkpoint opens and every tensor reads back sanely", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  size_t checkpoints = 0;
  for (const std::string group : {"tiny", "models"}) {
    for (const fs::path& checkpoint : presso::test::checkpoint_dirs(*fx, group)) {
      INFO(checkpoint.string());
      ++checkpoints;
      TensorStore store = TensorStore::open_dir(checkpoint.string());
      REQUIRE_FALSE(store.names().empty());
      uint64_t bytes = 0;
      for (const std::string& name : store.names()) {
        INFO(name);
        const presso::TensorInfo& info = store.info(name);
        torch::Tensor stored = store.load(name, std::nullopt);
        REQUIRE(stored.scalar_type() == presso::st_dtype_to_torch(info.dtype));
        REQUIRE(stored.sizes().vec() == info.shape);
        REQUIRE(stored.numel() > 0);
        bytes += info.nbytes();
        if (!stored.is_floating_point()) continue;
        torch::Tensor fp32 = store.load(name);
        REQUIRE(fp32.scalar_type() == torch::kFloat32);
        REQUIRE(bit_equal(fp32, stored.to(torch::kFloat32)));
        REQUIRE(torch::isfinite(fp32).all().item<bool>());
      }
      CHECK(store.total_bytes() == bytes);

      SafetensorsFile reference((checkpoint / "reference_logits.safetensors").string());
      CHECK(reference.info("input_ids").dtype == StDtype::I64);
      CHECK(reference.info("logits").dtype == StDtype::F32);
      CHECK(reference.info("logits").shape.size() == 3);
      CHECK(reference.load("logits").sizes()[0] == reference.load("input_ids").sizes()[0]);
    }
  }
  REQUIRE(checkpoints > 0);
}

TEST_CASE("the sharded fixture opens through its index with all five shards", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  fs::path dir = *fx / "tiny" / "llama3-rope-sharded";
  TensorStore store = TensorStore::open_dir(dir.string());
  CHECK(store.files().size() == 5);
  auto index = nlohmann::json::parse(read_file((dir / "model.safetensors.index.json").string()));
  CHECK(store.names().size() == index["weight_map"].size());
  CHECK(store.total_bytes() == index["metadata"]["total_size"].get<uint64_t>());
  CHECK(store.info("lm_head.weight").dtype == StDtype::BF16);
  // bf16 -> fp32 only appends zero bits to the mantissa.
  torch::Tensor weight = store.load("lm_head.weight");
  CHECK(weight.view(torch::kInt32).bitwise_and(0xFFFF).eq(0).all().item<bool>());
}

TEST_CASE("the trained bf16 models upcast exactly to fp32", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  TensorStore store = TensorStore::open_dir((*fx / "models" / "sotu-llama-16m").string());
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  REQUIRE(store.info(name).dtype == StDtype::BF16);
  CHECK(store.info(name).shape == std::vector<int64_t>{384, 384});
  torch::Tensor stored = store.load(name, std::nullopt);
  torch::Tensor upcast = store.load(name);
  CHECK(bit_equal(upcast, stored.to(torch::kFloat32)));
  CHECK(torch::equal(upcast.to(torch::kBFloat16), stored));
}
