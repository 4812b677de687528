// Perplexity of the fixture models against reference_ppl.json, computed by transformers.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/eval/eval_job.h"
#include "lib/eval/perplexity.h"
#include "lib/model/model.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/catch_torch.h"
#include "tests/fixtures.h"

using presso::test::checkpoint_dirs;
using presso::test::fixtures_or_skip;

TEST_CASE("perplexity of every fixture model matches transformers within 0.1%", "[golden]") {
  auto fx = fixtures_or_skip();
  if (!fx) return;
  const std::string text = presso::read_file_bytes((*fx / "text" / "eval.txt").string());
  int checked = 0, expected_checks = 0;
  for (const auto& dir : checkpoint_dirs(*fx, "models")) {
    const auto reference_path = dir / "reference_ppl.json";
    if (!std::filesystem::exists(reference_path)) continue;
    expected_checks += 2;
    const auto reference = nlohmann::json::parse(presso::read_file_bytes(reference_path.string()));
    const auto model = presso::Model::open(dir.string());
    const auto tokens = presso::Tokenizer::from_model_dir(dir.string()).encode(text, false);
    for (const int64_t seqlen : {128, 512}) {
      const std::string key = "eval/seq" + std::to_string(seqlen);
      INFO(dir.filename().string() << " " << key);
      // The full-text window count follows from the token count: checks the tokenizer too.
      CHECK(presso::count_windows(static_cast<int64_t>(tokens.size()), seqlen) ==
            reference[key + "/all"]["windows"].get<int64_t>());
      presso::PerplexityOptions options;
      options.seqlen = seqlen;
      options.max_windows = 16;
      const auto result = presso::compute_perplexity(model, tokens, options);
      const double expected = reference[key + "/first16"]["ppl"].get<double>();
      const double relative = std::abs(result.ppl / expected - 1.0);
      std::cout << dir.filename().string() << " " << key << "/first16: ppl " << result.ppl
                << " reference " << expected << " relative error " << relative << "\n";
      CHECK(result.windows == 16);
      CHECK(relative < 1e-3);
      ++checked;
    }
  }
  REQUIRE(checked > 0);
  REQUIRE(checked == expected_checks);
}

TEST_CASE("perplexity rejects text shorter than one window", "[unit]") {
  const auto model = presso::Model::open((presso::test::test_data() / "sotu-llama-16m").string());
  presso::PerplexityOptions options;
  options.seqlen = 512;
  const std::vector<int32_t> tokens(100, 5);
  REQUIRE_THROWS_AS(presso::compute_perplexity(model, tokens, options), presso::UserError);
}

TEST_CASE("fractions parse as numbers or percentages", "[unit]") {
  CHECK(presso::parse_fraction("1%", "--max-increase") == Approx(0.01));
  CHECK(presso::parse_fraction("0.5 %", "--max-increase") == Approx(0.005));
  CHECK(presso::parse_fraction("0.02", "--max-increase") == Approx(0.02));
  REQUIRE_THROWS_WITH(presso::parse_fraction("abc", "--max-increase"),
                      Catch::Contains("--max-increase 'abc'"));
  REQUIRE_THROWS_AS(presso::parse_fraction("-1%", "--max-increase"), presso::UserError);
}
