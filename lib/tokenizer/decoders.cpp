#include "lib/tokenizer/decoders.h"

#include <unordered_map>

#include "lib/tokenizer/pre_tokenizers.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

// Maps the byte-level alphabet back to bytes; a token with any other character is kept as its
// own UTF-8. The bytes of all tokens are joined and repaired as from_utf8_lossy does.
class ByteLevelDecoder : public Decoder {
 public:
  ByteLevelDecoder() {
    const auto& alphabet = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) {
      size_t pos = 0;
      bytes_by_char_[unicode::next_code_point(alphabet[b], pos)] = static_cast<char>(b);
    }
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const std::string& token : tokens) {
      token_bytes.clear();
      bool all_mapped = true;
      for (size_t pos = 0; pos < token.size() && all_mapped;) {
        const auto it = bytes_by_char_.find(unicode::next_code_point(token, pos));
        all_mapped = it != bytes_by_char_.end();
        if (all_mapped) token_bytes.push_back(it->second);
      }
      bytes += all_mapped ? token_bytes : token;
    }
    tokens.assign(1, unicode::to_valid_utf8(bytes));
  }

 private:
  std::unordered_map<char32_t, char> bytes_by_char_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xXX> tokens become their bytes when those form valid UTF-8, otherwise one U+FFFD
// per byte token.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    const auto flush = [&] {
      if (pending_count == 0) return;
      if (unicode::to_valid_utf8(pending) == pending) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>')
        byte = parse_hex_byte(token[3], token[4]);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_hex_byte(char high, char low) {
    const int h = hex_digit(high), l = hex_digit(low);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (std::string& token : tokens) {
      size_t begin = 0;
      for (size_t i = 0; i < start_ && token.compare(begin, n, content_) == 0; ++i) begin += n;
      size_t end = token.size();
      for (size_t i = 0; i < stop_ && end >= begin + n && token.compare(end - n, n, content_) == 0;
           ++i) {
        end -= n;
      }
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_;
  size_t stop_;
};

// Turns the replacement character back into spaces; in the first token (unless the prepend
// scheme is "never") replacement characters are dropped, undoing the prepended one.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_in_first)
      : replacement_(Pattern::literal(std::move(replacement))), drop_in_first_(drop_in_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replacement_.replace_all(tokens[i], i == 0 && drop_in_first_ ? "" : " ");
  }

 private:
  Pattern replacement_;
  bool drop_in_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

size_t non_negative(const JsonNode& node, const char* key) {
  const int64_t value = node.int_or(key, 0);
  if (value < 0) node.at(key).fail("expected a non-negative count");
  return static_cast<size_t>(value);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const JsonNode& node) {
  const std::string type = node.string_at("type");
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(node.at("pattern").as_pattern(),
                                            node.string_at("content"));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(node.string_at("content"), non_negative(node, "start"),
                                          non_negative(node, "stop"));
  if (type == "Metaspace") {
    const std::string scheme = node.string_or(
        "prepend_scheme", node.bool_or("add_prefix_space", true) ? "always" : "never");
    return std::make_unique<MetaspaceDecoder>(node.string_at("replacement"), scheme != "never");
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const JsonNode& step : node.at("decoders").elements()) steps.push_back(make_decoder(step));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  node.at("type").fail("unsupported decoder type '" + type +
                       "' (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, "
                       "Sequence)");
}

}  // namespace presso
