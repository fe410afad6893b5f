#include "kiln/ops_reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_reduce.h"

namespace kiln {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::prod: return "prod";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
    case ReduceOp::all: return "all";
    case ReduceOp::any: return "any";
  }
  return "?";
}

const char* op_name(ArgReduceOp op) { return op == ArgReduceOp::argmax ? "argmax" : "argmin"; }

const char* op_name(ScanOp op) {
  switch (op) {
    case ScanOp::cumsum: return "cumsum";
    case ScanOp::cumprod: return "cumprod";
    case ScanOp::cummax: return "cummax";
    case ScanOp::cummin: return "cummin";
  }
  return "?";
}

namespace {

std::vector<int> all_axes(const array& a) {
  std::vector<int> axes(a.ndim());
  std::iota(axes.begin(), axes.end(), 0);
  return axes;
}

// Normalized, sorted, distinct axes.
std::vector<int> check_axes(const array& a, const std::vector<int>& given, const char* name) {
  std::vector<int> axes = given;
  for (auto& ax : axes) ax = normalize_axis(ax, a.ndim(), name);
  std::sort(axes.begin(), axes.end());
  auto dup = std::adjacent_find(axes.begin(), axes.end());
  if (dup != axes.end()) fail<ValueError>("[", name, "] axis ", *dup, " is repeated in axes ", given);
  return axes;
}

// The input shape with the reduced axes kept (length 1) or dropped.
Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdims) {
  Shape out;
  size_t k = 0;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (k < axes.size() && axes[k] == d) {
      ++k;
      if (keepdims) out.push_back(1);
    } else {
      out.push_back(shape[d]);
    }
  }
  return out;
}

int64_t reduced_count(const array& a, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int ax : axes) n *= a.shape()[ax];
  return n;
}

// bool and integers below 32 bits widen to 32 bits, as sum and prod accumulate them.
Dtype sum_dtype(Dtype t) {
  switch (t) {
    case bool_:
    case int8:
    case int16: return int32;
    case uint8:
    case uint16: return uint32;
    default: return t;
  }
}

bool is_half(Dtype t) { return t == float16 || t == bfloat16; }

// The graph node of a reduction over checked axes, with dtype `out`.
array reduce_node(ReduceOp op, const array& x, const std::vector<int>& axes, Dtype out, bool keepdims, Stream st) {
  if (axes.empty()) return astype(x, out, st);
  array r(reduced_shape(x.shape(), axes, true), out, std::make_shared<Reduce>(op, axes), {x}, st);
  if (!keepdims) r = reshape(r, reduced_shape(x.shape(), axes, false), st);
  return r;
}

array reduce(ReduceOp op, const array& a, const std::vector<int>& given, bool keepdims, StreamOrDevice s) {
  const char* name = op_name(op);
  Stream st = to_stream(s);
  std::vector<int> axes = check_axes(a, given, name);
  Dtype t = a.dtype();
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::prod:
      return reduce_node(op, a, axes, sum_dtype(t), keepdims, st);
    case ReduceOp::max:
    case ReduceOp::min:
      if (is_complex(t)) fail<TypeError>("[", name, "] complex64 input is not supported");
      if (reduced_count(a, axes) == 0 && !axes.empty()) {
        fail<ValueError>("[", name, "] cannot reduce an empty axis of an array of shape ", a.shape(),
                         " (axes ", axes, "): there is no identity");
      }
      return reduce_node(op, a, axes, t, keepdims, st);
    case ReduceOp::all:
    case ReduceOp::any:
      return reduce_node(op, astype(a, bool_, st), axes, bool_, keepdims, st);
  }
  return a;
}

// Floating dtype a float-valued reduction computes in: float32 for integers and bool.
Dtype float_dtype(Dtype t, const char* name) {
  if (is_complex(t)) fail<TypeError>("[", name, "] complex64 input is not supported");
  return is_floating(t) ? t : float32;
}

array mean_impl(const array& a, const std::vector<int>& given, bool keepdims, StreamOrDevice s) {
  Stream st = to_stream(s);
  std::vector<int> axes = check_axes(a, given, "mean");
  Dtype t = a.dtype();
  Dtype out = is_inexact(t) ? t : float32;
  if (axes.empty()) return astype(a, out, st);
  double n = static_cast<double>(reduced_count(a, axes));
  if (is_half(t)) {
    // Sum in float32 (a float16 sum of many values overflows), divide, round once.
    array total = reduce_node(ReduceOp::sum, a, axes, float32, keepdims, st);
    return astype(divide(total, array(n, float32), st), t, st);
  }
  array x = astype(a, out, st);
  array total = reduce_node(ReduceOp::sum, x, axes, out, keepdims, st);
  return divide(total, array(n, out), st);
}

// Variance in the dtype it is computed in (float32 for integer and 16-bit inputs, else the
// input's); the callers cast back.
array var_compute(const array& a, const std::vector<int>& axes, bool keepdims, int ddof, const char* name, Stream st) {
  Dtype t = float_dtype(a.dtype(), name);
  Dtype ct = is_half(t) ? float32 : t;
  array x = astype(a, ct, st);
  array ss = multiply(x, zeros_like(x, st), st);  // no axes: each element is its own mean
  if (!axes.empty()) {
    array d = subtract(x, mean_impl(x, axes, true, st), st);
    ss = reduce_node(ReduceOp::sum, multiply(d, d, st), axes, ct, keepdims, st);
  }
  double n = static_cast<double>(std::max<int64_t>(reduced_count(a, axes) - ddof, 0));
  return divide(ss, array(n, ct), st);
}

array var_impl(const array& a, const std::vector<int>& given, bool keepdims, int ddof, bool root, StreamOrDevice s) {
  const char* name = root ? "std" : "var";
  Stream st = to_stream(s);
  std::vector<int> axes = check_axes(a, given, name);
  Dtype t = float_dtype(a.dtype(), name);
  array v = var_compute(a, axes, keepdims, ddof, name, st);
  if (root) v = sqrt(v, st);
  return astype(v, t, st);
}

array logsumexp_impl(const array& a, const std::vector<int>& given, bool keepdims, StreamOrDevice s) {
  Stream st = to_stream(s);
  std::vector<int> axes = check_axes(a, given, "logsumexp");
  Dtype t = float_dtype(a.dtype(), "logsumexp");
  Dtype ct = is_half(t) ? float32 : t;
  array x = astype(a, ct, st);
  if (axes.empty()) return astype(x, t, st);
  if (reduced_count(a, axes) == 0) {
    return astype(log(reduce_node(ReduceOp::sum, x, axes, ct, keepdims, st), st), t, st);
  }
  // Shift by the max so exp cannot overflow; an infinite max (all -inf, or some +inf) shifts by
  // 0 instead, which gives -inf and +inf without inf - inf = NaN.
  array m = reduce_node(ReduceOp::max, x, axes, ct, true, st);
  m = where(isinf(m, st), zeros_like(m, st), m, st);
  array total = reduce_node(ReduceOp::sum, exp(subtract(x, m, st), st), axes, ct, true, st);
  array r = add(log(total, st), m, st);
  if (!keepdims) r = reshape(r, reduced_shape(a.shape(), axes, false), st);
  return astype(r, t, st);
}

array arg_reduce(ArgReduceOp op, const array& a, int axis, bool keepdims, StreamOrDevice s) {
  const char* name = op_name(op);
  Stream st = to_stream(s);
  if (is_complex(a.dtype())) fail<TypeError>("[", name, "] complex64 input is not supported");
  int ax = normalize_axis(axis, a.ndim(), name);
  if (a.shape()[ax] == 0) {
    fail<ValueError>("[", name, "] cannot take the ", name, " of an empty axis (axis ", axis, " of shape ",
                     a.shape(), ")");
  }
  std::vector<int> axes{ax};
  array r(reduced_shape(a.shape(), axes, true), uint32, std::make_shared<ArgReduce>(op, ax), {a}, st);
  if (!keepdims) r = reshape(r, reduced_shape(a.shape(), axes, false), st);
  return r;
}

array arg_reduce_flat(ArgReduceOp op, const array& a, bool keepdims, StreamOrDevice s) {
  const char* name = op_name(op);
  if (a.size() == 0) fail<ValueError>("[", name, "] cannot take the ", name, " of an empty array");
  Stream st = to_stream(s);
  array r = arg_reduce(op, reshape(a, {a.size()}, st), 0, false, st);
  if (keepdims) r = reshape(r, Shape(a.ndim(), 1), st);
  return r;
}

array softmax_impl(const array& a, const std::vector<int>& given, bool log_out, StreamOrDevice s) {
  const char* name = log_out ? "log_softmax" : "softmax";
  Stream st = to_stream(s);
  std::vector<int> axes = check_axes(a, given, name);
  Dtype t = float_dtype(a.dtype(), name);
  array x = astype(a, t, st);
  if (axes.empty()) {
    // Each element is its own group: softmax 1, log_softmax 0 (NaN stays NaN).
    array z = subtract(x, x, st);
    return log_out ? z : exp(z, st);
  }
  if (axes.size() == 1 && axes[0] == a.ndim() - 1) {
    return array(a.shape(), t, std::make_shared<Softmax>(log_out), {x}, st);
  }
  Dtype ct = is_half(t) ? float32 : t;
  x = astype(x, ct, st);
  array m = reduce_node(ReduceOp::max, x, axes, ct, true, st);
  m = where(isinf(m, st), zeros_like(m, st), m, st);
  array e = exp(subtract(x, m, st), st);
  array total = reduce_node(ReduceOp::sum, e, axes, ct, true, st);
  array r = log_out ? subtract(subtract(x, m, st), log(total, st), st) : divide(e, total, st);
  return astype(r, t, st);
}

array scan(ScanOp op, const array& a, int axis, bool reverse, bool inclusive, StreamOrDevice s) {
  const char* name = op_name(op);
  Stream st = to_stream(s);
  int ax = normalize_axis(axis, a.ndim(), name);
  Dtype t = a.dtype();
  Dtype out = t;
  if (op == ScanOp::cumsum || op == ScanOp::cumprod) {
    out = sum_dtype(t);
  } else if (is_complex(t)) {
    fail<TypeError>("[", name, "] complex64 input is not supported");
  }
  return array(a.shape(), out, std::make_shared<Scan>(op, ax, reverse, inclusive), {a}, st);
}

}  // namespace

#define KILN_DEFINE_REDUCTION(fn, impl)                                                     \
  array fn(const array& a, bool keepdims, StreamOrDevice s) { return impl(a, all_axes(a), keepdims, s); } \
  array fn(const array& a, int axis, bool keepdims, StreamOrDevice s) {                     \
    return impl(a, std::vector<int>{axis}, keepdims, s);                                    \
  }                                                                                         \
  array fn(const array& a, std::vector<int> axes, bool keepdims, StreamOrDevice s) {        \
    return impl(a, axes, keepdims, s);                                                      \
  }

#define KILN_REDUCE_WITH(op) \
  [](const array& a, const std::vector<int>& axes, bool keepdims, StreamOrDevice s) { return reduce(op, a, axes, keepdims, s); }

KILN_DEFINE_REDUCTION(sum, KILN_REDUCE_WITH(ReduceOp::sum))
KILN_DEFINE_REDUCTION(prod, KILN_REDUCE_WITH(ReduceOp::prod))
KILN_DEFINE_REDUCTION(max, KILN_REDUCE_WITH(ReduceOp::max))
KILN_DEFINE_REDUCTION(min, KILN_REDUCE_WITH(ReduceOp::min))
KILN_DEFINE_REDUCTION(all, KILN_REDUCE_WITH(ReduceOp::all))
KILN_DEFINE_REDUCTION(any, KILN_REDUCE_WITH(ReduceOp::any))
KILN_DEFINE_REDUCTION(mean, mean_impl)
KILN_DEFINE_REDUCTION(logsumexp, logsumexp_impl)
#undef KILN_REDUCE_WITH
#undef KILN_DEFINE_REDUCTION

array var(const array& a, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, all_axes(a), keepdims, ddof, false, s);
}
array var(const array& a, int axis, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, {axis}, keepdims, ddof, false, s);
}
array var(const array& a, std::vector<int> axes, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, axes, keepdims, ddof, false, s);
}
array std(const array& a, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, all_axes(a), keepdims, ddof, true, s);
}
array std(const array& a, int axis, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, {axis}, keepdims, ddof, true, s);
}
array std(const array& a, std::vector<int> axes, bool keepdims, int ddof, StreamOrDevice s) {
  return var_impl(a, axes, keepdims, ddof, true, s);
}

array argmax(const array& a, bool keepdims, StreamOrDevice s) {
  return arg_reduce_flat(ArgReduceOp::argmax, a, keepdims, s);
}
array argmax(const array& a, int axis, bool keepdims, StreamOrDevice s) {
  return arg_reduce(ArgReduceOp::argmax, a, axis, keepdims, s);
}
array argmin(const array& a, bool keepdims, StreamOrDevice s) {
  return arg_reduce_flat(ArgReduceOp::argmin, a, keepdims, s);
}
array argmin(const array& a, int axis, bool keepdims, StreamOrDevice s) {
  return arg_reduce(ArgReduceOp::argmin, a, axis, keepdims, s);
}

array softmax(const array& a, std::vector<int> axes, StreamOrDevice s) { return softmax_impl(a, axes, false, s); }
array softmax(const array& a, int axis, StreamOrDevice s) { return softmax_impl(a, {axis}, false, s); }
array log_softmax(const array& a, std::vector<int> axes, StreamOrDevice s) { return softmax_impl(a, axes, true, s); }
array log_softmax(const array& a, int axis, StreamOrDevice s) { return softmax_impl(a, {axis}, true, s); }
array softmax(const array& a, StreamOrDevice s) { return softmax_impl(a, {-1}, false, s); }
array log_softmax(const array& a, StreamOrDevice s) { return softmax_impl(a, {-1}, true, s); }

array cumsum(const array& a, int axis, bool reverse, bool inclusive, StreamOrDevice s) {
  return scan(ScanOp::cumsum, a, axis, reverse, inclusive, s);
}
array cumprod(const array& a, int axis, bool reverse, bool inclusive, StreamOrDevice s) {
  return scan(ScanOp::cumprod, a, axis, reverse, inclusive, s);
}
array cummax(const array& a, int axis, bool reverse, bool inclusive, StreamOrDevice s) {
  return scan(ScanOp::cummax, a, axis, reverse, inclusive, s);
}
array cummin(const array& a, int axis, bool reverse, bool inclusive, StreamOrDevice s) {
  return scan(ScanOp::cummin, a, axis, reverse, inclusive, s);
}

}  // namespace kiln
