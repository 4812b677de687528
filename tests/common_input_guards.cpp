// The guards on user input shared by every layer: JSON nesting, regular files only, bounded
// regular expressions, short excerpts in messages, and the memory left to allocate.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "lib/common/bounded_regex.h"
#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/common/system_memory.h"
#include "lib/common/text.h"
#include "tests/temp_dir.h"
#include "tests/user_error.h"

namespace {

using Catch::Matchers::Contains;
using presso::test::user_error_of;

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("json nested 100k levels deep is refused naming the file and line", "[unit]") {
  const std::string deep = "{\"a\": 1,\n \"b\": " + nested_arrays(100000) + "}";
  CHECK_THAT(user_error_of([&] { presso::parse_json_input(deep, "config.json"); }),
             Contains("config.json: line 2") && Contains("deeper than 128"));
  CHECK_THAT(
      user_error_of([&] { presso::parse_json_input<nlohmann::ordered_json>(deep, "index.json"); }),
      Contains("index.json"));
  // Brackets inside strings, escaped quotes included, do not count; the limit itself is fine.
  const std::string in_strings = "{\"k\": \"[[[[\\\"[[[[\", \"v\": " + nested_arrays(127) + "}";
  CHECK(presso::parse_json_input(in_strings, "x.json")["k"] == "[[[[\"[[[[");
  CHECK_THAT(user_error_of([&] { presso::parse_json_input("{\"a\": ", "x.json"); }),
             Contains("x.json: not valid JSON"));
}

TEST_CASE("only regular files are read and a FIFO or directory or missing file is named",
          "[unit]") {
  presso::test::TempDir dir("guards");
  const std::string fifo = dir.file("model.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Before the guard, opening the FIFO blocked for ever waiting for a writer.
  CHECK_THAT(user_error_of([&] { presso::read_file_bytes(fifo); }),
             Contains(fifo) && Contains("FIFO") && Contains("not a regular file"));
  CHECK_THAT(user_error_of([&] { presso::require_regular_file(dir.path.string()); }),
             Contains("a directory"));
  CHECK_THAT(user_error_of([&] { presso::read_file_bytes(dir.file("absent.json")); }),
             Contains("absent.json: cannot open"));
  CHECK(presso::read_file_bytes(dir.write("ok.txt", "abc")) == "abc");
}

TEST_CASE("a bounded regex refuses deep nesting and gives up on catastrophic backtracking",
          "[unit]") {
  // std::regex recursed once per group: 20k nested groups were a SIGSEGV.
  const std::string nested = std::string(20000, '(') + "x" + std::string(20000, ')');
  CHECK_THROWS_WITH(presso::BoundedRegex(nested, false), Contains("too deeply nested"));
  // (.+)+ tries every split of the name before failing; PCRE2's match limit stops it.
  const presso::BoundedRegex backtracking("(.+)+[xz]", false);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(backtracking.find("model.layers.10.self_attn.q_proj", 0, true),
                  presso::RegexLimitError);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  const presso::BoundedRegex ordinary(R"(.*\.q_proj$)", false);
  CHECK(ordinary.find("model.layers.0.self_attn.q_proj", 0, true).has_value());
  CHECK_FALSE(ordinary.find("model.layers.0.self_attn.k_proj", 0, true).has_value());
  CHECK_FALSE(presso::BoundedRegex("q_proj", false).find("a.q_proj", 0, true).has_value());
}

TEST_CASE("abbreviate keeps messages short without cutting a UTF-8 sequence", "[unit]") {
  CHECK(presso::abbreviate("short", 80) == "short");
  CHECK(presso::abbreviate(std::string(1000, 'a'), 10) == "aaaaaaaaaa...");
  CHECK(presso::abbreviate("aaaaaaaaa\xc3\xa9", 10) == "aaaaaaaaa...");
}

TEST_CASE("available memory is read from the kernel", "[unit]") {
  const auto available = presso::available_memory();
  REQUIRE(available.has_value());
  CHECK(available->bytes > 0);
  CHECK_FALSE(available->source.empty());
}
