// Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011; the Random123 reference), the counter-based generator behind kiln::random, written once
// for both backends so that CPU and CUDA produce bit-identical streams.
#pragma once

#include <cstdint>

#include "kiln/types.h"

namespace kiln::random_detail {

struct U32x2 {
  uint32_t a;
  uint32_t b;
};

KILN_HD uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// threefry2x32-20 of counter (c0, c1) under key (k0, k1).
KILN_HD U32x2 threefry2x32(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1) {
  constexpr int kRot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  const uint32_t ks[3] = {k0, k1, 0x1BD11BDAu ^ k0 ^ k1};
  uint32_t x0 = c0 + ks[0];
  uint32_t x1 = c1 + ks[1];
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 20; ++r) {
    x0 += x1;
    x1 = rotl32(x1, kRot[r % 8]);
    x1 ^= x0;
    if (r % 4 == 3) {  // key injection after every fourth round
      uint32_t s = static_cast<uint32_t>(r / 4 + 1);
      x0 += ks[s % 3];
      x1 += ks[(s + 1) % 3] + s;
    }
  }
  return {x0, x1};
}

// The layout of a stream of `words` 32-bit words drawn from one key, as in JAX and MLX: counters
// 0..words-1 are split in two halves that are hashed as pairs. Pair p (0 <= p < pairs()) hashes
// the counter (p, second(p)) and gives word p its first output and, when p < half, word
// p + half + odd its second; an odd count pads the second half with a counter of 0.
struct WordPairs {
  uint64_t half;
  uint64_t odd;

  KILN_HD explicit WordPairs(uint64_t words) : half(words / 2), odd(words % 2) {}
  KILN_HD uint64_t pairs() const { return half + odd; }
  KILN_HD uint32_t second_counter(uint64_t p) const { return p < half ? static_cast<uint32_t>(p + half + odd) : 0u; }
  KILN_HD bool has_second(uint64_t p) const { return p < half; }
  KILN_HD uint64_t second_word(uint64_t p) const { return p + half + odd; }
};

}  // namespace kiln::random_detail
