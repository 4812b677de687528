// Decoders of tokenizer.json ("decoder"): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace and Sequence. Each rewrites the list of token strings, as tokenizers' decode_chain
// does; the decoded text is the concatenation of the final list.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/tokenizer/json_node.h"

namespace presso {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// The decoder that `node` describes (a non-null object); UserError for unknown types.
std::unique_ptr<Decoder> make_decoder(const JsonNode& node);

}  // namespace presso
