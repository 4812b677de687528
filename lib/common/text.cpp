#include "lib/common/text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <vector>

namespace presso {

std::string abbreviate(std::string_view text, size_t max_chars) {
  if (text.size() <= max_chars) return std::string(text);
  size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  // One row of the dynamic-programming table at a time.
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

namespace {

// A line cut at its ".N." indices: the text around them, and the indices.
struct Indexed {
  std::vector<std::string> parts;  // one more than indices
  std::vector<long long> indices;
};

Indexed split_indices(const std::string& line) {
  Indexed out;
  std::string part;
  for (size_t i = 0; i < line.size(); ++i) {
    part += line[i];
    if (line[i] != '.') continue;
    size_t j = i + 1;
    while (j < line.size() && line[j] >= '0' && line[j] <= '9') ++j;
    if (j == i + 1 || j >= line.size() || line[j] != '.' || j - i > 10) continue;
    out.parts.push_back(part);
    out.indices.push_back(std::stoll(line.substr(i + 1, j - i - 1)));
    part.clear();
    i = j - 1;
  }
  out.parts.push_back(part);
  return out;
}

// "{0-5}", "{0,2,4}" or "{1-3,7}".
std::string index_set(std::vector<long long> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<std::string> runs;
  for (size_t i = 0; i < values.size();) {
    size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) ++j;
    runs.push_back(
        j >= i + 2 ? fmt::format("{}-{}", values[i], values[j])
                   : fmt::format("{}", fmt::join(values.begin() + i, values.begin() + j + 1, ",")));
    i = j + 1;
  }
  return "{" + fmt::format("{}", fmt::join(runs, ",")) + "}";
}

}  // namespace

std::vector<std::string> fold_block_indices(const std::vector<std::string>& lines) {
  // Lines group by their text around the indices and every index but one (position p).
  std::vector<std::string> out;
  std::vector<bool> used(lines.size(), false);
  std::vector<Indexed> split;
  for (const auto& line : lines) split.push_back(split_indices(line));
  for (size_t a = 0; a < lines.size(); ++a) {
    if (used[a]) continue;
    used[a] = true;
    const Indexed& first = split[a];
    std::string folded = lines[a];
    for (size_t p = 0; p < first.indices.size(); ++p) {
      std::vector<size_t> members;
      for (size_t b = a + 1; b < lines.size(); ++b) {
        const Indexed& other = split[b];
        if (used[b] || other.parts != first.parts) continue;
        bool same = true;
        for (size_t q = 0; q < first.indices.size() && same; ++q)
          same = q == p || other.indices[q] == first.indices[q];
        if (same) members.push_back(b);
      }
      if (members.empty()) continue;
      std::vector<long long> values = {first.indices[p]};
      for (size_t b : members) {
        values.push_back(split[b].indices[p]);
        used[b] = true;
      }
      folded.clear();
      for (size_t q = 0; q < first.indices.size(); ++q) {
        folded += first.parts[q] + (q == p ? index_set(values) : std::to_string(first.indices[q]));
      }
      folded += first.parts.back();
      break;
    }
    out.push_back(folded);
  }
  return out;
}

}  // namespace presso
