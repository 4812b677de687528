// Post-processors of tokenizer.json ("post_processor"): TemplateProcessing, RobertaProcessing,
// BertProcessing, ByteLevel and Sequence. presso encodes single sequences, so only the "single"
// template matters; they run only when special tokens are asked for.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lib/tokenizer/json_node.h"

namespace presso {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens around the ids of one sequence.
  virtual void add_special_tokens(std::vector<int32_t>& ids) const = 0;
};

// The post-processor that `node` describes (a non-null object); UserError for unknown types.
std::unique_ptr<PostProcessor> make_post_processor(const JsonNode& node);

}  // namespace presso
