// kiln::random: threefry known answers, the bit layout against a host reference, determinism per
// key and across devices, distribution checks on large samples (bounds of a few standard errors),
// and error paths.
#include <cmath>
#include <cstring>
#include <map>

#include "kiln/backend/common/threefry.h"
#include "tests/test_utils.h"

using namespace kiln;
using random_detail::threefry2x32;

namespace {

// A fresh key per call, so every run tests new streams.
array fresh_key() { return random::key(test::rng()()); }

struct Moments {
  double mean = 0, var = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

// |mean - mu| within 5 standard errors, and the variance within 5 of its standard errors
// (its standard error from the fourth central moment `m4`).
void expect_moments(const std::vector<double>& v, double mu, double var, double m4, const std::string& what) {
  double n = static_cast<double>(v.size());
  Moments m = moments(v);
  EXPECT_LE(std::abs(m.mean - mu), 5 * std::sqrt(var / n)) << what << ": mean " << m.mean << " vs " << mu;
  EXPECT_LE(std::abs(m.var - var), 5 * std::sqrt((m4 - var * var) / n))
      << what << ": variance " << m.var << " vs " << var;
}

// A proportion p_hat of n trials within 5 standard errors of p.
void expect_rate(double p_hat, double p, double n, const std::string& what) {
  EXPECT_LE(std::abs(p_hat - p), 5 * std::sqrt(p * (1 - p) / n) + 1e-12) << what << ": " << p_hat << " vs " << p;
}

std::vector<uint32_t> key_words(array k) { return k.to_vector<uint32_t>(); }

// The bytes random::bits must produce for a key and a byte count, computed here from threefry
// and the JAX/MLX counter layout: words 0..W-1 split into halves hashed in pairs.
std::vector<uint8_t> reference_bytes(uint32_t k0, uint32_t k1, size_t bytes) {
  size_t words = (bytes + 3) / 4, half = words / 2, odd = words % 2;
  std::vector<uint32_t> w(words);
  for (size_t p = 0; p < half; ++p) {
    auto x = threefry2x32(k0, k1, static_cast<uint32_t>(p), static_cast<uint32_t>(p + half + odd));
    w[p] = x.a;
    w[p + half + odd] = x.b;
  }
  if (odd) w[half] = threefry2x32(k0, k1, static_cast<uint32_t>(half), 0).a;
  std::vector<uint8_t> out(bytes);
  if (bytes) std::memcpy(out.data(), w.data(), bytes);
  return out;
}

std::vector<uint8_t> bytes_of(array a) {
  a = contiguous(a, Device(Device::cpu));
  a.eval();
  std::vector<uint8_t> out(a.nbytes());
  const auto* src = static_cast<const uint8_t*>(a.buffer()->read_host()) + a.offset() * a.itemsize();
  if (a.nbytes()) std::memcpy(out.data(), src, a.nbytes());
  return out;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double normal_pdf(double x) { return std::isinf(x) ? 0 : std::exp(-x * x / 2) / std::sqrt(2 * M_PI); }

}  // namespace

TEST(Random, ThreefryKnownAnswers) {
  // Random123's published test vectors for threefry2x32_20.
  auto a = threefry2x32(0, 0, 0, 0);
  EXPECT_EQ(a.a, 0x6b200159u);
  EXPECT_EQ(a.b, 0x99ba4efeu);
  auto b = threefry2x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(b.a, 0x1cb996fcu);
  EXPECT_EQ(b.b, 0xbb002be7u);
  auto c = threefry2x32(0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u);
  EXPECT_EQ(c.a, 0xc4923a9cu);
  EXPECT_EQ(c.b, 0x483df7a0u);
}

TEST(Random, KeyAndSplit) {
  uint64_t s = test::rng()();
  auto k = key_words(random::key(s));
  ASSERT_EQ(k.size(), 2u);
  EXPECT_EQ(k[0], static_cast<uint32_t>(s >> 32));
  EXPECT_EQ(k[1], static_cast<uint32_t>(s));
  // JAX's documented jax.random.split(PRNGKey(0)): the same layout gives the same keys.
  auto j = random::split(random::key(0)).to_vector<uint32_t>();
  EXPECT_EQ(j, (std::vector<uint32_t>{4146024105u, 967050713u, 2718843009u, 1272950319u}));
  for (auto dev : test::devices()) {
    array key = fresh_key();
    array sp = random::split(key, 5, dev);
    EXPECT_EQ(sp.shape(), (Shape{5, 2}));
    EXPECT_EQ(sp.dtype(), uint32);
    auto w = sp.to_vector<uint32_t>();
    EXPECT_EQ(w, random::bits({5, 2}, 4, key, dev).to_vector<uint32_t>());
    // Bits from the split keys (taken as views of the split) all differ.
    std::vector<std::vector<uint32_t>> streams;
    for (int i = 0; i < 5; ++i) {
      array ki = reshape(slice(sp, {i, 0}, {i + 1, 2}), {2});
      streams.push_back(random::bits({64}, 4, ki, dev).to_vector<uint32_t>());
    }
    for (int i = 0; i < 5; ++i) {
      for (int j = i + 1; j < 5; ++j) EXPECT_NE(streams[i], streams[j]) << i << " " << j;
    }
    // A strided key (a column of the transposed split) works as well.
    array tk = slice(transpose(sp), {0, 3}, {2, 4});
    EXPECT_EQ(random::bits({16}, 4, reshape(tk, {2}), dev).to_vector<uint32_t>(),
              random::bits({16}, 4, array({w[6], w[7]}), dev).to_vector<uint32_t>());
    EXPECT_EQ(random::split(key, 0, dev).shape(), (Shape{0, 2}));
  }
}

TEST(Random, BitsLayoutMatchesReference) {
  for (auto dev : test::devices()) {
    for (int width : {1, 2, 4, 8}) {
      for (Shape shape : {Shape{}, Shape{1}, Shape{3}, Shape{5}, Shape{7}, Shape{4, 9}, Shape{1001}, Shape{0}}) {
        array key = fresh_key();
        auto k = key_words(key);
        array b = random::bits(shape, width, key, dev);
        EXPECT_EQ(b.shape(), shape);
        EXPECT_EQ(size_of(b.dtype()), static_cast<size_t>(width));
        EXPECT_TRUE(is_unsigned(b.dtype()));
        EXPECT_EQ(bytes_of(b), reference_bytes(k[0], k[1], shape_size(shape) * width))
            << test::device_name(dev) << " width " << width << " size " << shape_size(shape);
      }
    }
  }
}

TEST(Random, DeterministicPerKeyAndAcrossDevices) {
  test::note_gpu_skip();
  array key = fresh_key();
  auto cpu = random::bits({100000}, 4, key, Device(Device::cpu)).to_vector<uint32_t>();
  EXPECT_EQ(cpu, random::bits({100000}, 4, key, Device(Device::cpu)).to_vector<uint32_t>());
  auto other = random::bits({100000}, 4, fresh_key(), Device(Device::cpu)).to_vector<uint32_t>();
  EXPECT_NE(cpu, other);
  auto u_cpu = test::to_doubles(random::uniform(-2.0, 3.0, {5000}, float32, key, Device(Device::cpu)));
  auto n_cpu = test::to_doubles(random::normal({5000}, float32, 0.0, 1.0, key, Device(Device::cpu)));
  auto n64_cpu = test::to_doubles(random::normal({5000}, float64, 0.0, 1.0, key, Device(Device::cpu)));
  for (auto dev : test::devices()) {
    EXPECT_EQ(random::bits({100000}, 4, key, dev).to_vector<uint32_t>(), cpu) << test::device_name(dev);
    EXPECT_EQ(test::to_doubles(random::uniform(-2.0, 3.0, {5000}, float32, key, dev)), u_cpu);
    auto n = test::to_doubles(random::normal({5000}, float32, 0.0, 1.0, key, dev));
    auto n64 = test::to_doubles(random::normal({5000}, float64, 0.0, 1.0, key, dev));
    int bad = 0;
    for (size_t i = 0; i < n.size(); ++i) {
      bad += std::abs(n[i] - n_cpu[i]) > 2e-6 * std::max(1.0, std::abs(n_cpu[i]));
      bad += std::abs(n64[i] - n64_cpu[i]) > 1e-12 * std::max(1.0, std::abs(n64_cpu[i]));
    }
    EXPECT_EQ(bad, 0) << test::device_name(dev);
  }
}

TEST(Random, GlobalKeySequence) {
  random::seed(1234);
  auto a = random::uniform({64}).to_vector<float>();
  auto b = random::uniform({64}).to_vector<float>();
  random::seed(1234);
  EXPECT_EQ(random::uniform({64}).to_vector<float>(), a);
  EXPECT_EQ(random::uniform({64}).to_vector<float>(), b);
  EXPECT_NE(a, b);
  // Drawing a key splits the state exactly as split() does: the second row is used.
  random::seed(99);
  auto sp = random::split(random::key(99)).to_vector<uint32_t>();
  random::seed(99);
  EXPECT_EQ(random::bits({32}).to_vector<uint32_t>(),
            random::bits({32}, 4, array({sp[2], sp[3]})).to_vector<uint32_t>());
  random::seed(test::rng()());
}

TEST(Random, UniformBoundsAndMoments) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      const int64_t n = 400000;
      double lo = -1.5, hi = 2.5;
      array u = random::uniform(lo, hi, {n}, dt, fresh_key(), dev);
      EXPECT_EQ(u.dtype(), dt);
      auto v = test::to_doubles(u);
      double vmin = *std::min_element(v.begin(), v.end()), vmax = *std::max_element(v.begin(), v.end());
      std::string what = test::device_name(dev) + " uniform " + dtype_name(dt);
      EXPECT_GE(vmin, lo) << what;
      EXPECT_LT(vmax, hi) << what;
      double w = hi - lo;
      expect_moments(v, (lo + hi) / 2, w * w / 12, w * w * w * w / 80, what);

      // [0, 1): rounding to the 16-bit floats reaches 1 often; it must never show up.
      auto z = test::to_doubles(random::uniform({n}, dt, fresh_key(), dev));
      EXPECT_GE(*std::min_element(z.begin(), z.end()), 0.0) << what;
      EXPECT_LT(*std::max_element(z.begin(), z.end()), 1.0) << what;
      expect_moments(z, 0.5, 1.0 / 12, 1.0 / 80, what + " [0, 1)");

      // A narrow range of a few representable values, with a negative high.
      auto nar = test::to_doubles(random::uniform(-1.0, -0.9, {20000}, dt, fresh_key(), dev));
      double nlo = test::to_doubles(test::from_doubles({-1.0}, {1}, dt))[0];
      double nhi = test::to_doubles(test::from_doubles({-0.9}, {1}, dt))[0];
      for (double x : nar) {
        ASSERT_GE(x, nlo) << what;
        ASSERT_LT(x, nhi) << what;
      }
    }
    // Bounds as arrays, broadcast per row.
    array lo = array({0.f, 10.f, -5.f}, {3, 1}), hi = array({1.f, 20.f, -4.f}, {3, 1});
    auto v = test::to_doubles(random::uniform(lo, hi, {3, 2000}, float32, fresh_key(), dev));
    const double los[] = {0, 10, -5}, his[] = {1, 20, -4};
    for (int r = 0; r < 3; ++r) {
      std::vector<double> row(v.begin() + r * 2000, v.begin() + (r + 1) * 2000);
      for (double x : row) {
        ASSERT_GE(x, los[r]);
        ASSERT_LT(x, his[r]);
      }
      double w = his[r] - los[r];
      expect_moments(row, (los[r] + his[r]) / 2, w * w / 12, w * w * w * w / 80, "row bounds");
    }
  }
}

TEST(Random, NormalMoments) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      const int64_t n = 400000;
      std::string what = test::device_name(dev) + " normal " + dtype_name(dt);
      auto v = test::to_doubles(random::normal({n}, dt, 0.0, 1.0, fresh_key(), dev));
      for (double x : v) ASSERT_TRUE(std::isfinite(x)) << what;
      expect_moments(v, 0, 1, 3, what);
      int64_t within = 0;
      for (double x : v) within += std::abs(x) < 1;
      expect_rate(static_cast<double>(within) / n, normal_cdf(1) - normal_cdf(-1), n, what + " within 1 sigma");
      auto w = test::to_doubles(random::normal({n}, dt, 3.0, 0.5, fresh_key(), dev));
      expect_moments(w, 3, 0.25, 3 * 0.0625, what + " loc 3 scale 0.5");
      for (double x : w) ASSERT_TRUE(std::isfinite(x)) << what;
    }
    // The shape is honoured, including empty and 0-d.
    EXPECT_EQ(random::normal({2, 0, 3}, float32, 0, 1, fresh_key(), dev).shape(), (Shape{2, 0, 3}));
    EXPECT_TRUE(std::isfinite(random::normal({}, float32, 0, 1, fresh_key(), dev).item<float>()));
  }
}

TEST(Random, RandintRangeAndUniformity) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {int8, uint8, int16, int32, uint32, int64, uint64}) {
      const int64_t n = 200000;
      int64_t lo = is_unsigned(dt) ? 3 : -7, hi = lo + 10;
      std::string what = test::device_name(dev) + " randint " + dtype_name(dt);
      array r = random::randint(lo, hi, {n}, dt, fresh_key(), dev);
      EXPECT_EQ(r.dtype(), dt);
      auto v = test::to_doubles(r);
      std::map<int64_t, int64_t> counts;
      for (double x : v) {
        ASSERT_EQ(x, std::floor(x)) << what;
        ASSERT_GE(x, lo) << what;
        ASSERT_LT(x, hi) << what;
        ++counts[static_cast<int64_t>(x)];
      }
      EXPECT_EQ(counts.size(), 10u) << what;
      for (auto [value, c] : counts) {
        expect_rate(static_cast<double>(c) / n, 0.1, n, what + " value " + std::to_string(value));
      }
    }
    // The whole int64 range, and array bounds.
    auto full = random::randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), {1000},
                                int64, fresh_key(), dev)
                    .to_vector<int64_t>();
    int64_t negative = 0;
    for (auto x : full) negative += x < 0;
    expect_rate(negative / 1000.0, 0.5, 1000, "full int64 range sign");
    array lo = array({0, 100}, {2, 1}), hi = array({2, 103}, {2, 1});
    auto v = random::randint(lo, hi, {2, 500}, int32, fresh_key(), dev).to_vector<int32_t>();
    for (int i = 0; i < 1000; ++i) {
      int l = i < 500 ? 0 : 100, h = i < 500 ? 2 : 103;
      ASSERT_GE(v[i], l);
      ASSERT_LT(v[i], h);
    }
  }
}

TEST(Random, BernoulliRate) {
  for (auto dev : test::devices()) {
    const int64_t n = 200000;
    array b = random::bernoulli(0.3, {n}, fresh_key(), dev);
    EXPECT_EQ(b.dtype(), bool_);
    auto v = test::to_doubles(b);
    double rate = 0;
    for (double x : v) rate += x;
    expect_rate(rate / n, 0.3, n, test::device_name(dev) + " bernoulli 0.3");
    auto none = test::to_doubles(random::bernoulli(0.0, {1000}, fresh_key(), dev));
    auto all = test::to_doubles(random::bernoulli(1.0, {1000}, fresh_key(), dev));
    EXPECT_EQ(std::count(none.begin(), none.end(), 1.0), 0);
    EXPECT_EQ(std::count(all.begin(), all.end(), 1.0), 1000);
    // p as an array broadcast per row; shape defaults to p's.
    array p = array({0.1f, 0.5f, 0.9f}, {3, 1});
    auto w = test::to_doubles(random::bernoulli(p, Shape{3, 50000}, fresh_key(), dev));
    for (int r = 0; r < 3; ++r) {
      double c = 0;
      for (int i = 0; i < 50000; ++i) c += w[r * 50000 + i];
      expect_rate(c / 50000, 0.1 + 0.4 * r, 50000, "bernoulli row " + std::to_string(r));
    }
    EXPECT_EQ(random::bernoulli(p, std::nullopt, fresh_key(), dev).shape(), (Shape{3, 1}));
  }
}

TEST(Random, TruncatedNormalBoundsAndMean) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      const double inf = std::numeric_limits<double>::infinity();
      const std::pair<double, double> bounds[] = {{-1.0, 2.0}, {0.5, 3.0}, {-inf, -1.0}, {-2.0, inf}};
      for (auto [a, b] : bounds) {
        const int64_t n = 200000;
        std::string what = test::device_name(dev) + " truncated_normal " + dtype_name(dt) + " [" +
                           std::to_string(a) + ", " + std::to_string(b) + "]";
        auto v = test::to_doubles(random::truncated_normal(a, b, {n}, dt, fresh_key(), dev));
        double lo = std::isinf(a) ? a : test::to_doubles(test::from_doubles({a}, {1}, dt))[0];
        double hi = std::isinf(b) ? b : test::to_doubles(test::from_doubles({b}, {1}, dt))[0];
        for (double x : v) {
          ASSERT_TRUE(std::isfinite(x)) << what;
          ASSERT_GE(x, lo) << what;
          ASSERT_LE(x, hi) << what;
        }
        // The truncated normal's mean and variance.
        double z = normal_cdf(b) - normal_cdf(a);
        double mu = (normal_pdf(a) - normal_pdf(b)) / z;
        double ta = std::isinf(a) ? 0 : a * normal_pdf(a), tb = std::isinf(b) ? 0 : b * normal_pdf(b);
        double var = 1 + (ta - tb) / z - mu * mu;
        Moments m = moments(v);
        double tol = dt == bfloat16 ? 2e-2 : dt == float16 ? 2e-3 : 0;  // rounding of the samples
        EXPECT_LE(std::abs(m.mean - mu), 5 * std::sqrt(var / n) + tol) << what << ": mean " << m.mean << " vs " << mu;
        EXPECT_NEAR(m.var, var, 0.05 * var + tol) << what;
      }
    }
  }
}

TEST(Random, GumbelMoments) {
  for (auto dev : test::devices()) {
    const int64_t n = 400000;
    auto v = test::to_doubles(random::gumbel({n}, float32, fresh_key(), dev));
    Moments m = moments(v);
    double var = M_PI * M_PI / 6;
    EXPECT_LE(std::abs(m.mean - 0.5772156649), 5 * std::sqrt(var / n)) << test::device_name(dev);
    EXPECT_NEAR(m.var, var, 0.03 * var) << test::device_name(dev);
  }
}

TEST(Random, CategoricalFrequencies) {
  for (auto dev : test::devices()) {
    std::vector<double> logits{0.5, -1.0, 2.0, 0.0};
    double z = 0;
    for (double l : logits) z += std::exp(l);
    // Rows of logits with the categories on axis 1; samples drawn per row.
    array lg = test::from_doubles({0.5, -1.0, 2.0, 0.0, 0.5, -1.0, 2.0, 0.0}, {2, 4}, float32);
    const int n = 50000;
    array s = random::categorical(lg, 1, n, fresh_key(), dev);
    EXPECT_EQ(s.shape(), (Shape{2, n}));
    auto v = test::to_doubles(s);
    std::vector<double> counts(4, 0);
    for (double x : v) {
      ASSERT_GE(x, 0);
      ASSERT_LT(x, 4);
      counts[static_cast<int>(x)] += 1;
    }
    for (int c = 0; c < 4; ++c) {
      expect_rate(counts[c] / (2.0 * n), std::exp(logits[c]) / z, 2.0 * n,
                  test::device_name(dev) + " category " + std::to_string(c));
    }
    // Categories along axis 0, one sample per column; and a column of -inf never wins.
    array lt = transpose(test::from_doubles({0.0, 1.0, -INFINITY, -INFINITY, 0.0, 0.0}, {2, 3}, float32));
    std::vector<double> one(3, 0);
    for (int rep = 0; rep < 200; ++rep) {
      array c = random::categorical(lt, 1, std::nullopt, fresh_key(), dev);
      ASSERT_EQ(c.shape(), Shape{3});
      auto cv = test::to_doubles(c);
      EXPECT_EQ(cv[0], 0);  // logits (0, -inf)
      EXPECT_EQ(cv[2], 1);  // logits (-inf, 0)
      one[1] += cv[1];
    }
    expect_rate(one[1] / 200, 1 / (1 + std::exp(1.0)), 200, "two-way category");
    EXPECT_EQ(random::categorical(zeros({5, 3, 7}), 1, std::nullopt, fresh_key(), dev).shape(), (Shape{5, 7}));
    EXPECT_EQ(random::categorical(zeros({5, 3, 7}), 1, 4, fresh_key(), dev).shape(), (Shape{5, 7, 4}));
  }
}

TEST(Random, Errors) {
  array k = fresh_key();
  KILN_EXPECT_THROW_MSG(random::bits({4}, 4, array({1.f, 2.f})), TypeError, "[bits]");
  KILN_EXPECT_THROW_MSG(random::bits({4}, 4, array({1u, 2u, 3u})), ValueError, "[bits]");
  KILN_EXPECT_THROW_MSG(random::bits({4}, 4, random::split(k)), ValueError, "[bits]");
  KILN_EXPECT_THROW_MSG(random::bits({4}, 3, k), ValueError, "[bits]");
  KILN_EXPECT_THROW_MSG(random::bits({-1, 4}, 4, k), ValueError, "[bits]");
  KILN_EXPECT_THROW_MSG(random::split(k, -1), ValueError, "[split]");
  KILN_EXPECT_THROW_MSG(random::split(array({1, 2})), TypeError, "[split]");
  KILN_EXPECT_THROW_MSG(random::uniform(1.0, 1.0, {3}), ValueError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(2.0, 1.0, {3}), ValueError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(1.0, 1.001, {3}, bfloat16), ValueError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(0.0, 1.0, {3}, int32), TypeError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform({3}, int32), TypeError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(0.0, 1.0, {-3}), ValueError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(zeros({4}), ones({4}), {3}), ValueError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::uniform(0.0, 1.0, {3}, float32, array({1.f, 2.f})), TypeError, "[uniform]");
  KILN_EXPECT_THROW_MSG(random::normal({3}, int32), TypeError, "[normal]");
  KILN_EXPECT_THROW_MSG(random::normal({3}, float32, 0, -1), ValueError, "[normal]");
  KILN_EXPECT_THROW_MSG(random::randint(5, 5, {3}), ValueError, "[randint]");
  KILN_EXPECT_THROW_MSG(random::randint(0, 300, {3}, int8), ValueError, "[randint]");
  KILN_EXPECT_THROW_MSG(random::randint(-1, 3, {3}, uint8), ValueError, "[randint]");
  KILN_EXPECT_THROW_MSG(random::randint(0, 3, {3}, float32), TypeError, "[randint]");
  KILN_EXPECT_THROW_MSG(random::randint(zeros({2}, int32), ones({3}, int32), {2}), ValueError, "[randint]");
  KILN_EXPECT_THROW_MSG(random::bernoulli(1.5, {3}), ValueError, "[bernoulli]");
  KILN_EXPECT_THROW_MSG(random::bernoulli(-0.1, {3}), ValueError, "[bernoulli]");
  KILN_EXPECT_THROW_MSG(random::bernoulli(zeros({4}), Shape{3}), ValueError, "[bernoulli]");
  KILN_EXPECT_THROW_MSG(random::truncated_normal(1.0, -1.0, {3}), ValueError, "[truncated_normal]");
  KILN_EXPECT_THROW_MSG(random::truncated_normal(-1.0, 1.0, {3}, int32), TypeError, "[truncated_normal]");
  KILN_EXPECT_THROW_MSG(random::gumbel({3}, uint8), TypeError, "[gumbel]");
  KILN_EXPECT_THROW_MSG(random::categorical(zeros({3, 0})), ValueError, "[categorical]");
  KILN_EXPECT_THROW_MSG(random::categorical(zeros({3}), 1), IndexError, "[categorical]");
  KILN_EXPECT_THROW_MSG(random::categorical(zeros({3}), -1, -2), ValueError, "[categorical]");
  KILN_EXPECT_THROW_MSG(random::categorical(astype(zeros({3}), complex64)), TypeError, "[categorical]");
}
