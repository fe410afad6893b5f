// Element types of arrays, their properties and NumPy-style type promotion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "kiln/types.h"

namespace kiln {

enum class Dtype : uint8_t {
  bool_,
  uint8,
  uint16,
  uint32,
  uint64,
  int8,
  int16,
  int32,
  int64,
  float16,
  bfloat16,
  float32,
  float64,
  complex64,
};
inline constexpr int kNumDtypes = 14;

inline constexpr Dtype bool_ = Dtype::bool_;
inline constexpr Dtype uint8 = Dtype::uint8;
inline constexpr Dtype uint16 = Dtype::uint16;
inline constexpr Dtype uint32 = Dtype::uint32;
inline constexpr Dtype uint64 = Dtype::uint64;
inline constexpr Dtype int8 = Dtype::int8;
inline constexpr Dtype int16 = Dtype::int16;
inline constexpr Dtype int32 = Dtype::int32;
inline constexpr Dtype int64 = Dtype::int64;
inline constexpr Dtype float16 = Dtype::float16;
inline constexpr Dtype bfloat16 = Dtype::bfloat16;
inline constexpr Dtype float32 = Dtype::float32;
inline constexpr Dtype float64 = Dtype::float64;
inline constexpr Dtype complex64 = Dtype::complex64;

enum class DtypeKind { boolean, unsigned_int, signed_int, floating, complex };

size_t size_of(Dtype t);
DtypeKind kind_of(Dtype t);
const char* dtype_name(Dtype t);
Dtype dtype_from_name(const std::string& name);  // throws on unknown names

inline bool is_floating(Dtype t) { return kind_of(t) == DtypeKind::floating; }
inline bool is_complex(Dtype t) { return t == Dtype::complex64; }
inline bool is_inexact(Dtype t) { return is_floating(t) || is_complex(t); }
inline bool is_integer(Dtype t) {
  auto k = kind_of(t);
  return k == DtypeKind::unsigned_int || k == DtypeKind::signed_int;
}
inline bool is_unsigned(Dtype t) { return kind_of(t) == DtypeKind::unsigned_int; }

// The smallest type both a and b convert to without losing range (NumPy's rules), except that an
// integer meeting a float gives that float (as MLX and PyTorch do: int32 + float16 -> float16).
Dtype promote_types(Dtype a, Dtype b);

std::ostream& operator<<(std::ostream& os, Dtype t);

template <class T>
struct dtype_of;
#define KILN_DTYPE_OF(T, D)                   \
  template <>                                 \
  struct dtype_of<T> {                        \
    static constexpr Dtype value = Dtype::D;  \
  };
KILN_DTYPE_OF(bool, bool_)
KILN_DTYPE_OF(uint8_t, uint8)
KILN_DTYPE_OF(uint16_t, uint16)
KILN_DTYPE_OF(uint32_t, uint32)
KILN_DTYPE_OF(uint64_t, uint64)
KILN_DTYPE_OF(int8_t, int8)
KILN_DTYPE_OF(int16_t, int16)
KILN_DTYPE_OF(int32_t, int32)
KILN_DTYPE_OF(int64_t, int64)
KILN_DTYPE_OF(float16_t, float16)
KILN_DTYPE_OF(bfloat16_t, bfloat16)
KILN_DTYPE_OF(float, float32)
KILN_DTYPE_OF(double, float64)
KILN_DTYPE_OF(complex64_t, complex64)
#undef KILN_DTYPE_OF

// Runs `body` with `T` bound to the C++ type of `dtype`. Kernels choose deliberately which
// families they instantiate; each macro names the set it covers.
#define KILN_TYPE_CASE(D, CT, ...) \
  case ::kiln::Dtype::D: {         \
    using T = CT;                  \
    __VA_ARGS__;                   \
    break;                         \
  }

#define KILN_CASES_INT(...)                    \
  KILN_TYPE_CASE(uint8, uint8_t, __VA_ARGS__)   \
  KILN_TYPE_CASE(uint16, uint16_t, __VA_ARGS__) \
  KILN_TYPE_CASE(uint32, uint32_t, __VA_ARGS__) \
  KILN_TYPE_CASE(uint64, uint64_t, __VA_ARGS__) \
  KILN_TYPE_CASE(int8, int8_t, __VA_ARGS__)     \
  KILN_TYPE_CASE(int16, int16_t, __VA_ARGS__)   \
  KILN_TYPE_CASE(int32, int32_t, __VA_ARGS__)   \
  KILN_TYPE_CASE(int64, int64_t, __VA_ARGS__)

#define KILN_CASES_FLOAT(...)                        \
  KILN_TYPE_CASE(float16, ::kiln::float16_t, __VA_ARGS__)   \
  KILN_TYPE_CASE(bfloat16, ::kiln::bfloat16_t, __VA_ARGS__) \
  KILN_TYPE_CASE(float32, float, __VA_ARGS__)               \
  KILN_TYPE_CASE(float64, double, __VA_ARGS__)

#define KILN_DISPATCH_FAIL(op, dtype) \
  default:                            \
    ::kiln::detail::unsupported_dtype(op, dtype);

#define KILN_DISPATCH_ALL(op, dtype, ...)                               \
  switch (dtype) {                                                      \
    KILN_TYPE_CASE(bool_, bool, __VA_ARGS__)                            \
    KILN_CASES_INT(__VA_ARGS__)                                         \
    KILN_CASES_FLOAT(__VA_ARGS__)                                       \
    KILN_TYPE_CASE(complex64, ::kiln::complex64_t, __VA_ARGS__)         \
    KILN_DISPATCH_FAIL(op, dtype)                                       \
  }

#define KILN_DISPATCH_REAL(op, dtype, ...) \
  switch (dtype) {                         \
    KILN_TYPE_CASE(bool_, bool, __VA_ARGS__) \
    KILN_CASES_INT(__VA_ARGS__)            \
    KILN_CASES_FLOAT(__VA_ARGS__)          \
    KILN_DISPATCH_FAIL(op, dtype)          \
  }

#define KILN_DISPATCH_INTEGRAL(op, dtype, ...) \
  switch (dtype) {                             \
    KILN_TYPE_CASE(bool_, bool, __VA_ARGS__)   \
    KILN_CASES_INT(__VA_ARGS__)                \
    KILN_DISPATCH_FAIL(op, dtype)              \
  }

#define KILN_DISPATCH_FLOAT(op, dtype, ...) \
  switch (dtype) {                          \
    KILN_CASES_FLOAT(__VA_ARGS__)           \
    KILN_DISPATCH_FAIL(op, dtype)           \
  }

#define KILN_DISPATCH_INEXACT(op, dtype, ...)                     \
  switch (dtype) {                                                \
    KILN_CASES_FLOAT(__VA_ARGS__)                                 \
    KILN_TYPE_CASE(complex64, ::kiln::complex64_t, __VA_ARGS__)   \
    KILN_DISPATCH_FAIL(op, dtype)                                 \
  }

namespace detail {
[[noreturn]] void unsupported_dtype(const char* op, Dtype t);
}

}  // namespace kiln
