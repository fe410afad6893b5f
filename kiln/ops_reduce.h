// Reductions (sum, prod, max, min, all, any, mean, var, std, logsumexp), arg-reductions, softmax
// and scans (cumsum, cumprod, cummax, cummin).
//
// Axes may be negative; repeated axes are a ValueError and out-of-range ones an IndexError.
// Without axes a reduction covers every axis; an empty axis list reduces nothing. keepdims keeps
// the reduced axes with length 1.
//
// Output dtypes: sum, prod, cumsum and cumprod widen bool and the signed integers below 32 bits
// to int32 and the unsigned ones below 32 bits to uint32 (64-bit integers and floats keep their
// dtype; float16/bfloat16 accumulate in float32). max, min, cummax and cummin keep the dtype.
// all and any give bool. mean, var, std and logsumexp give float32 for integer and bool inputs
// and keep float dtypes. complex64 is supported by sum, prod, mean, cumsum and cumprod.
#pragma once

#include <vector>

#include "kiln/array.h"

namespace kiln {

#define KILN_DECLARE_REDUCTION(fn)                                                                 \
  array fn(const array& a, bool keepdims = false, StreamOrDevice s = {});                          \
  array fn(const array& a, int axis, bool keepdims = false, StreamOrDevice s = {});                \
  array fn(const array& a, std::vector<int> axes, bool keepdims = false, StreamOrDevice s = {});

KILN_DECLARE_REDUCTION(sum)
KILN_DECLARE_REDUCTION(prod)
KILN_DECLARE_REDUCTION(max)  // NaN propagates; an empty reduced axis is a ValueError
KILN_DECLARE_REDUCTION(min)
KILN_DECLARE_REDUCTION(all)
KILN_DECLARE_REDUCTION(any)
KILN_DECLARE_REDUCTION(mean)  // of an empty axis: NaN
KILN_DECLARE_REDUCTION(logsumexp)  // log(sum(exp(a))) without overflow; of an empty axis: -inf
#undef KILN_DECLARE_REDUCTION

// Variance and standard deviation with `ddof` delta degrees of freedom: the sum of squared
// deviations is divided by max(n - ddof, 0).
array var(const array& a, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});
array var(const array& a, int axis, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});
array var(const array& a, std::vector<int> axes, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});
array std(const array& a, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});
array std(const array& a, int axis, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});
array std(const array& a, std::vector<int> axes, bool keepdims = false, int ddof = 0, StreamOrDevice s = {});

// Index (uint32) of the first maximum/minimum along `axis`, or of the flattened array when no
// axis is given (with keepdims the result then has a's number of dimensions, all of length 1).
// NaN counts as the extreme, as in NumPy. An empty axis is a ValueError.
array argmax(const array& a, bool keepdims = false, StreamOrDevice s = {});
array argmax(const array& a, int axis, bool keepdims = false, StreamOrDevice s = {});
array argmin(const array& a, bool keepdims = false, StreamOrDevice s = {});
array argmin(const array& a, int axis, bool keepdims = false, StreamOrDevice s = {});

// exp(a - max) / sum(exp(a - max)) over the axes (default: the last), and its logarithm
// (a - max) - log(sum(exp(a - max))). Integer and bool inputs give float32. Along the last axis
// this is one fused kernel.
array softmax(const array& a, std::vector<int> axes, StreamOrDevice s = {});
array softmax(const array& a, int axis, StreamOrDevice s = {});
array softmax(const array& a, StreamOrDevice s = {});  // the last axis
array log_softmax(const array& a, std::vector<int> axes, StreamOrDevice s = {});
array log_softmax(const array& a, int axis, StreamOrDevice s = {});
array log_softmax(const array& a, StreamOrDevice s = {});

// Running reductions along `axis`. reverse runs from the end toward the start; an exclusive scan
// (inclusive = false) leaves each element out of its own result, so the first value is the
// identity (0, 1, the lowest or the highest value; -inf/+inf for floats).
array cumsum(const array& a, int axis, bool reverse = false, bool inclusive = true, StreamOrDevice s = {});
array cumprod(const array& a, int axis, bool reverse = false, bool inclusive = true, StreamOrDevice s = {});
array cummax(const array& a, int axis, bool reverse = false, bool inclusive = true, StreamOrDevice s = {});
array cummin(const array& a, int axis, bool reverse = false, bool inclusive = true, StreamOrDevice s = {});

}  // namespace kiln
