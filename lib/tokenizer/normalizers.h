// Normalizers of tokenizer.json ("normalizer"): NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend,
// Replace and Sequence. They rewrite the text before pre-tokenization; presso tracks no offsets,
// so a normalizer is a plain string-to-string function.
#pragma once

#include <memory>
#include <string>

#include "lib/tokenizer/json_node.h"

namespace presso {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// The normalizer that `node` describes (a non-null object); UserError for unknown types.
std::unique_ptr<Normalizer> make_normalizer(const JsonNode& node);

}  // namespace presso
