#include "kiln/random.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <numbers>

#include "kiln/backend/common/threefry.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_reduce.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_random.h"

namespace kiln::random {

namespace {

// The global key sequence lives on the host: drawing a key splits the state in two (as split()
// would, bit for bit) without building or evaluating a graph.
struct KeySequence {
  std::mutex mutex;
  uint32_t k0 = 0;
  uint32_t k1 = 0;

  void reset(uint64_t s) {
    k0 = static_cast<uint32_t>(s >> 32);
    k1 = static_cast<uint32_t>(s);
  }
};

KeySequence& sequence() {
  static KeySequence* seq = [] {
    auto* q = new KeySequence();
    q->reset(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    return q;
  }();
  return *seq;
}

array next_key() {
  auto& q = sequence();
  std::lock_guard<std::mutex> lock(q.mutex);
  // split(key, 2): four words, pairs (0, 2) and (1, 3); row 0 becomes the state, row 1 is used.
  auto p0 = random_detail::threefry2x32(q.k0, q.k1, 0, 2);
  auto p1 = random_detail::threefry2x32(q.k0, q.k1, 1, 3);
  q.k0 = p0.a;
  q.k1 = p1.a;
  uint32_t out[2] = {p0.b, p1.b};
  return array(out, Shape{2}, uint32);
}

void check_shape(const Shape& shape, const char* op) {
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("[", op, "] negative dimension in shape ", shape);
  }
}

array get_key(const std::optional<array>& key, const char* op) {
  if (!key) return next_key();
  if (key->dtype() != uint32) fail<TypeError>("[", op, "] a key must be a uint32 array, got ", key->dtype());
  if (key->shape() != Shape{2}) fail<ValueError>("[", op, "] a key must have shape (2,), got ", key->shape());
  return *key;
}

void check_float_dtype(Dtype dtype, const char* op) {
  if (!is_floating(dtype)) fail<TypeError>("[", op, "] dtype must be a floating type, got ", dtype);
}

void check_real(const array& a, const char* what, const char* op) {
  if (is_complex(a.dtype())) fail<TypeError>("[", op, "] ", what, " must be real, got ", a.dtype());
}

// Parameters of shape `param` must broadcast to exactly `shape`.
void check_broadcast(const Shape& param, const Shape& shape, const char* op) {
  if (broadcast_shapes(param, shape, op) != shape) {
    fail<ValueError>("[", op, "] parameters of shape ", param, " do not broadcast to the sample shape ", shape);
  }
}

// float64 outputs are computed in float64, everything else in float32.
Dtype compute_type(Dtype d) { return d == float64 ? float64 : float32; }

array scalar(double v, Dtype d) { return array(v, d); }

array raw_bits(const Shape& shape, int width, const array& key, const char* op, Stream st) {
  Dtype dt;
  switch (width) {
    case 1: dt = uint8; break;
    case 2: dt = uint16; break;
    case 4: dt = uint32; break;
    case 8: dt = uint64; break;
    default: fail<ValueError>("[", op, "] width must be 1, 2, 4 or 8 bytes, got ", width);
  }
  check_shape(shape, op);
  // Counters are 32-bit: one key yields at most 2^32 words.
  int64_t words = (shape_size(shape) * width + 3) / 4;
  if (words > (int64_t{1} << 32)) {
    fail<ValueError>("[", op, "] ", shape_size(shape), " values of ", width,
                     " bytes exceed the 2^32 words one key gives");
  }
  return array(shape, dt, std::make_shared<RandomBits>(width), {key}, st);
}

// Uniform values of compute type c on a grid: [0, 1) in steps of 2^-24 (2^-53 for float64), or,
// when `open`, the midpoints of a grid of half the resolution, which lie in (0, 1) and are
// symmetric about 1/2. Integers below 2^24 (2^53) convert to float exactly, so these are exact.
array unit(const Shape& shape, Dtype c, bool open, const array& key, const char* op, Stream st) {
  bool f64 = c == float64;
  array b = raw_bits(shape, f64 ? 8 : 4, key, op, st);
  array m = right_shift(b, array(f64 ? 11 : 8, b.dtype()), st);  // keep the top 53 (24) bits
  if (open) m = bitwise_or(m, array(1, m.dtype()), st);
  return multiply(astype(m, c, st), scalar(std::ldexp(1.0, f64 ? -53 : -24), c), st);
}

// The largest value of h's floating dtype below each element of h (nextafter toward -inf), from
// its bits: for IEEE floats, stepping the bit pattern as a signed integer moves away from zero
// when negative and toward zero when positive.
array next_below(const array& h, Stream st) {
  Dtype it = h.itemsize() == 2 ? int16 : h.itemsize() == 4 ? int32 : int64;
  array b = view(h, it, st);
  array one = array(1, it);
  // -0 and +0 step to the negative of the smallest subnormal: sign bit and a mantissa of 1.
  array neg_tiny = array((std::numeric_limits<int64_t>::min() >> (64 - 8 * h.itemsize())) + 1, it);
  array down = where(greater(h, scalar(0, h.dtype()), st), subtract(b, one, st),
                     where(less(h, scalar(0, h.dtype()), st), add(b, one, st), neg_tiny, st), st);
  return view(down, h.dtype(), st);
}

// Standard normal values of compute type c.
array standard_normal(const Shape& shape, Dtype c, const array& key, Stream st) {
  if (c == float32) {
    array u = subtract(multiply(unit(shape, c, true, key, "normal", st), scalar(2, c), st), scalar(1, c), st);
    return multiply(erfinv(u, st), scalar(std::sqrt(2.0), c), st);
  }
  // float64: Box-Muller, exact to double rounding with tails to about 8.5 (erfinv's float64 path
  // starts from a float32 guess, which fails for inputs within 2^-25 of +-1).
  Shape two = shape;
  two.insert(two.begin(), 2);
  array u = unit(two, c, true, key, "normal", st);
  array u1 = reshape(slice(u, {0}, {1}, {1}, st), shape, st), u2 = reshape(slice(u, {1}, {2}, {1}, st), shape, st);
  array r = sqrt(multiply(log(u1, st), scalar(-2, c), st), st);
  return multiply(r, cos(multiply(u2, scalar(2 * std::numbers::pi, c), st), st), st);
}

}  // namespace

void seed(uint64_t s) {
  auto& q = sequence();
  std::lock_guard<std::mutex> lock(q.mutex);
  q.reset(s);
}

array key(uint64_t s) {
  uint32_t k[2] = {static_cast<uint32_t>(s >> 32), static_cast<uint32_t>(s)};
  return array(k, Shape{2}, uint32);
}

array split(const array& key, int num, StreamOrDevice s) {
  if (num < 0) fail<ValueError>("[split] num must be non-negative, got ", num);
  return raw_bits({num, 2}, 4, get_key(key, "split"), "split", to_stream(s));
}

array bits(const Shape& shape, int width, const std::optional<array>& key, StreamOrDevice s) {
  return raw_bits(shape, width, get_key(key, "bits"), "bits", to_stream(s));
}

array uniform(const array& low, const array& high, const Shape& shape, Dtype dtype, const std::optional<array>& key,
              StreamOrDevice s) {
  check_float_dtype(dtype, "uniform");
  check_shape(shape, "uniform");
  check_real(low, "low", "uniform");
  check_real(high, "high", "uniform");
  check_broadcast(broadcast_shapes(low.shape(), high.shape(), "uniform"), shape, "uniform");
  array k = get_key(key, "uniform");
  Stream st = to_stream(s);
  Dtype c = compute_type(dtype);
  // Bounds rounded to dtype first, so the clamp below compares representable values.
  array lo_d = astype(low, dtype, st), hi_d = astype(high, dtype, st);
  array lo = astype(lo_d, c, st), hi = astype(hi_d, c, st);
  array u = unit(shape, c, false, k, "uniform", st);
  array v = astype(add(lo, multiply(subtract(hi, lo, st), u, st), st), dtype, st);
  return minimum(v, next_below(hi_d, st), st);
}

array uniform(double low, double high, const Shape& shape, Dtype dtype, const std::optional<array>& key,
              StreamOrDevice s) {
  check_float_dtype(dtype, "uniform");
  if (!(low < high) || !std::isfinite(low) || !std::isfinite(high)) {
    fail<ValueError>("[uniform] low and high must be finite with low < high, got low = ", low, " and high = ", high);
  }
  double lo_d = array(low, dtype).item<double>(), hi_d = array(high, dtype).item<double>();
  if (!(lo_d < hi_d)) {
    fail<ValueError>("[uniform] low = ", low, " and high = ", high, " round to the same ", dtype, " value");
  }
  return uniform(array(low), array(high), shape, dtype, key, s);
}

array uniform(const Shape& shape, Dtype dtype, const std::optional<array>& key, StreamOrDevice s) {
  check_float_dtype(dtype, "uniform");
  check_shape(shape, "uniform");
  array k = get_key(key, "uniform");
  Stream st = to_stream(s);
  // u < 1 holds in the compute type; rounding to a 16-bit dtype can reach 1, so clamp below it.
  array v = astype(unit(shape, compute_type(dtype), false, k, "uniform", st), dtype, st);
  if (dtype == float16 || dtype == bfloat16) v = minimum(v, next_below(array(1, dtype), st), st);
  return v;
}

array normal(const Shape& shape, Dtype dtype, double loc, double scale, const std::optional<array>& key,
             StreamOrDevice s) {
  check_float_dtype(dtype, "normal");
  check_shape(shape, "normal");
  if (!(scale >= 0) || !std::isfinite(scale)) fail<ValueError>("[normal] scale must be finite and >= 0, got ", scale);
  if (!std::isfinite(loc)) fail<ValueError>("[normal] loc must be finite, got ", loc);
  array k = get_key(key, "normal");
  Stream st = to_stream(s);
  Dtype c = compute_type(dtype);
  array z = standard_normal(shape, c, k, st);
  if (scale != 1) z = multiply(z, scalar(scale, c), st);
  if (loc != 0) z = add(z, scalar(loc, c), st);
  return astype(z, dtype, st);
}

array randint(const array& low, const array& high, const Shape& shape, Dtype dtype, const std::optional<array>& key,
              StreamOrDevice s) {
  if (!is_integer(dtype)) fail<TypeError>("[randint] dtype must be an integer type, got ", dtype);
  check_shape(shape, "randint");
  check_real(low, "low", "randint");
  check_real(high, "high", "randint");
  check_broadcast(broadcast_shapes(low.shape(), high.shape(), "randint"), shape, "randint");
  array k = get_key(key, "randint");
  Stream st = to_stream(s);
  // Unsigned 64-bit arithmetic wraps, so any int64 range (even the full one) is exact.
  array lo = astype(astype(low, int64, st), uint64, st), hi = astype(astype(high, int64, st), uint64, st);
  array range = where(greater(astype(high, int64, st), astype(low, int64, st), st), subtract(hi, lo, st),
                      array(1, uint64), st);
  array r = remainder(raw_bits(shape, 8, k, "randint", st), range, st);
  return astype(astype(add(lo, r, st), int64, st), dtype, st);
}

array randint(int64_t low, int64_t high, const Shape& shape, Dtype dtype, const std::optional<array>& key,
              StreamOrDevice s) {
  if (!is_integer(dtype)) fail<TypeError>("[randint] dtype must be an integer type, got ", dtype);
  if (low >= high) fail<ValueError>("[randint] low must be less than high, got low = ", low, " and high = ", high);
  // The dtype's range, from the bounds of its integer type.
  int64_t lo_min = 0;
  uint64_t hi_max = 0;
  KILN_DISPATCH_INTEGRAL("randint", dtype, {
    lo_min = static_cast<int64_t>(std::numeric_limits<T>::min());
    hi_max = static_cast<uint64_t>(std::numeric_limits<T>::max());
  });
  if (low < lo_min || (high - 1 >= 0 && static_cast<uint64_t>(high - 1) > hi_max)) {
    fail<ValueError>("[randint] the range [", low, ", ", high, ") does not fit ", dtype);
  }
  return randint(array(low), array(high), shape, dtype, key, s);
}

array bernoulli(const array& p, std::optional<Shape> shape, const std::optional<array>& key, StreamOrDevice s) {
  check_real(p, "p", "bernoulli");
  Shape out = shape.value_or(p.shape());
  check_shape(out, "bernoulli");
  check_broadcast(p.shape(), out, "bernoulli");
  array k = get_key(key, "bernoulli");
  Stream st = to_stream(s);
  Dtype c = compute_type(p.dtype());
  return less(unit(out, c, false, k, "bernoulli", st), astype(p, c, st), st);
}

array bernoulli(double p, const Shape& shape, const std::optional<array>& key, StreamOrDevice s) {
  if (!(p >= 0 && p <= 1)) fail<ValueError>("[bernoulli] p must be in [0, 1], got ", p);
  return bernoulli(array(static_cast<float>(p)), shape, key, s);
}

array truncated_normal(const array& lower, const array& upper, const Shape& shape, Dtype dtype,
                       const std::optional<array>& key, StreamOrDevice s) {
  check_float_dtype(dtype, "truncated_normal");
  check_shape(shape, "truncated_normal");
  check_real(lower, "lower", "truncated_normal");
  check_real(upper, "upper", "truncated_normal");
  check_broadcast(broadcast_shapes(lower.shape(), upper.shape(), "truncated_normal"), shape, "truncated_normal");
  array k = get_key(key, "truncated_normal");
  Stream st = to_stream(s);
  Dtype c = compute_type(dtype);
  array lo = astype(astype(lower, dtype, st), c, st), hi = astype(astype(upper, dtype, st), c, st);
  array inv_sqrt2 = scalar(1 / std::sqrt(2.0), c);
  array a = erf(multiply(lo, inv_sqrt2, st), st), b = erf(multiply(hi, inv_sqrt2, st), st);
  // u stays at least 2^-24 inside (-1, 1), so an infinite bound never gives an infinite value (an
  // open grid alone can round onto -1 when b - a is small) and erfinv's float64 path, which
  // starts from a float32 guess, stays finite. The tails beyond about 5.4 sigma are cut off.
  const double edge = 1 - std::ldexp(1.0, -24);
  array u = add(a, multiply(subtract(b, a, st), unit(shape, c, true, k, "truncated_normal", st), st), st);
  u = minimum(maximum(u, scalar(-edge, c), st), scalar(edge, c), st);
  array z = multiply(erfinv(u, st), scalar(std::sqrt(2.0), c), st);
  return astype(minimum(maximum(z, lo, st), hi, st), dtype, st);
}

array truncated_normal(double lower, double upper, const Shape& shape, Dtype dtype, const std::optional<array>& key,
                       StreamOrDevice s) {
  if (!(lower < upper)) {
    fail<ValueError>("[truncated_normal] lower must be less than upper, got lower = ", lower, " and upper = ", upper);
  }
  return truncated_normal(array(lower), array(upper), shape, dtype, key, s);
}

array gumbel(const Shape& shape, Dtype dtype, const std::optional<array>& key, StreamOrDevice s) {
  check_float_dtype(dtype, "gumbel");
  check_shape(shape, "gumbel");
  array k = get_key(key, "gumbel");
  Stream st = to_stream(s);
  array u = unit(shape, compute_type(dtype), true, k, "gumbel", st);
  return astype(negative(log(negative(log(u, st), st), st), st), dtype, st);
}

array categorical(const array& logits, int axis, std::optional<int> num_samples, const std::optional<array>& key,
                  StreamOrDevice s) {
  check_real(logits, "logits", "categorical");
  int ax = normalize_axis(axis, logits.ndim(), "categorical");
  if (logits.shape(ax) == 0) fail<ValueError>("[categorical] axis ", ax, " of the logits has no categories");
  if (num_samples && *num_samples < 0) {
    fail<ValueError>("[categorical] num_samples must be non-negative, got ", *num_samples);
  }
  array k = get_key(key, "categorical");
  Stream st = to_stream(s);
  Dtype c = compute_type(logits.dtype());
  array l = astype(logits, c, st);
  if (!num_samples) return argmax(add(l, gumbel(l.shape(), c, k, st), st), ax, false, st);
  // (..., V) with the category axis last, then (..., 1, V) against Gumbel noise of (..., n, V).
  array lt = expand_dims(moveaxis(l, ax, -1, st), -2, st);
  Shape gs = lt.shape();
  gs[gs.size() - 2] = *num_samples;
  return argmax(add(lt, gumbel(gs, c, k, st), st), -1, false, st);
}

}  // namespace kiln::random
