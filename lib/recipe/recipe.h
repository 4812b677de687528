// lib/recipe: recipes — which passes run, with which options, on which linears.
//
// Owns: option schemas (schema.h), the option groups passes build their schemas from
// (option_groups.h), and the translations of llm-compressor's modifiers that passes list in
// their schemas (modifier_translation.h, llmc_modifiers.h); parsing both recipe spellings into
// one in-memory Recipe — ours (`passes: [- gptq: {...}]`) and llm-compressor's (`*_stage` /
// `*_modifiers` / modifiers, translated in llmc_recipe.cpp); printing a Recipe back as canonical
// YAML; target matching and the per-layer plan (targets.h).
// May include: lib/common, lib/sparse/pattern.h (torch-free), yaml-cpp, fmt. Torch-free, and
// never includes passes/: the schemas
// of the available passes, with the modifiers that become them, are handed in by the caller (the
// registry), so a recipe can name only registered passes and modifiers. yaml-cpp stays inside
// lib/recipe: no header that passes/ include names it.
//
// Every problem of a recipe is found before any is reported: one UserError, one line per problem,
// "w4.yaml:7: gptq: unknown key 'blocksize' (did you mean 'block_size'?)".
#pragma once

#include <string>
#include <vector>

#include "lib/recipe/schema.h"
#include "lib/recipe/targets.h"

namespace presso {

// Where an entry came from, for messages; not part of a recipe's value.
struct SourceLocation {
  std::string file;
  int line = 0;       // 1-based
  std::string label;  // the entry as the file names it: "gptq", or "GPTQModifier"
};

struct PassEntry {
  std::string pass;     // a schema name: "gptq"
  PassOptions options;  // every key of the schema, defaults filled
  SourceLocation where;

  bool operator==(const PassEntry& other) const {
    return pass == other.pass && options == other.options;
  }
  bool operator!=(const PassEntry& other) const { return !(*this == other); }
};

struct Recipe {
  std::vector<PassEntry> passes;  // in the order they run
  bool operator==(const Recipe& other) const { return passes == other.passes; }
  bool operator!=(const Recipe& other) const { return !(*this == other); }
};

// Parses a recipe in either spelling; `file` names it in messages. A file with a top-level
// `passes` key is ours; one whose top-level keys end in `_stage` is llm-compressor's. Throws one
// UserError listing every problem. Notes that are not errors (llm-compressor settings with no
// effect here, upstream fallbacks) are appended to `warnings` when given.
Recipe parse_recipe(const std::string& text, const std::string& file,
                    const std::vector<PassSchema>& schemas,
                    std::vector<std::string>* warnings = nullptr);

// parse_recipe on a file's contents, naming it by `path`.
Recipe load_recipe(const std::string& path, const std::vector<PassSchema>& schemas,
                   std::vector<std::string>* warnings = nullptr);

// The recipe in our spelling with every option explicit, in schema order; parsing it gives back
// an equal Recipe.
std::string print_recipe(const Recipe& recipe);

}  // namespace presso
