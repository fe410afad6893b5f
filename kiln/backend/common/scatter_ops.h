// How scatter combines an update into an element, shared by the CPU and CUDA kernels so that both
// compute the same function. Arithmetic happens in the compute type (float for the 16-bit
// floats); on bool, add is logical or and prod logical and; max and min propagate NaN.
#pragma once

#include "kiln/backend/common/binary_ops.h"
#include "kiln/ops_index.h"

namespace kiln::ops {

template <ScatterMode M, class T>
KILN_HD T scatter_combine(T old, T upd) {
  using C = acc_t<T>;
  C x = static_cast<C>(old), y = static_cast<C>(upd);
  if constexpr (M == ScatterMode::set) {
    return upd;
  } else if constexpr (M == ScatterMode::add) {
    return convert<T>(add_(x, y));
  } else if constexpr (M == ScatterMode::prod) {
    return convert<T>(mul_(x, y));
  } else if constexpr (M == ScatterMode::max) {
    return convert<T>(max_(x, y));
  } else {
    return convert<T>(min_(x, y));
  }
}

// Calls f(std::integral_constant<ScatterMode, mode>{}) so kernels can take the mode as a
// compile-time constant.
template <class F>
void visit_scatter_mode(ScatterMode mode, F&& f) {
  switch (mode) {
    case ScatterMode::set: f(std::integral_constant<ScatterMode, ScatterMode::set>{}); break;
    case ScatterMode::add: f(std::integral_constant<ScatterMode, ScatterMode::add>{}); break;
    case ScatterMode::max: f(std::integral_constant<ScatterMode, ScatterMode::max>{}); break;
    case ScatterMode::min: f(std::integral_constant<ScatterMode, ScatterMode::min>{}); break;
    case ScatterMode::prod: f(std::integral_constant<ScatterMode, ScatterMode::prod>{}); break;
  }
}

}  // namespace kiln::ops
