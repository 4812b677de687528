// lib/quant: integer weight quantization kernels and the packed checkpoint layouts serving
// engines load. Pure functions on tensors: no file I/O, no model or pass knowledge, no logging.
// May include lib/common and LibTorch (<torch/types.h>); lib/io writes what this layer packs.
//
//   scheme.h                   QuantScheme (bits, group size, symmetry) and its validation
//   grid.h                     scales / zero points from min/max (compressed-tensors' formula),
//                              optional MSE range search (llm-compressor's observer)
//   quantize.h                 QuantizedWeight, quantize / dequantize
//   gptq.h                     GPTQ: the OBS column sweep over a layer's Hessian, lazy batches
//   awq.h                      AWQ: llm-awq's scale formula and clipping search
//   bitpack.h                  dense LSB-first b-bit packing into int32 words
//   pack_compressed_tensors.h  compressed-tensors `pack-quantized` (0.18 layout)
//   pack_gptq.h                GPTQ v1 qweight / qzeros / scales / g_idx
//   pack_awq.h                 AutoAWQ GEMM qweight / qzeros / scales
//   reference.h                slow loop versions of all of the above, for tests (GPTQ as the
//                              direct OBS loop)
//
// Byte-level layouts and the upstream files they were checked against: docs/formats.md.
#pragma once

#include "lib/quant/awq.h"
#include "lib/quant/bitpack.h"
#include "lib/quant/gptq.h"
#include "lib/quant/grid.h"
#include "lib/quant/pack_awq.h"
#include "lib/quant/pack_compressed_tensors.h"
#include "lib/quant/pack_gptq.h"
#include "lib/quant/quantize.h"
#include "lib/quant/scheme.h"
