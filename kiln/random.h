// Counter-based random numbers, in the manner of JAX and MLX (mx.random). A key is a uint32 array
// of shape (2,); the same key always gives the same numbers, on every device. Functions take an
// optional key; without one they draw a fresh key from a global sequence seeded by seed().
//
// Only bits() has kernels (threefry2x32-20, kiln/backend/common/threefry.h); every distribution
// is a composition of bits with elementwise ops. Floating-point results are computed in float32
// (float64 for float64 outputs) and then rounded to the requested dtype.
#pragma once

#include <cstdint>
#include <optional>

#include "kiln/array.h"

namespace kiln::random {

// Re-seeds the global key sequence (seeded from the clock at start-up).
void seed(uint64_t seed);

// The key of a 64-bit seed: (seed >> 32, seed & 0xffffffff) as uint32 of shape (2,).
array key(uint64_t seed);

// `num` new keys derived from `key`, as an array of shape (num, 2); row i is a key.
array split(const array& key, int num = 2, StreamOrDevice s = {});

// Raw random bits: an unsigned integer array of `width` bytes per element (1, 2, 4 or 8 give
// uint8, uint16, uint32, uint64).
array bits(const Shape& shape, int width = 4, const std::optional<array>& key = {}, StreamOrDevice s = {});

// Uniform values in [low, high) (bounds broadcast to `shape`, rounded to dtype first). Each value
// is low + (high - low) * u with u a multiple of 2^-24 in [0, 1) (2^-53 for float64); a result
// that rounds up to high is replaced by the largest dtype value below high. `dtype` must be a
// floating type. The scalar overload checks low < high; the array overload does not (it cannot
// read lazy bounds) and gives unspecified values where low >= high.
array uniform(const array& low, const array& high, const Shape& shape, Dtype dtype = float32,
              const std::optional<array>& key = {}, StreamOrDevice s = {});
array uniform(double low, double high, const Shape& shape, Dtype dtype = float32,
              const std::optional<array>& key = {}, StreamOrDevice s = {});
// Uniform in [0, 1).
array uniform(const Shape& shape, Dtype dtype = float32, const std::optional<array>& key = {}, StreamOrDevice s = {});

// Normal values loc + scale * z. z = sqrt(2) * erfinv(u) with u uniform in (-1, 1) on a symmetric
// grid of step 2^-23, so |z| stays below about 5.3; for float64, z comes from Box-Muller on two
// 53-bit uniforms, with tails to about 8.5.
array normal(const Shape& shape, Dtype dtype = float32, double loc = 0.0, double scale = 1.0,
             const std::optional<array>& key = {}, StreamOrDevice s = {});

// Integers in [low, high) (bounds broadcast to `shape`) of an integer dtype: low + b mod
// (high - low) with b 64 random bits, so the bias is below (high - low) / 2^64. The scalar
// overload checks low < high and that the range fits dtype; the array overload gives low where
// high <= low.
array randint(const array& low, const array& high, const Shape& shape, Dtype dtype = int32,
              const std::optional<array>& key = {}, StreamOrDevice s = {});
array randint(int64_t low, int64_t high, const Shape& shape, Dtype dtype = int32,
              const std::optional<array>& key = {}, StreamOrDevice s = {});

// bool values that are true with probability p (broadcast to `shape`, which defaults to p's).
array bernoulli(const array& p, std::optional<Shape> shape = {}, const std::optional<array>& key = {},
                StreamOrDevice s = {});
array bernoulli(double p = 0.5, const Shape& shape = {}, const std::optional<array>& key = {},
                StreamOrDevice s = {});

// Standard normal values restricted to [lower, upper] (bounds broadcast to `shape`), drawn by
// inverting the normal CDF between the CDFs of the bounds. The CDF is kept 2^-24 away from 0 and
// 1, so no value lies beyond about 5.4 in magnitude, and bounds far in a tail (beyond about 5)
// are not sampled faithfully (their values pile up at the bound). The scalar overload checks
// lower < upper.
array truncated_normal(const array& lower, const array& upper, const Shape& shape, Dtype dtype = float32,
                       const std::optional<array>& key = {}, StreamOrDevice s = {});
array truncated_normal(double lower, double upper, const Shape& shape, Dtype dtype = float32,
                       const std::optional<array>& key = {}, StreamOrDevice s = {});

// Standard Gumbel values: -log(-log(u)), u uniform in (0, 1).
array gumbel(const Shape& shape, Dtype dtype = float32, const std::optional<array>& key = {}, StreamOrDevice s = {});

// Samples category indices (uint32) from unnormalized log-probabilities along `axis`, by the
// Gumbel-max trick: argmax(logits + gumbel). Without num_samples the axis is removed from the
// shape; with it, the result has shape logits.shape without axis, plus num_samples at the end.
array categorical(const array& logits, int axis = -1, std::optional<int> num_samples = {},
                  const std::optional<array>& key = {}, StreamOrDevice s = {});

}  // namespace kiln::random
