#include "kiln/io/dequantize.h"

#include <algorithm>
#include <cstring>

#include "kiln/backend/cpu/parallel.h"
#include "kiln/errors.h"
#include "kiln/types.h"

// The decoders must give exactly what ggml's (and gguf-py's) float32 arithmetic gives, so a
// multiply followed by an add must not be fused into one rounding.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace kiln::io {

namespace {

constexpr int64_t QK_K = 256;  // elements in a k-quant super-block

struct TypeRow {
  uint32_t id;
  GGMLTypeInfo info;
};

// Block sizes and bytes per block, as in ggml's type traits (gguf-py's GGML_QUANT_SIZES).
constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4}},
    {1, {"F16", 1, 2}},
    {2, {"Q4_0", 32, 2 + 16}},
    {3, {"Q4_1", 32, 2 + 2 + 16}},
    {6, {"Q5_0", 32, 2 + 4 + 16}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    {8, {"Q8_0", 32, 2 + 32}},
    {9, {"Q8_1", 32, 4 + 4 + 32}},
    {10, {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4}},
    {11, {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12}},
    {12, {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12}},
    {13, {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12}},
    {14, {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16}},
    {15, {"Q8_K", QK_K, 4 + QK_K + QK_K / 8}},
    {16, {"IQ2_XXS", QK_K, 2 + QK_K / 4}},
    {17, {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32}},
    {18, {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8}},
    {19, {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16}},
    {20, {"IQ4_NL", 32, 2 + 16}},
    {21, {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4}},
    {22, {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16}},
    {23, {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64}},
    {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},
    {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},
    {29, {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32}},
    {30, {"BF16", 1, 2}},
    {34, {"TQ1_0", QK_K, 2 + 4 * 13}},
    {35, {"TQ2_0", QK_K, 2 + 64}},
    {39, {"MXFP4", 32, 1 + 16}},
};

// Little-endian loads from unaligned bytes.
inline uint16_t u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline float f16(const uint8_t* p) { return float16_t::from_bits(u16(p)); }

// Each decoder turns one block into block_size floats.

// Q8_0: f16 scale d, 32 int8 q; x = q * d.
void block_q8_0(const uint8_t* b, float* y) {
  float d = f16(b);
  const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = static_cast<float>(q[i]) * d;
}

// Q4_0: f16 scale d, 16 bytes of nibbles: low nibbles are elements 0..15, high ones 16..31;
// x = (q - 8) * d.
void block_q4_0(const uint8_t* b, float* y) {
  float d = f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Q4_1: f16 scale d, f16 minimum m, nibbles as Q4_0; x = q * d + m.
void block_q4_1(const uint8_t* b, float* y) {
  float d = f16(b), m = f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    float lo = d * static_cast<float>(qs[j] & 0x0F);
    float hi = d * static_cast<float>(qs[j] >> 4);
    y[j] = lo + m;
    y[j + 16] = hi + m;
  }
}

// Q4_K: f16 d, f16 dmin, 12 bytes packing eight 6-bit scales and eight 6-bit mins, 128 bytes of
// nibbles. Sub-block s (32 elements) takes the low (s even) or high (s odd) nibbles of bytes
// 32*(s/2) .. 32*(s/2)+31; x = d*scale[s] * q - dmin*min[s].
void block_q4_k(const uint8_t* b, float* y) {
  float d = f16(b), dmin = f16(b + 2);
  const uint8_t* sc = b + 4;
  const uint8_t* qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    uint8_t scale, mn;
    if (s < 4) {
      scale = sc[s] & 0x3F;
      mn = sc[s + 4] & 0x3F;
    } else {  // low 4 bits in bytes 8..11, top 2 bits in the spare bits of bytes 0..7
      scale = static_cast<uint8_t>((sc[s + 4] & 0x0F) | ((sc[s - 4] >> 6) << 4));
      mn = static_cast<uint8_t>((sc[s + 4] >> 4) | ((sc[s] >> 6) << 4));
    }
    float ds = d * static_cast<float>(scale);
    float dm = dmin * static_cast<float>(mn);
    const uint8_t* q = qs + 32 * (s / 2);
    int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) {
      float v = ds * static_cast<float>((q[l] >> shift) & 0x0F);
      y[32 * s + l] = v - dm;
    }
  }
}

// Q6_K: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d. Element
// e = 128h + 32k + l (h < 2, k < 4, l < 32) has low bits from the (k/2)-th nibble of
// ql[64h + 32(k%2) + l] and high bits (qh[32h + l] >> 2k) & 3; x = d*scale[e/16] * (q - 32).
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  float d = f16(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        int e = 128 * h + 32 * k + l;
        int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
        int hi = (qh[32 * h + l] >> (2 * k)) & 0x03;
        int q = (lo | (hi << 4)) - 32;
        float ds = d * static_cast<float>(sc[e / 16]);
        y[e] = ds * static_cast<float>(q);
      }
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

template <class T>
void run_blocks(BlockFn fn, const uint8_t* src, int64_t nblocks, int64_t block, int64_t bytes, T* dst) {
  int64_t grain = std::max<int64_t>(1, 16384 / block);
  cpu::parallel_for(nblocks, grain, [&](int64_t lo, int64_t hi) {
    float tmp[QK_K];
    for (int64_t i = lo; i < hi; ++i) {
      fn(src + i * bytes, tmp);
      T* out = dst + i * block;
      for (int64_t j = 0; j < block; ++j) out[j] = static_cast<T>(tmp[j]);
    }
  });
}

// Plain float formats, element by element.
template <class T>
void run_plain(GGMLType type, const uint8_t* src, int64_t n, T* dst) {
  cpu::parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float v;
      if (type == GGMLType::F32) {
        std::memcpy(&v, src + 4 * i, 4);
      } else if (type == GGMLType::F16) {
        v = float16_t::from_bits(u16(src + 2 * i));
      } else {
        v = bfloat16_t::from_bits(u16(src + 2 * i));
      }
      dst[i] = static_cast<T>(v);
    }
  });
}

template <class T>
void dequantize_as(GGMLType type, const uint8_t* src, int64_t n, T* dst) {
  BlockFn fn = nullptr;
  switch (type) {
    case GGMLType::F32:
    case GGMLType::F16:
    case GGMLType::BF16:
      return run_plain(type, src, n, dst);
    case GGMLType::Q8_0: fn = block_q8_0; break;
    case GGMLType::Q4_0: fn = block_q4_0; break;
    case GGMLType::Q4_1: fn = block_q4_1; break;
    case GGMLType::Q4_K: fn = block_q4_k; break;
    case GGMLType::Q6_K: fn = block_q6_k; break;
    default:
      fail<ValueError>("[dequantize] no decoder for GGML type ", ggml_type_name(type));
  }
  const GGMLTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (n % info->block_size != 0) {
    fail<ValueError>("[dequantize] ", n, " elements of ", info->name, " are not whole blocks of ", info->block_size);
  }
  run_blocks(fn, src, n / info->block_size, info->block_size, info->type_size, dst);
}

}  // namespace

const GGMLTypeInfo* ggml_type_info(uint32_t type) {
  for (const auto& row : kTypes) {
    if (row.id == type) return &row.info;
  }
  return nullptr;
}

const char* ggml_type_name(GGMLType type) {
  const GGMLTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  return info ? info->name : "unknown";
}

bool can_dequantize(GGMLType type) {
  switch (type) {
    case GGMLType::F32:
    case GGMLType::F16:
    case GGMLType::BF16:
    case GGMLType::Q8_0:
    case GGMLType::Q4_0:
    case GGMLType::Q4_1:
    case GGMLType::Q4_K:
    case GGMLType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize(GGMLType type, const void* src, int64_t n, void* dst, Dtype out) {
  const auto* s = static_cast<const uint8_t*>(src);
  switch (out) {
    case Dtype::float16: return dequantize_as(type, s, n, static_cast<float16_t*>(dst));
    case Dtype::bfloat16: return dequantize_as(type, s, n, static_cast<bfloat16_t*>(dst));
    case Dtype::float32: return dequantize_as(type, s, n, static_cast<float*>(dst));
    case Dtype::float64: return dequantize_as(type, s, n, static_cast<double*>(dst));
    default:
      fail<TypeError>("[dequantize] output dtype must be float16, bfloat16, float32 or float64, not ", out);
  }
}

}  // namespace kiln::io
