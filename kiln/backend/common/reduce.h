// What the CPU and CUDA reduction and scan kernels share: the accumulating functors (so both
// backends compute the same function) and the layout plan that views a reduction of any axes of
// any strided input as rows, columns or a general gather.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kiln/array.h"
#include "kiln/backend/common/math.h"
#include "kiln/types.h"

namespace kiln::reduce {

// Accumulation (and output) type of sum and prod: small integers and bool widen to 32 bits,
// keeping signedness; the 16-bit floats accumulate in float.
template <class T>
struct sum_acc {
  using type = acc_t<T>;
};
template <>
struct sum_acc<bool> {
  using type = int32_t;
};
template <>
struct sum_acc<int8_t> {
  using type = int32_t;
};
template <>
struct sum_acc<int16_t> {
  using type = int32_t;
};
template <>
struct sum_acc<uint8_t> {
  using type = uint32_t;
};
template <>
struct sum_acc<uint16_t> {
  using type = uint32_t;
};
template <class T>
using sum_acc_t = typename sum_acc<T>::type;

template <class A>
KILN_HD constexpr A lowest_value() {
  if constexpr (std::is_floating_point_v<A>) {
    return -std::numeric_limits<A>::infinity();
  } else {
    return std::numeric_limits<A>::lowest();
  }
}
template <class A>
KILN_HD constexpr A highest_value() {
  if constexpr (std::is_floating_point_v<A>) {
    return std::numeric_limits<A>::infinity();
  } else {
    return std::numeric_limits<A>::max();
  }
}

// Each functor: Acc (the accumulation type), Out (the natural output type), init() (the
// identity), load(x) (an input element as Acc) and op(a, b).
template <class T>
struct Sum {
  using Acc = sum_acc_t<T>;
  using Out = std::conditional_t<std::is_same_v<acc_t<T>, T>, Acc, T>;
  static KILN_HD Acc init() { return Acc(0); }
  static KILN_HD Acc load(T x) { return convert<Acc>(x); }
  KILN_HD Acc operator()(Acc a, Acc b) const { return a + b; }
};

template <class T>
struct Prod {
  using Acc = sum_acc_t<T>;
  using Out = std::conditional_t<std::is_same_v<acc_t<T>, T>, Acc, T>;
  static KILN_HD Acc init() { return Acc(1); }
  static KILN_HD Acc load(T x) { return convert<Acc>(x); }
  KILN_HD Acc operator()(Acc a, Acc b) const { return a * b; }
};

// max and min propagate NaN, as NumPy's do.
template <class T>
struct Max {
  using Acc = acc_t<T>;
  using Out = T;
  static KILN_HD Acc init() { return lowest_value<Acc>(); }
  static KILN_HD Acc load(T x) { return static_cast<Acc>(x); }
  KILN_HD Acc operator()(Acc a, Acc b) const {
    if constexpr (std::is_floating_point_v<Acc>) {
      return (a != a || a > b) ? a : b;  // a NaN on either side wins
    } else {
      return a < b ? b : a;
    }
  }
};

template <class T>
struct Min {
  using Acc = acc_t<T>;
  using Out = T;
  static KILN_HD Acc init() { return highest_value<Acc>(); }
  static KILN_HD Acc load(T x) { return static_cast<Acc>(x); }
  KILN_HD Acc operator()(Acc a, Acc b) const {
    if constexpr (std::is_floating_point_v<Acc>) {
      return (a != a || a < b) ? a : b;
    } else {
      return b < a ? b : a;
    }
  }
};

// all and any read bool inputs (the front end casts others).
struct All {
  using Acc = bool;
  using Out = bool;
  static KILN_HD bool init() { return true; }
  static KILN_HD bool load(bool x) { return x; }
  KILN_HD bool operator()(bool a, bool b) const { return a && b; }
};

struct Any {
  using Acc = bool;
  using Out = bool;
  static KILN_HD bool init() { return false; }
  static KILN_HD bool load(bool x) { return x; }
  KILN_HD bool operator()(bool a, bool b) const { return a || b; }
};

// Whether (v, i) beats the current best (bv, bi) for argmax (IsMax) or argmin: the extreme
// value wins, NaN beats everything, and ties go to the lower index. This is a total order, so
// partial results may be combined in any grouping.
template <bool IsMax, class A>
KILN_HD bool arg_better(A v, uint32_t i, A bv, uint32_t bi) {
  bool vn = math::isnan(v), bn = math::isnan(bv);
  if (vn || bn) return vn && (!bn || i < bi);
  if (IsMax ? bv < v : v < bv) return true;
  return v == bv && i < bi;
}

// ---- layout plan (host) ----

// A reduction seen through the input's strides. Kept axes (merged where the layout allows, in
// output order) give each output's base offset; reduced axes (merged, sorted by decreasing
// |stride| so the innermost loop has the smallest step) give the offsets of the elements that
// fold into it.
//  rows:    the reduced elements of each output are contiguous (one reduced axis, stride 1);
//  columns: the last kept axis has stride 1, so neighbouring outputs read neighbouring elements;
//  general: anything else.
struct ReduceLayout {
  enum Kind { rows, columns, general };
  Kind kind = general;
  Shape kept_shape;
  Strides kept_strides;
  Shape red_shape;
  Strides red_strides;
  int64_t outputs = 1;  // product of kept_shape
  int64_t reduced = 1;  // product of red_shape
};

inline void merge_axes(const std::vector<std::pair<int64_t, int64_t>>& axes, Shape& shape, Strides& strides) {
  shape.clear();
  strides.clear();
  for (auto [n, s] : axes) {
    if (n == 1) continue;
    if (!shape.empty() && strides.back() == s * n) {
      shape.back() *= n;
      strides.back() = s;
    } else {
      shape.push_back(n);
      strides.push_back(s);
    }
  }
}

// `axes` must be sorted and distinct.
inline ReduceLayout reduce_layout(const Shape& shape, const Strides& strides, const std::vector<int>& axes) {
  ReduceLayout l;
  std::vector<std::pair<int64_t, int64_t>> kept, red;
  size_t k = 0;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (k < axes.size() && axes[k] == d) {
      red.emplace_back(shape[d], strides[d]);
      ++k;
    } else {
      kept.emplace_back(shape[d], strides[d]);
    }
  }
  std::stable_sort(red.begin(), red.end(),
                   [](const auto& a, const auto& b) { return std::llabs(a.second) > std::llabs(b.second); });
  merge_axes(kept, l.kept_shape, l.kept_strides);
  merge_axes(red, l.red_shape, l.red_strides);
  if (l.kept_shape.empty()) {
    l.kept_shape = {1};
    l.kept_strides = {0};
  }
  if (l.red_shape.empty()) {
    l.red_shape = {1};
    l.red_strides = {1};
  }
  l.outputs = shape_size(l.kept_shape);
  l.reduced = shape_size(l.red_shape);
  if (l.red_shape.size() == 1 && l.red_strides[0] == 1) {
    l.kind = ReduceLayout::rows;
  } else if (l.kept_strides.back() == 1 && l.kept_shape.back() > 1) {
    l.kind = ReduceLayout::columns;
  } else {
    l.kind = ReduceLayout::general;
  }
  return l;
}

}  // namespace kiln::reduce
