// Message helpers: edit distance for "did you mean", and folding a problem repeated per block.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lib/common/text.h"

using presso::edit_distance;
using presso::fold_block_indices;
using Lines = std::vector<std::string>;

TEST_CASE("edit distance counts insertions, deletions and substitutions", "[unit]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("blocksize", "block_size") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("abc", "") == 3);
}

TEST_CASE("a problem of every block is said once with the block indices", "[unit]") {
  const Lines lines = {
      "r.yaml:2: gptq: model.layers.0.mlp.up_proj [1024, 384] has 384 columns",
      "r.yaml:2: gptq: model.layers.0.mlp.down_proj [384, 1024] has 1024 columns",
      "r.yaml:2: gptq: model.layers.1.mlp.up_proj [1024, 384] has 384 columns",
      "r.yaml:2: gptq: model.layers.2.mlp.up_proj [1024, 384] has 384 columns",
      "r.yaml:2: gptq: model.layers.5.mlp.up_proj [1024, 384] has 384 columns",
      "something else entirely",
  };
  CHECK(fold_block_indices(lines) ==
        Lines{"r.yaml:2: gptq: model.layers.{0-2,5}.mlp.up_proj [1024, 384] has 384 columns",
              "r.yaml:2: gptq: model.layers.0.mlp.down_proj [384, 1024] has 1024 columns",
              "something else entirely"});
  // Two indices: only lines that differ in one of them fold; GPT-2's "h.N." counts too.
  CHECK(fold_block_indices({"h.0.attn.c_attn", "h.3.attn.c_attn", "h.4.attn.c_attn"}) ==
        Lines{"h.{0,3,4}.attn.c_attn"});
  CHECK(fold_block_indices({"a.1.b.2.c", "a.1.b.3.c", "a.2.b.9.c"}) ==
        Lines{"a.1.b.{2,3}.c", "a.2.b.9.c"});
  // Numbers that are not between dots, and single lines, are left as they are.
  CHECK(fold_block_indices({"group_size 128 of 384", "group_size 128 of 1024"}) ==
        Lines{"group_size 128 of 384", "group_size 128 of 1024"});
  CHECK(fold_block_indices({}).empty());
}
