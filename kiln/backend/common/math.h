// Scalar math shared by the CPU and CUDA kernels, so that both backends compute the same function.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kiln/types.h"

namespace kiln::math {

// Inverse error function: Giles' single-precision approximation ("Approximating the erfinv
// function", GPU Computing Gems), refined by Newton steps in double precision.
KILN_HD float erfinv(float x) {
  float w = -std::log((1.0f - x) * (1.0f + x));
  float p;
  if (w < 5.0f) {
    w = w - 2.5f;
    p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * w;
    p = -3.5233877e-06f + p * w;
    p = -4.39150654e-06f + p * w;
    p = 0.00021858087f + p * w;
    p = -0.00125372503f + p * w;
    p = -0.00417768164f + p * w;
    p = 0.246640727f + p * w;
    p = 1.50140941f + p * w;
  } else {
    w = std::sqrt(w) - 3.0f;
    p = -0.000200214257f;
    p = 0.000100950558f + p * w;
    p = 0.00134934322f + p * w;
    p = -0.00367342844f + p * w;
    p = 0.00573950773f + p * w;
    p = -0.0076224613f + p * w;
    p = 0.00943887047f + p * w;
    p = 1.00167406f + p * w;
    p = 2.83297682f + p * w;
  }
  if (x == 1.0f) return std::numeric_limits<float>::infinity();
  if (x == -1.0f) return -std::numeric_limits<float>::infinity();
  return p * x;
}

KILN_HD double erfinv(double x) {
  if (x <= -1.0 || x >= 1.0) {
    if (x == 1.0) return std::numeric_limits<double>::infinity();
    if (x == -1.0) return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  double y = erfinv(static_cast<float>(x));
  // Newton: f(y) = erf(y) - x, f'(y) = 2/sqrt(pi) exp(-y^2).
  for (int i = 0; i < 2; ++i) {
    double err = std::erf(y) - x;
    y -= err / (1.1283791670955126 * std::exp(-y * y));
  }
  return y;
}

template <class T>
KILN_HD bool isnan(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return x != x;
  } else if constexpr (std::is_same_v<T, complex64_t>) {
    return x.re != x.re || x.im != x.im;
  } else {
    return false;
  }
}

template <class T>
KILN_HD bool isinf(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isinf(x);
  } else if constexpr (std::is_same_v<T, complex64_t>) {
    return std::isinf(x.re) || std::isinf(x.im);
  } else {
    return false;
  }
}

KILN_HD float abs(complex64_t z) { return std::hypot(z.re, z.im); }
KILN_HD complex64_t exp(complex64_t z) {
  float e = std::exp(z.re);
  return {e * std::cos(z.im), e * std::sin(z.im)};
}
KILN_HD complex64_t log(complex64_t z) { return {std::log(abs(z)), std::atan2(z.im, z.re)}; }
KILN_HD complex64_t sqrt(complex64_t z) {
  // Principal root, computed without cancellation.
  float r = abs(z);
  float a = std::sqrt(0.5f * (r + std::fabs(z.re)));
  if (a == 0.f) return {0.f, 0.f};
  float b = z.im / (2.f * a);
  if (z.re >= 0.f) return {a, b};
  return {std::fabs(b), z.im >= 0.f ? a : -a};
}

}  // namespace kiln::math
