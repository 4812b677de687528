// Broken and hostile safetensors files and checkpoint directories: each must give a UserError
// naming the file and the offending tensor or key, and random corruption must never crash.
#include "tests/catch_torch.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using presso::test::TempDir;
using presso::SafetensorsFile;
using presso::TensorStore;

namespace {

std::string le64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// A file with this header text and `data_bytes` zero bytes of data.
std::string st_file(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\0');
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Runs `action`, requiring a UserError whose text holds every fragment.
template <typename Action>
void require_user_error(Action&& action, const std::vector<std::string>& fragments) {
  try {
    action();
  } catch (const presso::UserError& error) {
    std::string text = error.what();
    INFO("message: " << text);
    for (const std::string& fragment : fragments) CHECK_THAT(text, Catch::Contains(fragment));
    return;
  }
  FAIL("no UserError was thrown");
}

struct BrokenFile {
  std::string name;  // the file is <name>.safetensors
  std::string bytes;
  std::vector<std::string> expected;  // besides the file name
};

const std::string kGoodEntry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

std::string one_tensor(const std::string& entry) { return "{\"w\":" + entry + "}"; }

std::vector<BrokenFile> broken_files() {
  const std::string huge = "1099511627776";  // 2^40
  return {
      {"empty", "", {"0 bytes", "too short"}},
      {"five_bytes", "\x01\x02\x03\x04\x05", {"5 bytes", "too short"}},
      {"header_past_end", le64(1000) + "{}", {"header length 1000", "past the end"}},
      {"huge_header_length", le64(uint64_t{1} << 62) + "{}", {"header length", "limit"}},
      {"truncated_header", le64(40) + "{\"w\":{\"dtype\"", {"header length 40", "past the end"}},
      {"truncated_data", st_file(one_tensor(kGoodEntry), 5), {"'w'", "[0, 8)", "past the end"}},
      {"bad_json", st_file("{\"w\": {\"dtype\": F32}}", 8), {"not valid JSON"}},
      {"empty_header", st_file("", 0), {"not valid JSON"}},
      {"invalid_utf8_name", st_file("{\"w\xff\":" + kGoodEntry + "}", 8), {"not valid JSON"}},
      {"json_array", st_file("[1, 2]", 0), {"header is a JSON array", "not an object"}},
      {"json_string", st_file("\"w\"", 0), {"header is a JSON string"}},
      {"entry_not_object", st_file("{\"w\": 5}", 0), {"tensor 'w'", "not an object"}},
      {"unknown_dtype",
       st_file(one_tensor(R"({"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]})"), 2),
       {"tensor 'w'", "unknown dtype \"F8_E4M3\"", "BF16"}},
      {"dtype_not_string",
       st_file(one_tensor(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "unknown dtype 4"}},
      {"negative_dim",
       st_file(one_tensor(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "shape [-2]", "non-negative"}},
      {"shape_not_list",
       st_file(one_tensor(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "shape \"2\""}},
      {"shape_float",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "shape [2.0]"}},
      {"shape_nested",
       st_file(one_tensor(R"({"dtype":"F32","shape":[[[2]]],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "nests deeper"}},
      {"dim_above_int64",
       st_file(one_tensor(R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]})"),
               8),
       {"tensor 'w'", "above 2^63"}},
      {"offsets_reversed",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), 8),
       {"tensor 'w'", "data offsets [8, 0) are reversed"}},
      {"offsets_out_of_range",
       st_file(one_tensor(R"({"dtype":"F32","shape":[16],"data_offsets":[0,64]})"), 16),
       {"tensor 'w'", "[0, 64)", "past the end", "16 bytes"}},
      {"offsets_one_number",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8]})"), 8),
       {"tensor 'w'", "data_offsets [8]"}},
      {"offsets_negative",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), 8),
       {"tensor 'w'", "data_offsets [-8,0]"}},
      {"overlapping",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               12),
       {"tensor 'b'", "overlap tensor 'a'"}},
      {"hole",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
               20),
       {"tensor 'b'", "bytes [8, 12) unused"}},
      {"trailing_bytes", st_file(one_tensor(kGoodEntry), 12), {"4 bytes after the last tensor"}},
      {"size_mismatch",
       st_file(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "shape [3] of F32 needs 12 bytes", "[0, 8) hold 8"}},
      {"element_count_overflow",
       st_file(one_tensor(R"({"dtype":"F32","shape":[)" + huge + "," + huge +
                          R"(],"data_offsets":[0,8]})"),
               8),
       {"tensor 'w'", "dimensions multiply past 2^63"}},
      {"byte_size_overflow",  // 2^62 elements fit in int64, but 2^64 bytes do not fit in uint64
       st_file(
           one_tensor(R"({"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,8]})"),
           8),
       {"tensor 'w'", "shape [2147483648, 2147483648] of F32 needs more than 2^64 bytes"}},
      {"zero_dim_with_huge_dims",
       st_file(one_tensor(R"({"dtype":"F32","shape":[0,)" + huge + "," + huge +
                          R"(],"data_offsets":[0,0]})"),
               0),
       {"tensor 'w'", "dimensions multiply past 2^63"}},
      {"missing_dtype",
       st_file(one_tensor(R"({"shape":[2],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "missing key 'dtype'"}},
      {"missing_shape",
       st_file(one_tensor(R"({"dtype":"F32","data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "missing key 'shape'"}},
      {"missing_data_offsets",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2]})"), 8),
       {"tensor 'w'", "missing key 'data_offsets'"}},
      {"extra_key",
       st_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"offsets":[0,8]})"),
               8),
       {"tensor 'w'", "unknown key 'offsets'"}},
      {"duplicate_tensor",
       st_file("{\"w\":" + kGoodEntry + ",\"w\":" + kGoodEntry + "}", 8),
       {"tensor 'w' appears twice"}},
      {"duplicate_key_in_entry",
       st_file(one_tensor(R"({"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]})"), 8),
       {"tensor 'w'", "key 'dtype' appears twice"}},
      {"metadata_not_string",
       st_file(R"({"__metadata__":{"format":"pt","step":3},"w":)" + kGoodEntry + "}", 8),
       {"metadata key 'step'", "not a string"}},
      {"metadata_not_object",
       st_file(R"({"__metadata__":["pt"],"w":)" + kGoodEntry + "}", 8),
       {"'__metadata__' is a JSON array"}},
      {"deep_nesting",
       st_file(std::string(100000, '[') + std::string(100000, ']'), 0),
       {"nests deeper"}},
  };
}

// A valid model.safetensors-style shard holding the given F32 [2] tensors.
std::string shard_with(const std::vector<std::string>& names) {
  std::string header = "{";
  for (size_t i = 0; i < names.size(); ++i)
    header += (i ? "," : "") + ("\"" + names[i] + "\":") +
              R"({"dtype":"F32","shape":[2],"data_offsets":[)" + std::to_string(8 * i) + "," +
              std::to_string(8 * i + 8) + "]}";
  return st_file(header + "}", 8 * names.size());
}

}  // namespace

TEST_CASE("broken safetensors files give a UserError naming file and tensor", "[unit]") {
  TempDir dir("broken");
  std::vector<BrokenFile> cases = broken_files();
  CHECK(cases.size() >= 30);
  for (const BrokenFile& broken : cases) {
    SECTION(broken.name) {
      fs::path path = dir.path / (broken.name + ".safetensors");
      write_bytes(path, broken.bytes);
      std::vector<std::string> expected = broken.expected;
      expected.push_back(path.string());
      require_user_error([&] { SafetensorsFile file(path.string()); }, expected);
    }
  }
}

TEST_CASE("a header reports all its problems at once", "[unit]") {
  TempDir dir("many");
  fs::path path = dir.path / "many.safetensors";
  write_bytes(path, st_file(R"({"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[9,1]}})",
                            8));
  require_user_error([&] { SafetensorsFile file(path.string()); },
                     {"tensor 'a': unknown dtype", "tensor 'b': data offsets [9, 1) are reversed"});
}

TEST_CASE("missing files and tensors give a UserError naming them", "[unit]") {
  TempDir dir("missing");
  require_user_error([&] { SafetensorsFile file((dir.path / "nope.safetensors").string()); },
                     {"nope.safetensors", "cannot open"});
  require_user_error([&] { SafetensorsFile file(dir.path.string()); },
                     {dir.path.string(), "not a regular file"});
  write_bytes(dir.path / "one.safetensors", shard_with({"w"}));
  SafetensorsFile file((dir.path / "one.safetensors").string());
  require_user_error([&] { file.load("v"); }, {"one.safetensors", "no tensor 'v'"});
}

TEST_CASE("broken checkpoint directories give a UserError naming index, shard and tensor",
          "[unit]") {
  const std::string index_name = "model.safetensors.index.json";
  struct BrokenDir {
    std::string name;
    std::string index;
    std::vector<std::pair<std::string, std::string>> shards;  // file name, bytes
    std::vector<std::string> expected;
  };
  const std::string shard = "model-00001-of-00001.safetensors";
  std::vector<BrokenDir> cases = {
      {"index_bad_json", "{\"weight_map\": {", {}, {index_name, "not valid JSON"}},
      {"index_array", "[]", {}, {index_name, "JSON array"}},
      {"index_without_weight_map", R"({"metadata":{}})", {}, {index_name, "no 'weight_map'"}},
      {"weight_map_not_object", R"({"weight_map":["w"]})", {}, {index_name, "'weight_map'"}},
      {"weight_map_empty", R"({"weight_map":{}})", {}, {index_name, "'weight_map'"}},
      {"shard_not_string", R"({"weight_map":{"w":3}})", {}, {index_name, "tensor 'w'"}},
      {"shard_outside_dir",
       R"({"weight_map":{"w":"../model.safetensors"}})",
       {},
       {index_name, "tensor 'w'", "../model.safetensors"}},
      {"shard_missing",
       R"({"weight_map":{"w":")" + shard + "\"}}",
       {},
       {index_name, shard, "tensor 'w'", "does not exist"}},
      {"tensor_absent_from_shard",
       R"({"weight_map":{"w":")" + shard + R"(","v":")" + shard + "\"}}",
       {{shard, shard_with({"w"})}},
       {index_name, shard, "tensor 'v'", "lacks it"}},
      {"shard_broken",
       R"({"weight_map":{"w":")" + shard + "\"}}",
       {{shard, st_file(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), 8)}},
       {shard, "tensor 'w'", "reversed"}},
  };
  for (const BrokenDir& broken : cases) {
    SECTION(broken.name) {
      TempDir dir("broken_dir");
      write_bytes(dir.path / index_name, broken.index);
      for (const auto& [file_name, bytes] : broken.shards) write_bytes(dir.path / file_name, bytes);
      require_user_error([&] { TensorStore::open_dir(dir.path.string()); }, broken.expected);
    }
  }
  SECTION("neither file") {
    TempDir dir("empty_dir");
    require_user_error([&] { TensorStore::open_dir(dir.path.string()); },
                       {dir.path.string(), "model.safetensors", index_name});
  }
  SECTION("not a directory") {
    require_user_error([&] { TensorStore::open_dir("/nonexistent/presso/checkpoint"); },
                       {"/nonexistent/presso/checkpoint", "not a directory"});
  }
}

TEST_CASE("a sharded directory deduplicates its shards", "[unit]") {
  TempDir dir("sharded");
  write_bytes(dir.path / "a.safetensors", shard_with({"x", "y"}));
  write_bytes(dir.path / "b.safetensors", shard_with({"z", "unlisted"}));
  write_bytes(dir.path / "model.safetensors.index.json",
              R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  TensorStore store = TensorStore::open_dir(dir.path.string());
  CHECK(store.files().size() == 2);
  CHECK(store.names() == std::vector<std::string>{"x", "y", "z"});
  CHECK_FALSE(store.contains("unlisted"));
  CHECK(store.load("z").sizes() == torch::IntArrayRef{2});
}

TEST_CASE("random corruption of a valid file either loads or throws UserError", "[unit]") {
  TempDir dir("mutations");
  fs::path original_path = dir.path / "original.safetensors";
  {
    presso::SafetensorsWriter writer(original_path.string(), {{"format", "pt"}});
    writer.add("embed.weight", torch::arange(12, torch::kFloat32).reshape({3, 4}));
    writer.add("norm.weight", torch::ones({4}, torch::kBFloat16));
    writer.add("ids", torch::arange(3, torch::kInt64));
    writer.add("mask", torch::ones({2}, torch::kBool));
    writer.finish();
  }
  const std::string original = read_bytes(original_path);
  std::mt19937 random(20240607);
  size_t loaded = 0;
  size_t rejected = 0;
  fs::path path = dir.path / "mutant.safetensors";
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = original;
    auto position = [&](size_t size) {
      return std::uniform_int_distribution<size_t>(0, size - 1)(random);
    };
    switch (trial % 4) {
      case 0:  // one random byte anywhere
        bytes[position(bytes.size())] = static_cast<char>(random());
        break;
      case 1:  // a few printable bytes in the header, where the JSON structure lives
        for (int i = 0; i < 3; ++i)
          bytes[8 + position(bytes.size() - 8)] = static_cast<char>(32 + random() % 95);
        break;
      case 2:  // truncation
        bytes.resize(position(bytes.size()));
        break;
      case 3:  // a bit of the header length
        bytes[position(8)] ^= static_cast<char>(1 << (random() % 8));
        break;
    }
    write_bytes(path, bytes);
    try {
      SafetensorsFile file(path.string());
      for (const std::string& name : file.names()) {
        file.load(name);
        file.load(name, torch::kFloat32);
      }
      ++loaded;
    } catch (const presso::UserError&) {
      ++rejected;
    }
  }
  CHECK(loaded + rejected == 300);
  CHECK(loaded > 0);
  CHECK(rejected > 0);
}
