// calibration/: the data side of compression — reading calibration text into one token stream,
// sampling seeded windows from it (windows.h), and the per-linear input statistics that passes
// ask for (linear_statistics.h). May include lib/ (common, io, tokenizer, model) and LibTorch;
// nothing here knows what a pass does with the statistics.
//
// Every reader returns one flat token stream; window sampling then picks `nsamples` windows of
// `seqlen` tokens from it. Problems in the input are UserErrors naming the file and the line,
// key or element at fault.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presso {

class Tokenizer;

enum class CalibFormat {
  kAuto,         // from the file extension, see detect_calib_format
  kText,         // the whole file is one text
  kJsonl,        // one JSON object per line, the text in a named field
  kSafetensors,  // pre-tokenized: integer tensor `input_ids`
  kJsonIds,      // pre-tokenized: a JSON list of ids, or a list of lists
};

// "auto", "text", "jsonl", "safetensors", "json-ids"; UserError listing these otherwise.
CalibFormat calib_format_from_name(const std::string& name);
const char* calib_format_name(CalibFormat format);

// By extension: .jsonl -> kJsonl, .safetensors -> kSafetensors, .json -> kJsonIds, anything else
// (.txt, wikitext's .raw, no extension) -> kText.
CalibFormat detect_calib_format(const std::string& path);

struct CalibrationSource {
  std::string path;
  CalibFormat format = CalibFormat::kAuto;
  std::string field = "text";  // JSONL: the field holding each document's text
  // JSONL: token put between consecutive documents. The driver passes the model's EOS id, so
  // that a window crossing a document boundary looks like packed pre-training data (documents
  // joined by EOS) rather than one run-on text; nullopt joins the documents with nothing.
  std::optional<int32_t> document_separator;
  // Pre-tokenized ids must lie in [0, vocab_size): the embedding's row count (config.json's
  // vocab_size, which may exceed the tokenizer's); nullopt uses tokenizer.vocab_size().
  std::optional<int64_t> vocab_size;
};

// The calibration token stream of `source` in its (possibly detected) format. Text is tokenized
// without special tokens, as in evaluation; pre-tokenized files ignore `tokenizer` except for the
// vocabulary size when `source.vocab_size` is unset. `tokenizer` may be null for pre-tokenized
// files with `source.vocab_size` set (a checkpoint without tokenizer.json can still calibrate).
std::vector<int32_t> load_calibration_tokens(const CalibrationSource& source,
                                             const Tokenizer* tokenizer);
inline std::vector<int32_t> load_calibration_tokens(const CalibrationSource& source,
                                                    const Tokenizer& tokenizer) {
  return load_calibration_tokens(source, &tokenizer);
}
// Whether `source` (its format detected when auto) is text that needs the model's tokenizer.
bool calibration_needs_tokenizer(const CalibrationSource& source);

// The building blocks of load_calibration_tokens, usable without a tokenizer.

// The `field` of every non-blank line of a JSONL file, in order. UserError "<path>:<line>: ..."
// for invalid JSON, a line that is not an object, a missing field or one that is not a string;
// UserError when the file holds no documents.
std::vector<std::string> read_jsonl_texts(const std::string& path, const std::string& field);
// The same on the file's contents; `source` stands for the path in messages.
std::vector<std::string> parse_jsonl_texts(std::string_view bytes, const std::string& source,
                                           const std::string& field);

// Tokenizes each document separately (no special tokens) and concatenates them, putting
// `separator` between consecutive documents when given. llm-compressor also tokenizes samples one
// by one, but keeps them as separate rows; we pack them into one stream so that windows of any
// seqlen can be drawn, as from plain text.
std::vector<int32_t> tokenize_documents(const std::vector<std::string>& texts,
                                        const Tokenizer& tokenizer,
                                        std::optional<int32_t> separator);

// `input_ids` of a .safetensors file: an integer tensor (I64, I32, I16, I8 or U8) of shape [N]
// or [rows, T], rows concatenated in order. If the file also holds an `attention_mask` of the
// same shape (as a batch dumped from transformers does), positions where it is 0 — padding — are
// dropped. UserError naming the file and tensor for a missing tensor, a wrong dtype or rank, and
// naming the position of the first id outside [0, vocab_size).
std::vector<int32_t> read_safetensors_ids(const std::string& path, int64_t vocab_size);

// A JSON file holding a list of ids `[1, 2, ...]` or a list of such lists (rows concatenated).
// UserError naming the element ("[3][17]") that is not an integer or is outside [0, vocab_size).
std::vector<int32_t> read_json_ids(const std::string& path, int64_t vocab_size);
// The same on the file's contents; `source` stands for the path in messages.
std::vector<int32_t> parse_json_ids(std::string_view bytes, const std::string& source,
                                    int64_t vocab_size);

}  // namespace presso
