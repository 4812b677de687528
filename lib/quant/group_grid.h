// The grid of one group from its min and max, in scalar fp32 arithmetic that follows
// grid_from_range (grid.h) operation for operation: the fused GPTQ sweeps (CPU and CUDA) compute
// each group's grid inside the sweep with it instead of some twenty tensor ops per block.
// tests/quant_kernels.cpp checks it bit for bit against grid_from_range. Free of LibTorch and
// compiled as host and device code, so the CUDA kernel includes it too.
#pragma once

#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define PRESSO_HOST_DEVICE __host__ __device__
#else
#define PRESSO_HOST_DEVICE
#endif

namespace presso::group_grid {

// The dtype scales are stored in; they are rounded to it before zero points and codes derive.
enum class ScaleStorage : int8_t { kFloat32, kFloat16, kBFloat16 };

struct GridRule {
  int bits = 4;
  bool symmetric = true;
  ScaleStorage storage = ScaleStorage::kFloat32;
  bool avoid_qmin_zero_point = false;  // GridOptions::avoid_qmin_zero_point
};

struct Grid {
  float scale;
  float zero;  // signed code, an integral value; 0 when symmetric
};

// v rounded to nearest, ties to even, at the storage type's precision (subnormals included;
// beyond its largest finite value, ±inf), returned as fp32. Scaling by powers of two is exact, so
// only rintf rounds.
PRESSO_HOST_DEVICE inline float round_to_storage(float v, ScaleStorage storage) {
  if (storage == ScaleStorage::kFloat32 || v == 0.0f) return v;
  const int exponent = ilogbf(v);
  // Exponent of one unit in the last place at v: 10 fraction bits above fp16's smallest normal
  // exponent −14, 7 above bfloat16's −126.
  const bool half = storage == ScaleStorage::kFloat16;
  const int min_exponent = half ? -14 : -126;
  const int quantum = (exponent < min_exponent ? min_exponent : exponent) - (half ? 10 : 7);
  const float rounded = ldexpf(rintf(ldexpf(v, -quantum)), quantum);
  if (half && fabsf(rounded) > 65504.0f) return rounded > 0 ? INFINITY : -INFINITY;
  return rounded;  // bfloat16 overflows to inf as fp32 does: 2^128
}

// What compressed-tensors stores for a zero scale: the storage type's machine epsilon
// (zero_scale_substitute in grid.h).
PRESSO_HOST_DEVICE inline float zero_scale_substitute(ScaleStorage storage) {
  switch (storage) {
    case ScaleStorage::kFloat16:
      return 1.0f / 1024;
    case ScaleStorage::kBFloat16:
      return 1.0f / 128;
    default:
      return 1.0f / 8388608;  // 2^-23
  }
}

PRESSO_HOST_DEVICE inline float storable_scale(float scale, ScaleStorage storage) {
  const float rounded = round_to_storage(scale, storage);
  return rounded == 0.0f ? zero_scale_substitute(storage) : rounded;
}

// grid_from_range for one group. An overflowing scale comes back as inf; the caller checks.
PRESSO_HOST_DEVICE inline Grid grid_from_range(float min, float max, const GridRule& rule) {
  const float lo = min < 0.0f ? min : 0.0f;
  const float hi = max > 0.0f ? max : 0.0f;
  const float levels = static_cast<float>((1 << rule.bits) - 1);
  const float qmin = static_cast<float>(-(1 << (rule.bits - 1)));
  const float qmax = static_cast<float>((1 << (rule.bits - 1)) - 1);
  if (rule.symmetric) {
    const float absmax = fabsf(lo) > hi ? fabsf(lo) : hi;
    return {storable_scale(absmax / (levels / 2), rule.storage), 0.0f};
  }
  Grid grid;
  grid.scale = storable_scale((hi - lo) / levels, rule.storage);
  grid.zero = rintf(fminf(fmaxf(qmin - lo / grid.scale, qmin), qmax));
  if (rule.avoid_qmin_zero_point && grid.zero == qmin) {
    grid.scale = storable_scale(hi / (levels - 1), rule.storage);
    grid.zero = qmin + 1;
  }
  return grid;
}

}  // namespace presso::group_grid
