// Dtypes: properties, names, promotion (checked against an independent statement of NumPy's
// rules plus kiln's documented differences) and the float16/bfloat16 conversions (checked against
// a reference round-to-nearest-even written here with double arithmetic).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <sstream>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

// ---- promotion: NumPy's lattice, stated independently of kiln's implementation ----

// The types NumPy knows, plus bfloat16 and the complex128 that NumPy would pick for some pairs.
enum class P { b, u8, u16, u32, u64, i8, i16, i32, i64, f16, bf16, f32, f64, c64, c128 };

P from_dtype(Dtype d) { return static_cast<P>(static_cast<int>(d)); }  // same order up to complex64

bool is_u(P t) { return t >= P::u8 && t <= P::u64; }
bool is_i(P t) { return t >= P::i8 && t <= P::i64; }
bool is_f(P t) { return t >= P::f16 && t <= P::f64; }
bool is_c(P t) { return t == P::c64 || t == P::c128; }
int bytes(P t) {
  switch (t) {
    case P::b: case P::u8: case P::i8: return 1;
    case P::u16: case P::i16: case P::f16: case P::bf16: return 2;
    case P::u32: case P::i32: case P::f32: return 4;
    case P::c128: return 16;
    default: return 8;
  }
}

// NumPy's "safe" casting: no value of `from` is lost (with NumPy's one liberty, 64-bit integers
// to float64). An integer of k bytes fits a float of at least 2k bytes (capped at float64); the
// two 16-bit floats cast only upwards to float32 and beyond, never to each other; a complex type
// takes whatever its component float takes.
bool safe(P from, P to) {
  if (from == to || from == P::b) return true;
  if (to == P::b) return false;
  auto float_of = [](P c) { return c == P::c64 ? P::f32 : P::f64; };
  if (is_c(to) && !is_c(from)) return safe(from, float_of(to));
  if (is_u(from)) {
    if (is_u(to)) return bytes(to) >= bytes(from);
    if (is_i(to)) return bytes(to) > bytes(from);
    if (to == P::bf16) return false;  // not a NumPy type; ints reach it only by kiln's int+float rule
    if (is_f(to)) return bytes(to) >= std::min(2 * bytes(from), 8);
    return false;
  }
  if (is_i(from)) {
    if (is_i(to)) return bytes(to) >= bytes(from);
    if (to == P::bf16) return false;
    if (is_f(to)) return bytes(to) >= std::min(2 * bytes(from), 8);
    return false;
  }
  if (is_f(from)) {
    if (is_f(to)) return bytes(to) > bytes(from) || (from == P::f64 && to == P::f64);
    if (is_c(to)) return from == P::f64 ? to == P::c128 : true;
    return false;
  }
  return from == P::c64 && to == P::c128;
}

Dtype expected_promotion(Dtype a, Dtype b) {
  P pa = from_dtype(a), pb = from_dtype(b);
  // kiln's documented difference: an integer meeting a float gives that float.
  if ((is_u(pa) || is_i(pa)) && is_f(pb)) return b;
  if ((is_u(pb) || is_i(pb)) && is_f(pa)) return a;
  // Otherwise NumPy: the smallest type (in NumPy's order) both cast to safely.
  const P order[] = {P::b,   P::u8,  P::i8,  P::u16, P::i16, P::u32, P::i32, P::u64,
                     P::i64, P::f16, P::bf16, P::f32, P::f64, P::c64, P::c128};
  for (P t : order) {
    if (safe(pa, t) && safe(pb, t)) return t == P::c128 ? complex64 : static_cast<Dtype>(static_cast<int>(t));
  }
  ADD_FAILURE() << "no common type for " << a << " and " << b;
  return float64;
}

// ---- 16-bit floats: reference rounding with double arithmetic ----

// Rounds x to a binary format with `mant` stored significand bits, minimum normal exponent `emin`
// and largest finite value `maxv`, to nearest with ties to even; overflow gives infinity.
double round_format(double x, int mant, int emin, double maxv) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  double a = std::fabs(x);
  int e = std::max(std::ilogb(a), emin);
  double ulp = std::ldexp(1.0, e - mant);
  double r = std::nearbyint(a / ulp) * ulp;  // a / ulp is exact; nearbyint rounds half to even
  if (r > maxv) r = INFINITY;
  return std::copysign(r, x);
}
double ref_half(double x) { return round_format(x, 10, -14, 65504.0); }
double ref_bf16(double x) { return round_format(x, 7, -126, std::ldexp(255.0, 120)); }

// Decodes bit patterns with ldexp.
double decode(uint16_t bits, int mant, int ebits) {
  int bias = (1 << (ebits - 1)) - 1;
  int sign = bits >> 15;
  int e = (bits >> mant) & ((1 << ebits) - 1);
  int m = bits & ((1 << mant) - 1);
  double v;
  if (e == (1 << ebits) - 1) {
    v = m ? NAN : INFINITY;
  } else if (e == 0) {
    v = std::ldexp(m, 1 - bias - mant);
  } else {
    v = std::ldexp(m + (1 << mant), e - bias - mant);
  }
  return sign ? -v : v;
}

// Same value (NaN matches NaN, zeros must agree in sign).
bool same(double got, double want) {
  if (std::isnan(want)) return std::isnan(got);
  return got == want && std::signbit(got) == std::signbit(want);
}

template <class H>
void check_from_float(float f, double want, const char* what) {
  double got = static_cast<float>(H(f));
  EXPECT_TRUE(same(got, want)) << what << ": " << std::hexfloat << f << " gave " << got << ", want " << want;
}

// Floats to test a 16-bit format on: every representable value, the midpoints between
// neighbours and one float ulp either side of them, across the whole range.
std::vector<float> boundary_floats(double (*decode16)(uint16_t)) {
  std::vector<float> out;
  for (uint32_t b = 0; b < 0x10000; ++b) {
    double v = decode16(static_cast<uint16_t>(b));
    double next = decode16(static_cast<uint16_t>(b + 1));
    if (std::isnan(v)) continue;
    out.push_back(static_cast<float>(v));
    if ((b & 0x7fff) < 0x7fff && !std::isnan(next) && !std::isinf(v) && std::signbit(v) == std::signbit(next)) {
      float mid = static_cast<float>((v + next) / 2);  // exact: 16-bit floats have few bits
      out.push_back(mid);
      out.push_back(std::nextafter(mid, INFINITY));
      out.push_back(std::nextafter(mid, -INFINITY));
    }
  }
  return out;
}

}  // namespace

TEST(Dtype, Properties) {
  for (Dtype d : test::all_dtypes()) {
    std::string name = dtype_name(d);
    EXPECT_EQ(dtype_from_name(name), d);
    std::ostringstream os;
    os << d;
    EXPECT_EQ(os.str(), name);
    EXPECT_EQ(is_integer(d), kind_of(d) == DtypeKind::signed_int || kind_of(d) == DtypeKind::unsigned_int) << d;
    EXPECT_EQ(is_inexact(d), is_floating(d) || is_complex(d)) << d;
  }
  EXPECT_EQ(size_of(bool_), sizeof(bool));
  EXPECT_EQ(size_of(uint8), 1u);
  EXPECT_EQ(size_of(int16), 2u);
  EXPECT_EQ(size_of(uint32), 4u);
  EXPECT_EQ(size_of(int64), 8u);
  EXPECT_EQ(size_of(float16), sizeof(float16_t));
  EXPECT_EQ(size_of(bfloat16), sizeof(bfloat16_t));
  EXPECT_EQ(size_of(float32), sizeof(float));
  EXPECT_EQ(size_of(float64), sizeof(double));
  EXPECT_EQ(size_of(complex64), sizeof(complex64_t));
  EXPECT_TRUE(is_unsigned(uint16));
  EXPECT_FALSE(is_unsigned(int16));
  EXPECT_FALSE(is_integer(bool_));
  EXPECT_TRUE(is_complex(complex64));
  EXPECT_TRUE(is_floating(bfloat16));
  KILN_EXPECT_THROW_MSG(dtype_from_name("float128"), ValueError, "[dtype]");
  KILN_EXPECT_THROW_MSG(dtype_from_name("float128"), ValueError, "float128");
}

TEST(Dtype, PromotionAllPairs) {
  for (Dtype a : test::all_dtypes()) {
    for (Dtype b : test::all_dtypes()) {
      EXPECT_EQ(promote_types(a, b), expected_promotion(a, b)) << a << " with " << b;
      EXPECT_EQ(promote_types(a, b), promote_types(b, a)) << a << " with " << b;
    }
  }
}

TEST(Dtype, PromotionDocumentedDifferences) {
  // Integers meeting a float give that float (NumPy would widen).
  for (Dtype i : test::int_dtypes()) {
    for (Dtype f : test::float_dtypes()) EXPECT_EQ(promote_types(i, f), f) << i << " with " << f;
  }
  EXPECT_EQ(promote_types(float16, bfloat16), float32);
  // NumPy's own rules where they apply.
  EXPECT_EQ(promote_types(uint8, int8), int16);
  EXPECT_EQ(promote_types(uint64, int64), float64);
  EXPECT_EQ(promote_types(uint32, int32), int64);
  EXPECT_EQ(promote_types(bool_, bfloat16), bfloat16);
}

TEST(Dtype, Float16ToFloatExhaustive) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    double want = decode(static_cast<uint16_t>(b), 10, 5);
    double got = float16_t::to_float(static_cast<uint16_t>(b));
    ASSERT_TRUE(same(got, want)) << std::hex << b;
  }
}

TEST(Dtype, Bfloat16ToFloatExhaustive) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    double want = decode(static_cast<uint16_t>(b), 7, 8);
    double got = static_cast<float>(bfloat16_t::from_bits(static_cast<uint16_t>(b)));
    ASSERT_TRUE(same(got, want)) << std::hex << b;
  }
}

TEST(Dtype, Float16FromFloat) {
  auto dec = [](uint16_t b) { return decode(b, 10, 5); };
  for (float f : boundary_floats(dec)) check_from_float<float16_t>(f, ref_half(f), "float16");
  // Random bit patterns over the whole float range, and a dense sweep of the subnormal range.
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    float f = std::bit_cast<float>(bits(test::rng()));
    check_from_float<float16_t>(f, ref_half(f), "float16 random");
  }
  for (auto v : test::uniform_values(20000, -1.0 / 16384, 1.0 / 16384)) {
    float f = static_cast<float>(v);
    check_from_float<float16_t>(f, ref_half(f), "float16 subnormal");
  }
  // Overflow, infinities and NaN.
  for (float f : {65504.f, 65519.f, 65520.f, 65536.f, 1e10f, -65520.f, INFINITY, -INFINITY, 3.4e38f}) {
    check_from_float<float16_t>(f, ref_half(f), "float16 overflow");
  }
  EXPECT_TRUE(std::isnan(static_cast<float>(float16_t(NAN))));
  EXPECT_TRUE(std::isnan(static_cast<float>(float16_t(-NAN))));
  EXPECT_TRUE(std::isnan(static_cast<float>(float16_t(std::numeric_limits<float>::signaling_NaN()))));
}

TEST(Dtype, Bfloat16FromFloat) {
  auto dec = [](uint16_t b) { return decode(b, 7, 8); };
  for (float f : boundary_floats(dec)) check_from_float<bfloat16_t>(f, ref_bf16(f), "bfloat16");
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    float f = std::bit_cast<float>(bits(test::rng()));
    check_from_float<bfloat16_t>(f, ref_bf16(f), "bfloat16 random");
  }
  float big = std::numeric_limits<float>::max();
  for (float f : {big, -big, INFINITY, -INFINITY, std::numeric_limits<float>::denorm_min(), 1e-40f}) {
    check_from_float<bfloat16_t>(f, ref_bf16(f), "bfloat16 edge");
  }
  EXPECT_TRUE(std::isnan(static_cast<float>(bfloat16_t(NAN))));
  EXPECT_TRUE(std::isnan(static_cast<float>(bfloat16_t(std::numeric_limits<float>::signaling_NaN()))));
}

// A double converts with a single rounding, not through float (which could round twice).
TEST(Dtype, SixteenBitFromDoubleRoundsOnce) {
  std::vector<double> xs;
  // Just above a float16 midpoint, by less than a float ulp: rounding through float lands on the
  // midpoint and then ties to even, the wrong way.
  xs.push_back(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40));
  xs.push_back(-(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)));
  xs.push_back(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40));  // the same for bfloat16
  xs.push_back(std::ldexp(1.0, -25) + std::ldexp(1.0, -60));       // just above half the least subnormal
  for (double v : test::uniform_values(50000, -70000, 70000)) xs.push_back(v);
  for (double v : test::uniform_values(20000, -1e-4, 1e-4)) xs.push_back(v);
  for (double v : xs) {
    EXPECT_TRUE(same(static_cast<float>(convert<float16_t>(v)), ref_half(v))) << std::hexfloat << v;
    EXPECT_TRUE(same(static_cast<float>(float16_t(v)), ref_half(v))) << std::hexfloat << v;
    EXPECT_TRUE(same(static_cast<float>(convert<bfloat16_t>(v)), ref_bf16(v))) << std::hexfloat << v;
  }
  // 32-bit integers beyond float's 24 bits round once into bfloat16 too.
  for (double v : test::int_values(20000, -(int64_t(1) << 31), (int64_t(1) << 31) - 1)) {
    int32_t i = static_cast<int32_t>(v);
    EXPECT_TRUE(same(static_cast<float>(convert<bfloat16_t>(i)), ref_bf16(v))) << i;
  }
  int32_t trap = (1 << 24) + (1 << 16) + 1;  // float rounds it onto a bfloat16 midpoint
  EXPECT_TRUE(same(static_cast<float>(convert<bfloat16_t>(trap)), ref_bf16(trap)));
}

// convert<> between element types: truncation toward zero, NaN to 0, bool as "nonzero".
TEST(Dtype, ConvertScalars) {
  for (double v : test::uniform_values(1000, -120, 120)) {
    EXPECT_EQ(convert<int32_t>(v), static_cast<int32_t>(std::trunc(v)));
    EXPECT_EQ(convert<int8_t>(static_cast<float>(v)), static_cast<int8_t>(std::trunc(static_cast<float>(v))));
    EXPECT_EQ(convert<int64_t>(float16_t(v)), static_cast<int64_t>(std::trunc(ref_half(v))));
    EXPECT_EQ(convert<bool>(v), v != 0);
    EXPECT_EQ(convert<uint8_t>(std::fabs(v)), static_cast<uint8_t>(std::trunc(std::fabs(v))));
  }
  EXPECT_EQ(convert<int32_t>(NAN), 0);
  EXPECT_EQ(convert<uint64_t>(-NAN), 0u);
  EXPECT_EQ(convert<int16_t>(float16_t(NAN)), 0);
  EXPECT_EQ(convert<int16_t>(bfloat16_t(NAN)), 0);
  EXPECT_TRUE(convert<bool>(NAN));  // NaN is nonzero, as in NumPy
  EXPECT_FALSE(convert<bool>(-0.0));
  complex64_t z(0.f, 2.f);
  EXPECT_TRUE(convert<bool>(z));
  EXPECT_EQ(convert<float>(complex64_t(1.5f, 3.f)), 1.5f);
  complex64_t w = convert<complex64_t>(int64_t(7));
  EXPECT_EQ(w.re, 7.f);
  EXPECT_EQ(w.im, 0.f);
}
