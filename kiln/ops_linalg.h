// Matrix products and the operations built from them, with NumPy's semantics: matmul, addmm,
// outer, inner, tensordot and einsum. One GEMM kernel does the work (OpenBLAS on the CPU,
// cuBLASLt / cuBLAS on CUDA); transposed operands and broadcast batches are read in place.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln {

// The matrix product. A 1-d a is a row vector and a 1-d b a column vector (the added axis is
// removed from the result); leading axes are stacks of matrices and broadcast. Any dtype except
// that 0-d operands are refused; the inputs are promoted to a common dtype.
array matmul(const array& a, const array& b, StreamOrDevice s = {});

// beta * c + alpha * matmul(a, b), with c broadcast to the product's shape; for float dtypes
// the scaling and the sum happen inside the GEMM. beta == 0 ignores c entirely.
array addmm(const array& c, const array& a, const array& b, double alpha = 1.0, double beta = 1.0,
            StreamOrDevice s = {});

// The outer product of the flattened inputs: out[i, j] = a[i] * b[j].
array outer(const array& a, const array& b, StreamOrDevice s = {});

// Sum product over the last axes of a and b (a 0-d operand multiplies instead).
array inner(const array& a, const array& b, StreamOrDevice s = {});

// Sum products over the last `axes` axes of a and the first `axes` axes of b.
array tensordot(const array& a, const array& b, int axes = 2, StreamOrDevice s = {});
// Sum products over the listed axes of a and of b, paired in order.
array tensordot(const array& a, const array& b, std::pair<std::vector<int>, std::vector<int>> axes,
                StreamOrDevice s = {});

// Einstein summation: "ij,jk->ik", "bij,bjk->bik", "ii->", "...ij->...ji", or without "->"
// (the output is then the labels seen once, sorted, after the broadcast '...' axes). Operands are
// contracted pairwise from left to right through matmul.
array einsum(const std::string& subscripts, const std::vector<array>& operands, StreamOrDevice s = {});

}  // namespace kiln
