// Random primitives. Only raw bits need kernels; every distribution in kiln/random.h is a
// composition of these bits with elementwise ops.
#pragma once

#include "kiln/primitive.h"

namespace kiln {

// Random bits from one key (input 0: uint32 array of shape (2,), any layout). The output (an
// unsigned integer dtype of `width` bytes) is the little-endian byte stream of the 32-bit words
// laid out by random_detail::WordPairs (the JAX/MLX layout), truncated to out.nbytes(). The same
// key gives the same bits on every backend.
class RandomBits : public Primitive {
 public:
  explicit RandomBits(int width) : width(width) {}
  const char* name() const override { return "random_bits"; }
  int width;
};

}  // namespace kiln
