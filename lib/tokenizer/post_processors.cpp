#include "lib/tokenizer/post_processors.h"

#include <unordered_map>

namespace presso {
namespace {

// A template is a list of pieces: fixed special-token ids, or the sequence itself (empty).
class TemplatePostProcessor : public PostProcessor {
 public:
  explicit TemplatePostProcessor(std::vector<std::vector<int32_t>> pieces)
      : pieces_(std::move(pieces)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    for (const auto& piece : pieces_) {
      if (piece.empty()) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), piece.begin(), piece.end());
      }
    }
    ids = std::move(out);
  }

 private:
  std::vector<std::vector<int32_t>> pieces_;
};

// ByteLevel post-processing only trims offsets, which presso does not track.
class OffsetsOnlyPostProcessor : public PostProcessor {
 public:
  void add_special_tokens(std::vector<int32_t>&) const override {}
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->add_special_tokens(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const JsonNode& node) {
  std::unordered_map<std::string, std::vector<int32_t>> special_ids;
  const JsonNode specials = node.at("special_tokens");
  if (!specials.value().is_object()) specials.fail("expected an object");
  for (const auto& item : specials.value().items()) {
    const JsonNode special = specials.at(item.key().c_str());
    std::vector<int32_t> ids;
    for (const JsonNode& id : special.at("ids").elements())
      ids.push_back(static_cast<int32_t>(id.as_int()));
    if (ids.empty()) special.at("ids").fail("a special token needs at least one id");
    special_ids[item.key()] = std::move(ids);
  }
  std::vector<std::vector<int32_t>> pieces;
  for (const JsonNode& piece : node.at("single").elements()) {
    if (piece.has("Sequence")) {
      pieces.emplace_back();
      continue;
    }
    if (!piece.has("SpecialToken"))
      piece.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    const JsonNode name = piece.at("SpecialToken").at("id");
    const auto it = special_ids.find(name.as_string());
    if (it == special_ids.end())
      name.fail("special token '" + name.as_string() + "' is not in special_tokens");
    pieces.push_back(it->second);
  }
  return std::make_unique<TemplatePostProcessor>(std::move(pieces));
}

// RobertaProcessing and BertProcessing: [cls] A [sep], with cls and sep as [token, id].
std::unique_ptr<PostProcessor> make_cls_sep(const JsonNode& node) {
  const auto id_of = [&](const char* key) {
    const std::vector<JsonNode> pair = node.at(key).elements();
    if (pair.size() != 2) node.at(key).fail("expected [token, id]");
    return static_cast<int32_t>(pair[1].as_int());
  };
  return std::make_unique<TemplatePostProcessor>(
      std::vector<std::vector<int32_t>>{{id_of("cls")}, {}, {id_of("sep")}});
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const JsonNode& node) {
  const std::string type = node.string_at("type");
  if (type == "TemplateProcessing") return make_template(node);
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_cls_sep(node);
  if (type == "ByteLevel") return std::make_unique<OffsetsOnlyPostProcessor>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const JsonNode& step : node.at("processors").elements())
      steps.push_back(make_post_processor(step));
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  node.at("type").fail("unsupported post-processor type '" + type +
                       "' (supported: TemplateProcessing, RobertaProcessing, BertProcessing, "
                       "ByteLevel, Sequence)");
}

}  // namespace presso
