// Creation ops: full/zeros/ones (and _like), arange, linspace, eye, identity, tri, on every
// device and dtype, against values computed here; error paths name the op.
#include <gtest/gtest.h>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

// The value `v` takes in dtype `d`, through kiln's own scalar conversion of a float64 array
// (itself checked against references in elementwise_test and dtype_test).
double in_dtype(double v, Dtype d) { return test::to_doubles(astype(array(v), d, Device(Device::cpu)))[0]; }

std::vector<double> in_dtype(std::vector<double> v, Dtype d) {
  for (auto& x : v) x = in_dtype(x, d);
  return v;
}

// Real dtypes that arange/linspace produce (complex and bool aside).
std::vector<Dtype> numeric_dtypes() {
  std::vector<Dtype> d = test::int_dtypes();
  for (Dtype f : test::float_dtypes()) d.push_back(f);
  return d;
}

std::string on(Device d) { return " on " + test::device_name(d); }

}  // namespace

TEST(CreationFull, EveryDtype) {
  for (Device dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      double v = dt == bool_ ? 1 : (is_unsigned(dt) ? 7 : -3.25);
      Shape shape{3, 4};
      std::vector<double> want(12, in_dtype(v, dt));
      for (array a : {full(shape, v, dt, dev), full(shape, array(v, dt), dev), full(shape, array(v), dt, dev)}) {
        EXPECT_EQ(a.dtype(), dt);
        EXPECT_EQ(a.shape(), shape);
        EXPECT_EQ(a.device(), dev);
        if (dt != complex64) {
          EXPECT_EQ(test::to_doubles(a), want) << dt << on(dev);
        } else {
          for (auto z : a.to_vector<complex64_t>()) EXPECT_EQ(z.re, static_cast<float>(v)) << on(dev);
        }
      }
      array z = zeros(shape, dt, dev), o = ones(shape, dt, dev);
      EXPECT_EQ(z.dtype(), dt);
      EXPECT_EQ(o.dtype(), dt);
      if (dt != complex64) {
        EXPECT_EQ(test::to_doubles(z), std::vector<double>(12, 0.0)) << dt << on(dev);
        EXPECT_EQ(test::to_doubles(o), std::vector<double>(12, 1.0)) << dt << on(dev);
      }
      array like = test::from_doubles(test::uniform_values(6, 0, 1), {2, 3}, dt);
      EXPECT_EQ(zeros_like(like, dev).shape(), like.shape());
      EXPECT_EQ(ones_like(like, dev).dtype(), dt);
      array fl = full_like(like, 2, dev);
      EXPECT_EQ(fl.dtype(), dt);
      if (dt != complex64) EXPECT_EQ(test::to_doubles(fl), std::vector<double>(6, in_dtype(2, dt))) << dt;
    }
    // A value that is an array broadcasts; the default dtype of a double value is float32.
    auto [row, rv] = test::random_array({4}, float32);
    array f = full({3, 4}, row, dev);
    std::vector<double> want;
    for (int i = 0; i < 3; ++i) want.insert(want.end(), rv.begin(), rv.end());
    EXPECT_EQ(test::to_doubles(f), want) << on(dev);
    EXPECT_EQ(full({2}, 1.5, float32, dev).dtype(), float32);
    EXPECT_EQ(zeros({2}).dtype(), float32);
    // Values convert as astype does: truncation toward zero for integers.
    EXPECT_EQ(test::to_doubles(full({2}, -2.7, int32, dev)), (std::vector<double>{-2, -2}));
    // The result is its own buffer, never a view of the value.
    array v(5.f);
    array g = full({1}, v, dev);
    g.eval();
    EXPECT_NE(g.buffer().get(), v.buffer().get());
    // Zero-size and 0-d.
    EXPECT_EQ(zeros({0, 5}, float32, dev).to_vector<float>().size(), 0u);
    EXPECT_EQ(full({}, 4.0, int16, dev).item<int16_t>(), 4);
    EXPECT_EQ(ones({}, float32, dev).shape(), Shape{});
  }
}

TEST(CreationArange, ValuesSizesAndDtypes) {
  struct Case {
    double start, stop, step;
  };
  std::vector<Case> cases = {{0, 10, 1}, {2, 17, 3}, {10, 0, -3}, {5, 1, 1}, {-4, 4, 2}, {0, 1, 0.1},
                             {0.5, 3, 0.5}, {3, -2.5, -0.75}, {0, 0, 1}, {-1, -7, -2}};
  for (Device dev : test::devices()) {
    for (const auto& c : cases) {
      // Python's range / NumPy's arange length: ceil((stop - start) / step), at least 0.
      int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((c.stop - c.start) / c.step)));
      bool integral = c.start == std::floor(c.start) && c.stop == std::floor(c.stop) && c.step == std::floor(c.step);
      array a = arange(c.start, c.stop, c.step, std::nullopt, dev);
      EXPECT_EQ(a.dtype(), integral ? int32 : float32) << c.start << " " << c.stop << " " << c.step;
      EXPECT_EQ(a.shape(), (Shape{n})) << c.start << " " << c.stop << " " << c.step;
      for (Dtype dt : numeric_dtypes()) {
        if (!integral && is_integer(dt)) continue;
        if (is_unsigned(dt) && (c.start < 0 || c.stop < -1)) continue;
        std::vector<double> want;
        for (int64_t i = 0; i < n; ++i) want.push_back(in_dtype(c.start + static_cast<double>(i) * c.step, dt));
        array b = arange(c.start, c.stop, c.step, dt, dev);
        EXPECT_EQ(b.dtype(), dt);
        KILN_EXPECT_CLOSE(test::to_doubles(b), want, dt, "arange " << c.start << " " << c.stop << " " << c.step << on(dev));
      }
    }
    array s = arange(7, std::nullopt, dev);
    EXPECT_EQ(test::to_doubles(s), (std::vector<double>{0, 1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(arange(7.5, std::nullopt, dev).dtype(), float32);
    EXPECT_EQ(arange(4, float64, dev).dtype(), float64);
    // Large enough for the CPU kernel to split the work.
    array big = arange(0, 100003, 1, int32, dev);
    auto bv = big.to_vector<int32_t>();
    for (int32_t i = 0; i < 100003; ++i) ASSERT_EQ(bv[i], i) << on(dev);
  }
}

TEST(CreationLinspace, Values) {
  for (Device dev : test::devices()) {
    for (int64_t num : {0, 1, 2, 5, 50, 1001}) {
      for (Dtype dt : {float32, float64, float16, bfloat16}) {
        double start = -2.5, stop = 7.25;
        array a = linspace(start, stop, num, dt, dev);
        EXPECT_EQ(a.shape(), (Shape{num}));
        EXPECT_EQ(a.dtype(), dt);
        std::vector<double> want;
        for (int64_t i = 0; i < num; ++i) {
          double t = num > 1 ? static_cast<double>(i) / static_cast<double>(num - 1) : 0.0;
          want.push_back(in_dtype(start + (stop - start) * t, dt));
        }
        KILN_EXPECT_CLOSE(test::to_doubles(a), want, dt, "linspace " << num << on(dev));
        if (num > 1) EXPECT_NEAR(test::to_doubles(a).back(), in_dtype(stop, dt), 1e-12 + 1e-2 * std::fabs(stop)) << dt;
      }
    }
    // Integer dtypes take the values truncated toward zero (increasing, non-negative here).
    array i = linspace(0, 10, 6, int32, dev);
    EXPECT_EQ(test::to_doubles(i), (std::vector<double>{0, 2, 4, 6, 8, 10}));
    EXPECT_EQ(linspace(0, 1, 50).dtype(), float32);
  }
}

TEST(CreationEye, EyeIdentityTri) {
  for (Device dev : test::devices()) {
    for (int64_t n : {0, 1, 4}) {
      for (int64_t m : {0, 3, 4, 6}) {
        for (int k : {-5, -2, -1, 0, 1, 3, 7}) {
          for (Dtype dt : {float32, int32, bool_, float16, uint8}) {
            std::vector<double> e, t;
            for (int64_t i = 0; i < n; ++i) {
              for (int64_t j = 0; j < m; ++j) {
                e.push_back(j - i == k ? 1 : 0);
                t.push_back(j - i <= k ? 1 : 0);
              }
            }
            array ea = eye(n, m, k, dt, dev), ta = tri(n, m, k, dt, dev);
            EXPECT_EQ(ea.shape(), (Shape{n, m}));
            EXPECT_EQ(ea.dtype(), dt);
            EXPECT_EQ(ta.dtype(), dt);
            EXPECT_EQ(test::to_doubles(ea), e) << "eye " << n << " " << m << " " << k << " " << dt << on(dev);
            EXPECT_EQ(test::to_doubles(ta), t) << "tri " << n << " " << m << " " << k << " " << dt << on(dev);
          }
        }
      }
    }
    EXPECT_EQ(eye(3, std::nullopt, 0, float32, dev).shape(), (Shape{3, 3}));
    EXPECT_EQ(tri(2).shape(), (Shape{2, 2}));
    array id = identity(5, float64, dev);
    auto v = test::to_doubles(id);
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < 5; ++j) EXPECT_EQ(v[i * 5 + j], i == j ? 1.0 : 0.0);
    }
  }
}

TEST(CreationErrors, BadArguments) {
  KILN_EXPECT_THROW_MSG(zeros({2, -1}), ValueError, "[zeros]");
  KILN_EXPECT_THROW_MSG(ones({-3}), ValueError, "[ones]");
  KILN_EXPECT_THROW_MSG(full({-1}, 2.0), ValueError, "[full]");
  KILN_EXPECT_THROW_MSG(full({-1}, 2.0), ValueError, "(-1,)");
  KILN_EXPECT_THROW_MSG(full({3, 4}, zeros({3})), ValueError, "(3,)");
  KILN_EXPECT_THROW_MSG(arange(0, 5, 0), ValueError, "[arange]");
  KILN_EXPECT_THROW_MSG(arange(0, INFINITY, 1), ValueError, "[arange]");
  KILN_EXPECT_THROW_MSG(arange(NAN, 1, 1), ValueError, "[arange]");
  KILN_EXPECT_THROW_MSG(arange(0, 5, 1, bool_), TypeError, "[arange]");
  KILN_EXPECT_THROW_MSG(linspace(0, 1, -1), ValueError, "[linspace]");
  KILN_EXPECT_THROW_MSG(linspace(0, 1, 5, bool_), TypeError, "[linspace]");
  KILN_EXPECT_THROW_MSG(eye(-1), ValueError, "[eye]");
  KILN_EXPECT_THROW_MSG(eye(2, -2), ValueError, "[eye]");
  KILN_EXPECT_THROW_MSG(tri(-1), ValueError, "[tri]");
  KILN_EXPECT_THROW_MSG(identity(-4), ValueError, "[eye]");
}

TEST(CreationStreams, StreamArgument) {
  for (Device dev : test::devices()) {
    Stream s = new_stream(dev);
    for (array a : {full({2}, 1.0, float32, s), zeros({2}, float32, s), ones({2}, int8, s), arange(0, 4, 1, int32, s),
                    linspace(0, 1, 3, float32, s), eye(3, std::nullopt, 0, float32, s), tri(3, std::nullopt, 0, float32, s),
                    identity(2, float32, s), zeros_like(zeros({2}), s), full_like(zeros({2}), 3, s)}) {
      EXPECT_EQ(a.stream(), s);
      EXPECT_EQ(a.device(), dev);
      a.eval();
      EXPECT_TRUE(a.is_available());
    }
  }
}
