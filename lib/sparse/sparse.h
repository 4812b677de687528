// lib/sparse: pruning-mask kernels. Which weights of a linear [out, in] to zero, as a bool mask
// (true = kept), chosen from importance scores with exact pruned counts per comparison group
// (the whole layer, each output row, or N:M groups along the input dimension); the checks that
// later passes and writers run on a mask; the packed layout of 2:4-sparse weights. Pure
// functions on tensors: no file I/O, no model, recipe or pass knowledge, no logging. May include
// lib/common, lib/quant (SparseGPT's choice runs inside its OBS sweep) and LibTorch
// (<torch/types.h>); pattern.h is torch-free, so lib/recipe may include it. passes/ (magnitude,
// Wanda, SparseGPT) call the mask kernels; lib/export writes what this layer packs.
//
//   pattern.h           SparsityPattern (unstructured or N:M: N zeros per M inputs), its
//                       parser ("unstructured", "0:0", "N:M"), printer and validation
//   mask.h              mask_from_scores (the exact-count builder magnitude, Wanda and SparseGPT
//                       share: per layer, per row, N:M; ties broken by position),
//                       magnitude_mask, lowest_k_per_row, mask_sparsity, satisfies_pattern,
//                       apply_mask_
//   global_magnitude.h  global magnitude pruning across layers with a per-layer floor
//                       (min_keep; default (1 − sparsity) / 2) by radix selection, never
//                       concatenating the layers; counts from layers streamed one at a time
//   sparsegpt.h         SparseGPT's mask choice (OBS saliency w²/[H⁻¹]²_jj, per block or N:M) for
//                       the OBS sweep of lib/quant/gptq.h, which prunes, updates and quantizes
//   wanda.h             Wanda's scores |W|·‖x‖ and OWL's layer-wise sparsities (outlier ratio
//                       of a layer's scores, layer sparsities from the ratios)
//   pack_24_bitmask.h   compressed-tensors `sparse-24-bitmask` tensors of a 2:4 weight
//   reference.h         slow sort-per-group versions of the mask kernels, for tests
#pragma once

#include "lib/sparse/global_magnitude.h"
#include "lib/sparse/mask.h"
#include "lib/sparse/pack_24_bitmask.h"
#include "lib/sparse/pattern.h"
#include "lib/sparse/sparsegpt.h"
#include "lib/sparse/wanda.h"
