// GGML tensor element types and decoding of their blocks into floats. The block layouts follow
// ggml's definitions (ggml-common.h; gguf-py's quants.py has reference NumPy decoders).
#pragma once

#include <cstdint>

#include "kiln/dtype.h"

namespace kiln::io {

enum class GGMLType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

// Layout of one type: `block_size` elements are stored in `type_size` bytes.
struct GGMLTypeInfo {
  const char* name;
  int64_t block_size;
  int64_t type_size;
};

// The layout of a type id read from a file, or null for ids this reader does not know.
const GGMLTypeInfo* ggml_type_info(uint32_t type);
const char* ggml_type_name(GGMLType type);

// Whether decode_blocks handles `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K).
bool can_dequantize(GGMLType type);

// Decodes `n` elements (a multiple of the block size) of `type` from `src` into `dst` as
// `out` (float16, bfloat16, float32 or float64). Each value is computed in float32 as ggml does,
// then rounded once to `out`. Runs on the CPU thread pool.
void dequantize(GGMLType type, const void* src, int64_t n, void* dst, Dtype out);

}  // namespace kiln::io
