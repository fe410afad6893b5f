// kiln's own matrix-vector kernels for the products of decoding: a few rows of activations times
// a weight stored (N, K) row-major, as Linear layers hold it (out = a @ W^T). Bandwidth-bound:
// each warp streams whole weight rows in 16-byte loads and reduces in registers.
#pragma once

#include "kiln/array.h"

namespace kiln::cuda {

// Computes out (M x N, row-contiguous) = a @ b for M <= 8 when b is the transpose of a row-major
// matrix (unit stride along K) and a has unit stride along K, both 16-byte aligned with K a
// multiple of the vector width, and no batch. Returns false, launching nothing, otherwise.
// With `residual` (M x N, row-contiguous) it computes residual + a @ b.
template <class T>
bool try_gemv(const array& a, const array& b, const array& out, T* c, const T* residual = nullptr);

}  // namespace kiln::cuda
