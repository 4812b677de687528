#include "lib/tokenizer/pre_tokenizers.h"

#include <algorithm>

#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Segment {
  Span span;
  bool is_match;
};

// The pieces of a text of length `size` between and at `matches`, as (span, is_match).
std::vector<Segment> segments_of(const std::vector<Span>& matches, size_t size, bool invert) {
  std::vector<Segment> segments;
  segments.reserve(matches.size() * 2 + 1);
  size_t previous = 0;
  for (const Span& match : matches) {
    if (match.first > previous) segments.push_back({{previous, match.first}, invert});
    segments.push_back({match, !invert});
    previous = match.second;
  }
  if (previous < size) segments.push_back({{previous, size}, invert});
  return segments;
}

// How tokenizers' NormalizedString::split groups the segments for each behavior.
std::vector<Span> apply_behavior(const std::vector<Segment>& segments, SplitBehavior behavior) {
  std::vector<Span> out;
  out.reserve(segments.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& s : segments)
        if (!s.is_match) out.push_back(s.span);
      break;
    case SplitBehavior::kIsolated:
      for (const Segment& s : segments) out.push_back(s.span);
      break;
    case SplitBehavior::kContiguous:
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().second = s.span.second;
        } else {
          out.push_back(s.span);
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().second = s.span.second;
        } else {
          out.push_back(s.span);
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().first = it->span.first;
        } else {
          out.push_back(it->span);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

void split_pieces(std::vector<PreToken>& pieces, const Pattern& pattern, SplitBehavior behavior,
                  bool invert) {
  std::vector<PreToken> out;
  std::vector<Span> matches;
  for (PreToken& piece : pieces) {
    matches.clear();
    pattern.find_all(piece.text, matches);
    for (const Span& span :
         apply_behavior(segments_of(matches, piece.text.size(), invert), behavior)) {
      if (span.second == span.first) continue;
      out.push_back({piece.text.substr(span.first, span.second - span.first),
                     piece.starts_text && span.first == 0});
    }
  }
  pieces = std::move(out);
}

SplitBehavior parse_behavior(const JsonNode& node) {
  const std::string name = node.as_string();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  node.fail("unknown split behavior '" + name +
            "' (valid: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_pieces(pieces, pattern_, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's pattern, which ByteLevel applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& source)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_shared<Regex>(kGpt2Pattern, source) : nullptr) {}

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    const auto& alphabet = byte_level_alphabet();
    std::vector<PreToken> out;
    std::vector<Span> matches;
    for (PreToken& piece : pieces) {
      if (add_prefix_space_ && !piece.text.empty() && piece.text[0] != ' ')
        piece.text.insert(0, " ");
      matches.clear();
      if (regex_) {
        regex_->find_all(piece.text, matches);
      } else if (!piece.text.empty()) {
        matches.emplace_back(0, piece.text.size());
      }
      // Isolated split: the text between matches is kept as pieces too.
      for (const Segment& segment : segments_of(matches, piece.text.size(), false)) {
        std::string mapped;
        mapped.reserve(2 * (segment.span.second - segment.span.first));
        for (size_t i = segment.span.first; i < segment.span.second; ++i)
          mapped += alphabet[static_cast<unsigned char>(piece.text[i])];
        out.push_back({std::move(mapped), piece.starts_text && segment.span.first == 0});
      }
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(replacement),
        space_(Pattern::literal(" ")),
        prepend_(prepend),
        split_(split),
        replacement_pattern_(Pattern::literal(std::move(replacement))) {}

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (PreToken& piece : pieces) {
      piece.text = space_.replace_all(piece.text, replacement_);
      const bool starts_with_replacement =
          piece.text.compare(0, replacement_.size(), replacement_) == 0;
      const bool prepend =
          prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && piece.starts_text);
      if (prepend && !piece.text.empty() && !starts_with_replacement)
        piece.text.insert(0, replacement_);
    }
    if (split_) split_pieces(pieces, replacement_pattern_, SplitBehavior::kMergedWithNext, false);
  }

 private:
  std::string replacement_;
  Pattern space_;
  Prepend prepend_;
  bool split_;
  Pattern replacement_pattern_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

std::unique_ptr<PreTokenizer> make_metaspace(const JsonNode& node) {
  const JsonNode replacement = node.at("replacement");
  const std::string text = replacement.as_string();
  size_t end = 0;
  if (text.empty() || (unicode::next_code_point(text, end), end != text.size()))
    replacement.fail("expected a single character");
  auto prepend = MetaspacePreTokenizer::Prepend::kAlways;
  if (node.has("prepend_scheme")) {
    const JsonNode scheme = node.at("prepend_scheme");
    const std::string name = scheme.as_string();
    if (name == "first") {
      prepend = MetaspacePreTokenizer::Prepend::kFirst;
    } else if (name == "never") {
      prepend = MetaspacePreTokenizer::Prepend::kNever;
    } else if (name != "always") {
      scheme.fail("unknown prepend_scheme '" + name + "' (valid: always, first, never)");
    }
  } else if (!node.bool_or("add_prefix_space", true)) {
    // Files written before prepend_scheme existed say add_prefix_space instead.
    prepend = MetaspacePreTokenizer::Prepend::kNever;
  }
  return std::make_unique<MetaspacePreTokenizer>(text, prepend, node.bool_or("split", true));
}

}  // namespace

const std::array<std::string, 256>& byte_level_alphabet() {
  static const std::array<std::string, 256> alphabet = [] {
    std::array<std::string, 256> table;
    char32_t next_unprintable = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      unicode::append_utf8(table[b], printable ? static_cast<char32_t>(b) : next_unprintable++);
    }
    return table;
  }();
  return alphabet;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node) {
  const std::string type = node.string_at("type");
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(node.bool_or("add_prefix_space", true),
                                                   node.bool_or("use_regex", true), node.where());
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(node.at("pattern").as_pattern(),
                                               parse_behavior(node.at("behavior")),
                                               node.bool_or("invert", false));
  if (type == "Metaspace") return make_metaspace(node);
  if (type == "Digits") {
    const auto behavior = node.bool_or("individual_digits", false) ? SplitBehavior::kIsolated
                                                                   : SplitBehavior::kContiguous;
    return std::make_unique<SplitPreTokenizer>(Pattern::regex(R"(\p{N})", node.where()), behavior,
                                               false);
  }
  if (type == "Whitespace")  // keeps the matches of \w+|[^\w\s]+
    return std::make_unique<SplitPreTokenizer>(Pattern::regex(R"(\w+|[^\w\s]+)", node.where()),
                                               SplitBehavior::kRemoved, true);
  if (type == "WhitespaceSplit")
    return std::make_unique<SplitPreTokenizer>(Pattern::regex(R"(\s+)", node.where()),
                                               SplitBehavior::kRemoved, false);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const JsonNode& step : node.at("pretokenizers").elements())
      steps.push_back(make_pre_tokenizer(step));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  node.at("type").fail("unsupported pre-tokenizer type '" + type +
                       "' (supported: ByteLevel, Split, Metaspace, Digits, Whitespace, "
                       "WhitespaceSplit, Sequence)");
}

}  // namespace presso
