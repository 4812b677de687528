// Pre-tokenized calibration files nested 100k levels deep, which crashed presso (SIGSEGV).
#include <string>

#include "calibration/calibration_data.h"
#include "lib/common/errors.h"
#include "tests/catch_torch.h"
#include "tests/temp_dir.h"
#include "tests/user_error.h"

using Catch::Matchers::Contains;
using presso::test::user_error_of;

TEST_CASE("calibration JSON ids and JSONL lines nested 100k deep are refused naming the file",
          "[unit]") {
  presso::test::TempDir dir("deep_calibration");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string ids = dir.write("ids.json", "[[1, 2, 3], " + deep + "]");
  CHECK_THAT(user_error_of([&] { presso::read_json_ids(ids, 100); }),
             Contains("ids.json") && Contains("nests deeper"));
  const std::string lines =
      dir.write("docs.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\", \"x\": " + deep + "}\n");
  CHECK_THAT(user_error_of([&] { presso::read_jsonl_texts(lines, "text"); }),
             Contains("docs.jsonl:2") && Contains("nests deeper"));
}
