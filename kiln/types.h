// Element types shared by host and device code: float16, bfloat16 and complex64.
// The same structs are used in CPU and CUDA kernels so that both backends see one type system.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define KILN_HD __host__ __device__ __forceinline__
#else
#define KILN_HD inline
#endif

namespace kiln {

KILN_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

KILN_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// double -> float rounding to odd: an inexact result gets its last bit set, which keeps the
// information a later rounding to a narrower format needs. A double then rounds correctly
// (once, to nearest even) into float16/bfloat16 through float, as float has more than two extra
// significand bits; a plain cast to float could land on a midpoint and round twice.
KILN_HD float float_round_odd(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) != d && f == f) {
    uint32_t u = float_bits(f);
    if ((u & 1u) == 0) {  // the even neighbour: step to the odd one on d's side
      u = std::fabs(static_cast<double>(f)) > std::fabs(d) ? u - 1 : u + 1;
      f = bits_float(u);
    }
  }
  return f;
}

// IEEE binary16. Conversions round to nearest even.
struct float16_t {
  uint16_t bits = 0;

  float16_t() = default;
  KILN_HD float16_t(float f) : bits(from_float(f)) {}
  KILN_HD float16_t(double d) : bits(from_float(float_round_odd(d))) {}
  KILN_HD float16_t(int i) : float16_t(static_cast<double>(i)) {}
  KILN_HD operator float() const { return to_float(bits); }

  static KILN_HD float16_t from_bits(uint16_t b) {
    float16_t h;
    h.bits = b;
    return h;
  }

  static KILN_HD uint16_t from_float(float f) {
#if defined(__CUDA_ARCH__)
    return __half_as_ushort(__float2half_rn(f));
#else
    uint32_t x = float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) {  // inf or nan
      return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    }
    if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
    if (absx < 0x38800000u) {  // subnormal half (or zero)
      // Scale into the subnormal range with float arithmetic, which rounds to nearest even.
      float a = bits_float(absx) + 0.5f;  // 0.5 = 2^-1 places the half subnormal ulp (2^-24) at bit 0
      return static_cast<uint16_t>(sign | (float_bits(a) - 0x3f000000u));
    }
    uint32_t mant_odd = (absx >> 13) & 1u;
    absx += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round
    return static_cast<uint16_t>(sign | (absx >> 13));
#endif
  }

  static KILN_HD float to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h));
#else
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      float m = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
      return sign ? -m : m;
    }
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
#endif
  }
};

// bfloat16: the upper half of a float32. Conversions round to nearest even.
struct bfloat16_t {
  uint16_t bits = 0;

  bfloat16_t() = default;
  KILN_HD bfloat16_t(float f) : bits(from_float(f)) {}
  KILN_HD bfloat16_t(double d) : bits(from_float(float_round_odd(d))) {}
  KILN_HD bfloat16_t(int i) : bfloat16_t(static_cast<double>(i)) {}
  KILN_HD operator float() const { return bits_float(static_cast<uint32_t>(bits) << 16); }

  static KILN_HD bfloat16_t from_bits(uint16_t b) {
    bfloat16_t h;
    h.bits = b;
    return h;
  }

  static KILN_HD uint16_t from_float(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
  }
};

struct complex64_t {
  float re = 0.f;
  float im = 0.f;

  complex64_t() = default;
  KILN_HD complex64_t(float r, float i) : re(r), im(i) {}
  KILN_HD complex64_t(float r) : re(r), im(0.f) {}
  KILN_HD complex64_t(double r) : re(static_cast<float>(r)), im(0.f) {}
  KILN_HD complex64_t(int r) : re(static_cast<float>(r)), im(0.f) {}
  KILN_HD explicit operator float() const { return re; }
  KILN_HD explicit operator double() const { return re; }
  KILN_HD explicit operator bool() const { return re != 0.f || im != 0.f; }
};

KILN_HD complex64_t operator+(complex64_t a, complex64_t b) { return {a.re + b.re, a.im + b.im}; }
KILN_HD complex64_t operator-(complex64_t a, complex64_t b) { return {a.re - b.re, a.im - b.im}; }
KILN_HD complex64_t operator-(complex64_t a) { return {-a.re, -a.im}; }
KILN_HD complex64_t operator*(complex64_t a, complex64_t b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
KILN_HD complex64_t operator/(complex64_t a, complex64_t b) {
  float d = b.re * b.re + b.im * b.im;
  return {(a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d};
}
KILN_HD bool operator==(complex64_t a, complex64_t b) { return a.re == b.re && a.im == b.im; }
KILN_HD bool operator!=(complex64_t a, complex64_t b) { return !(a == b); }
KILN_HD complex64_t& operator+=(complex64_t& a, complex64_t b) { return a = a + b; }
KILN_HD complex64_t& operator*=(complex64_t& a, complex64_t b) { return a = a * b; }

// Complex values order lexicographically (real, then imaginary), as NumPy does.
KILN_HD bool operator<(complex64_t a, complex64_t b) { return a.re < b.re || (a.re == b.re && a.im < b.im); }
KILN_HD bool operator>(complex64_t a, complex64_t b) { return b < a; }
KILN_HD bool operator<=(complex64_t a, complex64_t b) { return !(b < a); }
KILN_HD bool operator>=(complex64_t a, complex64_t b) { return !(a < b); }

// Arithmetic on the 16-bit floats happens in float32.
template <class T>
struct acc_type {
  using type = T;
};
template <>
struct acc_type<float16_t> {
  using type = float;
};
template <>
struct acc_type<bfloat16_t> {
  using type = float;
};
template <class T>
using acc_t = typename acc_type<T>::type;

// Conversion between any two element types, including complex and the 16-bit floats.
template <class To, class From>
KILN_HD To convert(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (std::is_same_v<To, complex64_t>) {
    if constexpr (std::is_same_v<From, float16_t> || std::is_same_v<From, bfloat16_t>) {
      return complex64_t(static_cast<float>(x), 0.f);
    } else {
      return complex64_t(static_cast<float>(x), 0.f);
    }
  } else if constexpr (std::is_same_v<From, complex64_t>) {
    if constexpr (std::is_same_v<To, bool>) {
      return x.re != 0.f || x.im != 0.f;
    } else {
      return convert<To>(x.re);
    }
  } else if constexpr (std::is_same_v<To, float16_t> || std::is_same_v<To, bfloat16_t>) {
    if constexpr (std::is_same_v<From, double> || (std::is_integral_v<From> && sizeof(From) >= 4)) {
      return To(static_cast<double>(x));  // one rounding (see float_round_odd)
    } else {
      return To(static_cast<float>(x));
    }
  } else if constexpr (std::is_same_v<From, float16_t> || std::is_same_v<From, bfloat16_t>) {
    return convert<To>(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // NaN and out-of-range values have no defined integer; map NaN to 0 rather than invoke UB.
    return x != x ? To(0) : static_cast<To>(x);
  } else {
    return static_cast<To>(x);
  }
}

}  // namespace kiln
