// The translations of llm-compressor's modifiers, ready for the schemas of the passes they become
// (PassSchema::modifiers). Each writes the keys listed beside it, which the pass's schema must
// declare (option_groups.h has them as groups); a translated key that the pass lacks is a recipe
// error naming both. Keys that upstream requires or fills by default are written explicitly, so
// that a translated recipe means what it means upstream whatever the pass's own defaults are.
// Sources are cited in llmc_modifiers.cpp (llm-compressor main of 2026-08, compressed-tensors
// 0.18.0). Torch-free and YAML-free.
#pragma once

#include "lib/recipe/modifier_translation.h"

namespace presso {

// QuantizationModifier (a QuantizationMixin: scheme presets or config_groups, observers):
// one entry per weight group with targets, ignore, bits, group_size, symmetric, mse.
ModifierTranslation quantization_modifier_translation();

// GPTQModifier: the QuantizationModifier keys, and damp, block_size, act_order, static_groups,
// true_sequential from its solver keys and actorder.
ModifierTranslation gptq_modifier_translation();

// AWQModifier: one entry per weight group of the next quantizing modifier, with that group's
// targets, ignore, bits, group_size, symmetric, mse, and duo_scaling, n_grid, mappings and clip
// (false: upstream has no clipping search). Its older form with quantization keys reads as an
// AWQModifier followed by a QuantizationModifier, which then needs a pass too.
ModifierTranslation awq_modifier_translation();

// SparseGPTModifier (SparsityModifierBase): targets, ignore, sparsity, pattern (from
// mask_structure), damp, block_size; OWL is an error (Wanda only).
ModifierTranslation sparsegpt_modifier_translation();

// WandaPruningModifier (SparsityModifierBase): targets, ignore, sparsity, pattern,
// true_sequential (false: a layer's linears share one calibration run) and, with OWL,
// sparsity_profile, owl_threshold_m (owl_m) and owl_lambda (owl_lmbda).
ModifierTranslation wanda_modifier_translation();

// MagnitudePruningModifier, read one-shot: targets, sparsity (final_sparsity), pattern (from
// mask_structure) and scope (layer: upstream prunes each layer to final_sparsity); its schedule
// keys are accepted with a warning.
ModifierTranslation magnitude_modifier_translation();

}  // namespace presso
