#include "lib/tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <queue>

#include "lib/common/text.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

// Words longer than this are encoded but not cached (as tokenizers does): a whole document
// without a pre-tokenizer would otherwise sit in the cache.
constexpr size_t kMaxCachedWordBytes = 256;
// The id -> token table is as long as the largest id: an id of 2^31 was a 64 GB bad_alloc. 2^24
// is far above any real vocabulary (Gemma's 262144 is among the largest).
constexpr int64_t kMaxTokenId = int64_t{1} << 24;
constexpr size_t kCacheCapacity = 1 << 17;

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest; the lowest rank, then the leftmost position wins.
  bool operator<(const QueuedMerge& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

BpeModel::BpeModel(const JsonNode& model) {
  const std::string type = model.string_or("type", "BPE");
  if (type != "BPE") {
    model.at("type").fail("unsupported model type '" + type +
                          "' (presso supports BPE; WordPiece, Unigram and WordLevel are not)");
  }
  // dropout only matters in training; encoding is deterministic without it.
  continuing_subword_prefix_ = model.string_or("continuing_subword_prefix", "");
  end_of_word_suffix_ = model.string_or("end_of_word_suffix", "");
  byte_fallback_ = model.bool_or("byte_fallback", false);
  fuse_unk_ = model.bool_or("fuse_unk", false);
  ignore_merges_ = model.bool_or("ignore_merges", false);
  read_vocab(model.at("vocab"));
  read_merges(model.at("merges"));
  if (model.has("unk_token")) {
    const JsonNode unk = model.at("unk_token");
    const auto it = vocab_.find(unk.as_string());
    if (it == vocab_.end()) unk.fail("unk_token '" + unk.as_string() + "' is not in model.vocab");
    unk_id_ = it->second;
  }
  byte_fallback_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    if (it != vocab_.end()) byte_fallback_ids_[b] = it->second;
  }
}

void BpeModel::read_vocab(const JsonNode& vocab) {
  if (!vocab.value().is_object()) vocab.fail("expected an object mapping tokens to ids");
  for (const auto& [token, id_value] : vocab.value().items()) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() > kMaxTokenId) {
      vocab.fail(fmt::format("token '{}' has no valid id (expected an integer in [0, {}])",
                             abbreviate(token), kMaxTokenId));
    }
    const auto id = static_cast<int32_t>(id_value.get<int64_t>());
    vocab_[token] = id;
    if (static_cast<size_t>(id) >= tokens_by_id_.size()) {
      tokens_by_id_.resize(id + 1);
      id_used_.resize(id + 1, false);
    }
    tokens_by_id_[id] = token;
    id_used_[id] = true;
    size_t end = 0;
    if (!token.empty() && (unicode::next_code_point(token, end), end == token.size()))
      char_ids_[unicode::next_code_point(token, end = 0)] = id;
  }
}

void BpeModel::read_merges(const JsonNode& merges) {
  const std::vector<JsonNode> entries = merges.elements();
  merges_.reserve(entries.size());
  for (size_t rank = 0; rank < entries.size(); ++rank) {
    const JsonNode& entry = entries[rank];
    std::string left, right;
    if (entry.value().is_string()) {
      // The older spelling "a b"; tokens holding a space need the pair form instead.
      const std::string text = entry.as_string();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
        entry.fail("merge '" + text + "' is not two tokens separated by one space");
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else {
      const std::vector<JsonNode> pair = entry.elements();
      if (pair.size() != 2) entry.fail("expected a pair [left, right]");
      left = pair[0].as_string();
      right = pair[1].as_string();
    }
    const auto find = [&](const std::string& token) {
      const auto it = vocab_.find(token);
      if (it == vocab_.end())
        entry.fail("merge refers to token '" + token + "', not in model.vocab");
      return it->second;
    };
    const int32_t left_id = find(left);
    const int32_t right_id = find(right);
    const bool prefixed =
        !continuing_subword_prefix_.empty() &&
        right.compare(0, continuing_subword_prefix_.size(), continuing_subword_prefix_) == 0;
    const int32_t new_id =
        find(left + (prefixed ? right.substr(continuing_subword_prefix_.size()) : right));
    size_t last_start = left.size() - 1;
    while (last_start > 0 && (static_cast<unsigned char>(left[last_start]) & 0xC0) == 0x80)
      --last_start;
    size_t pos = last_start;
    const char32_t last_of_left = unicode::next_code_point(left, pos);
    pos = 0;
    crossable_pairs_.insert(pair_key(last_of_left, unicode::next_code_point(right, pos)));
    // A repeated pair keeps its last rank, as tokenizers' map construction does.
    merges_[pair_key(left_id, right_id)] = {static_cast<int32_t>(rank), new_id};
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_by_id_.size() || !id_used_[id]) return nullptr;
  return &tokens_by_id_[id];
}

int32_t BpeModel::symbol_id(std::string_view text) const {
  const auto it = vocab_.find(std::string(text));
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::tokenize(const std::string& word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool plain_chars = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  if (word.size() > kMaxCachedWordBytes && plain_chars) {
    tokenize_in_chunks(word, ids);
  } else {
    tokenize_word(word, ids);
  }
}

void BpeModel::tokenize_in_chunks(std::string_view word, std::vector<int32_t>& ids) const {
  size_t chunk_start = 0;
  size_t pos = 0;
  char32_t previous = unicode::next_code_point(word, pos);
  while (pos < word.size()) {
    const size_t boundary = pos;
    const char32_t c = unicode::next_code_point(word, pos);
    // Only between two characters that are tokens themselves: an unknown one becomes <unk> or
    // <0xXX> symbols, whose text is not the character, and fuse_unk may join unknown runs.
    if (char_ids_.count(previous) != 0 && char_ids_.count(c) != 0 &&
        crossable_pairs_.count(pair_key(previous, c)) == 0) {
      tokenize_word(word.substr(chunk_start, boundary - chunk_start), ids);
      chunk_start = boundary;
    }
    previous = c;
  }
  tokenize_word(word.substr(chunk_start), ids);
}

void BpeModel::tokenize_word(std::string_view word_view, std::vector<int32_t>& ids) const {
  const bool cacheable = word_view.size() <= kMaxCachedWordBytes;
  if (!cacheable) {
    merge_word(word_view, ids);
    return;
  }
  const std::string word(word_view);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  merge_word(word, ids);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() < kCacheCapacity)
    cache_.emplace(word, std::vector<int32_t>(ids.begin() + first, ids.end()));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  const bool plain_chars = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };
  int32_t pending_unk = -1;  // an unknown run not yet added, or -1 (fuse_unk joins runs)
  std::string decorated;
  for (size_t pos = 0; pos < word.size();) {
    const size_t start = pos;
    const char32_t c = unicode::next_code_point(word, pos);
    std::string_view text = word.substr(start, pos - start);
    int32_t id;
    if (plain_chars) {
      const auto it = char_ids_.find(c);
      id = it == char_ids_.end() ? -1 : it->second;
    } else {
      decorated.assign(start == 0 ? "" : continuing_subword_prefix_);
      decorated.append(text);
      if (pos == word.size()) decorated.append(end_of_word_suffix_);
      text = decorated;
      id = symbol_id(text);
    }
    if (id >= 0) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(id);
      continue;
    }
    if (byte_fallback_ && std::all_of(text.begin(), text.end(), [&](char b) {
          return byte_fallback_ids_[static_cast<unsigned char>(b)] >= 0;
        })) {
      for (char b : text) add(byte_fallback_ids_[static_cast<unsigned char>(b)]);
      continue;
    }
    if (!unk_id_) continue;  // no unk_token: tokenizers drops the character
    if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
    pending_unk = *unk_id_;
  }
  if (pending_unk >= 0) add(pending_unk);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<QueuedMerge> storage;
  storage.reserve(symbols.size());
  std::priority_queue<QueuedMerge> queue(std::less<QueuedMerge>(), std::move(storage));
  const auto push_pair = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) push_pair(pos);
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    // Skip stale entries: the pair at this position changed since the entry was queued.
    const auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& symbol : symbols)
    if (symbol.alive) ids.push_back(symbol.id);
}

}  // namespace presso
