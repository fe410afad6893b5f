// Scalar math shared by the CPU and CUDA kernels, so that both backends compute the same function.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kiln/types.h"

namespace kiln::math {

// Inverse error function: Giles' single-precision approximation ("Approximating the erfinv
// function", GPU Computing Gems). The double version evaluates the same polynomial in double
// (so arguments within 2^-25 of +-1 still get a finite start) and refines it by Newton steps.
template <class R>
KILN_HD R erfinv_giles(R x) {
  R w = -std::log((R(1) - x) * (R(1) + x));
  R p;
  if (w < R(5)) {
    w = w - R(2.5);
    p = R(2.81022636e-08);
    p = R(3.43273939e-07) + p * w;
    p = R(-3.5233877e-06) + p * w;
    p = R(-4.39150654e-06) + p * w;
    p = R(0.00021858087) + p * w;
    p = R(-0.00125372503) + p * w;
    p = R(-0.00417768164) + p * w;
    p = R(0.246640727) + p * w;
    p = R(1.50140941) + p * w;
  } else {
    w = std::sqrt(w) - R(3);
    p = R(-0.000200214257);
    p = R(0.000100950558) + p * w;
    p = R(0.00134934322) + p * w;
    p = R(-0.00367342844) + p * w;
    p = R(0.00573950773) + p * w;
    p = R(-0.0076224613) + p * w;
    p = R(0.00943887047) + p * w;
    p = R(1.00167406) + p * w;
    p = R(2.83297682) + p * w;
  }
  return p * x;
}

KILN_HD float erfinv(float x) {
  if (x == 1.0f) return std::numeric_limits<float>::infinity();
  if (x == -1.0f) return -std::numeric_limits<float>::infinity();
  return erfinv_giles<float>(x);
}

KILN_HD double erfinv(double x) {
  if (x <= -1.0 || x >= 1.0) {
    if (x == 1.0) return std::numeric_limits<double>::infinity();
    if (x == -1.0) return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  double y = erfinv_giles<double>(x);
  // Newton on erf(y) = x, with erf' = 2/sqrt(pi) exp(-y^2). In the tails erf(y) is too close to
  // 1 to resolve x, so there solve erfc(|y|) = 1 - |x| instead (1 - |x| is exact there).
  // The tail is solved in log space, log erfc(|y|) = log(1 - |x|), which Newton handles well.
  double ax = std::fabs(x), ay = std::fabs(y);
  double tail = 1.0 - ax;
  for (int i = 0; i < 4; ++i) {
    double d = 1.1283791670955126 * std::exp(-ay * ay);
    if (d == 0.0) break;
    if (ax > 0.5) {
      double c = std::erfc(ay);
      ay += (std::log(c) - std::log(tail)) * c / d;
    } else {
      ay -= (std::erf(ay) - ax) / d;
    }
  }
  return x < 0 ? -ay : ay;
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
