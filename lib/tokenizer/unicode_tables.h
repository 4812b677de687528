// Unicode data tables for normalization and lowercasing, generated into unicode_tables.cpp by
// scripts/gen_unicode_tables.py. Every table is sorted by its first field for binary search.
#pragma once

#include <cstddef>
#include <cstdint>

namespace presso::unicode_tables {

struct CombiningClass {
  char32_t code_point;
  uint8_t combining_class;  // only non-zero classes are listed
};

// Full (recursively expanded) decompositions, as slices of kDecompositionData. canonical_size is 0
// when the mapping is a compatibility one; compat_size covers both kinds. Hangul is algorithmic.
struct Decomposition {
  char32_t code_point;
  uint16_t canonical_offset;
  uint8_t canonical_size;
  uint16_t compat_offset;
  uint8_t compat_size;
};

// Primary composites: (first, second) -> composite, exclusions already removed.
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

// Simple (one code point) lowercase mappings from UnicodeData.txt.
struct CaseMapping {
  char32_t code_point;
  char32_t mapped;
};

extern const CombiningClass kCombiningClasses[];
extern const size_t kCombiningClasses_size;
extern const char32_t kDecompositionData[];
extern const size_t kDecompositionData_size;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositions_size;
extern const Composition kCompositions[];
extern const size_t kCompositions_size;
extern const CaseMapping kLowercase[];
extern const size_t kLowercase_size;

}  // namespace presso::unicode_tables
