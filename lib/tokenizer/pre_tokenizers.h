// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): ByteLevel, Split, Metaspace, Digits,
// Whitespace, WhitespaceSplit and Sequence. They cut normalized text into the words that the
// model encodes one by one (and rewrite them, as ByteLevel and Metaspace do).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "lib/tokenizer/json_node.h"

namespace presso {

struct PreToken {
  std::string text;
  // Whether the piece begins at offset 0 of the input (Metaspace's prepend_scheme "first").
  bool starts_text;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokenization, in order, dropping empty pieces.
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};

// The pre-tokenizer that `node` describes (a non-null object); UserError for unknown types.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node);

// GPT-2's reversible byte -> printable character map (bytes_to_unicode), as UTF-8 strings.
const std::array<std::string, 256>& byte_level_alphabet();

}  // namespace presso
