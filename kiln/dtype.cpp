#include "kiln/dtype.h"

#include <ostream>

#include "kiln/errors.h"

namespace kiln {

namespace {
struct DtypeInfo {
  const char* name;
  size_t size;
  DtypeKind kind;
};
constexpr DtypeInfo kInfo[kNumDtypes] = {
    {"bool", 1, DtypeKind::boolean},      {"uint8", 1, DtypeKind::unsigned_int},
    {"uint16", 2, DtypeKind::unsigned_int}, {"uint32", 4, DtypeKind::unsigned_int},
    {"uint64", 8, DtypeKind::unsigned_int}, {"int8", 1, DtypeKind::signed_int},
    {"int16", 2, DtypeKind::signed_int},  {"int32", 4, DtypeKind::signed_int},
    {"int64", 8, DtypeKind::signed_int},  {"float16", 2, DtypeKind::floating},
    {"bfloat16", 2, DtypeKind::floating}, {"float32", 4, DtypeKind::floating},
    {"float64", 8, DtypeKind::floating},  {"complex64", 8, DtypeKind::complex},
};

Dtype signed_of_size(size_t n) {
  switch (n) {
    case 1: return int8;
    case 2: return int16;
    case 4: return int32;
    default: return int64;
  }
}
}  // namespace

size_t size_of(Dtype t) { return kInfo[static_cast<int>(t)].size; }
DtypeKind kind_of(Dtype t) { return kInfo[static_cast<int>(t)].kind; }
const char* dtype_name(Dtype t) { return kInfo[static_cast<int>(t)].name; }

Dtype dtype_from_name(const std::string& name) {
  for (int i = 0; i < kNumDtypes; ++i) {
    if (name == kInfo[i].name) return static_cast<Dtype>(i);
  }
  throw ValueError("[dtype] unknown dtype '" + name + "'");
}

Dtype promote_types(Dtype a, Dtype b) {
  if (a == b) return a;
  DtypeKind ka = kind_of(a), kb = kind_of(b);
  if (ka == DtypeKind::boolean) return b;
  if (kb == DtypeKind::boolean) return a;
  if (ka == DtypeKind::complex || kb == DtypeKind::complex) return complex64;
  if (ka == DtypeKind::floating && kb == DtypeKind::floating) {
    // float16 and bfloat16 meet in float32; otherwise the wider float wins.
    if ((a == float16 && b == bfloat16) || (a == bfloat16 && b == float16)) return float32;
    return size_of(a) >= size_of(b) ? a : b;
  }
  if (ka == DtypeKind::floating) return a;
  if (kb == DtypeKind::floating) return b;
  if (ka == kb) return size_of(a) >= size_of(b) ? a : b;
  // One signed, one unsigned: the signed type must hold every value of the unsigned one.
  Dtype s = ka == DtypeKind::signed_int ? a : b;
  Dtype u = ka == DtypeKind::signed_int ? b : a;
  if (size_of(s) > size_of(u)) return s;
  if (size_of(u) >= 8) return float64;
  return signed_of_size(size_of(u) * 2);
}

std::ostream& operator<<(std::ostream& os, Dtype t) { return os << dtype_name(t); }

namespace detail {
void unsupported_dtype(const char* op, Dtype t) {
  throw TypeError(std::string("[") + op + "] dtype " + dtype_name(t) + " is not supported");
}
}  // namespace detail

}  // namespace kiln
