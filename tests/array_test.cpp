// The array handle: construction from C++ values, metadata, element access (which evaluates),
// layout flags, printing, and the errors of bad construction and access.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/test_utils.h"

using namespace kiln;

TEST(ArrayScalars, DtypeFollowsTheCppType) {
  EXPECT_EQ(array(true).dtype(), bool_);
  EXPECT_EQ(array(3).dtype(), int32);
  EXPECT_EQ(array(int64_t(3)).dtype(), int64);
  EXPECT_EQ(array(uint32_t(3)).dtype(), uint32);
  EXPECT_EQ(array(3.f).dtype(), float32);
  EXPECT_EQ(array(3.0).dtype(), float64);
  EXPECT_EQ(array(float16_t(3.f)).dtype(), float16);
  EXPECT_EQ(array(bfloat16_t(3.f)).dtype(), bfloat16);
  EXPECT_EQ(array(complex64_t(1.f, 2.f)).dtype(), complex64);
  EXPECT_EQ(array(std::complex<float>(1.f, 2.f)).dtype(), complex64);
  for (double v : test::uniform_values(20, -100, 100)) {
    EXPECT_EQ(array(v).item<double>(), v);
    EXPECT_EQ(array(static_cast<float>(v)).item<float>(), static_cast<float>(v));
    EXPECT_EQ(array(static_cast<int>(v)).item<int>(), static_cast<int>(v));
    EXPECT_EQ(array(float16_t(v)).item<float>(), static_cast<float>(float16_t(v)));
    // A scalar of a chosen dtype converts as astype does.
    for (Dtype d : {int8, int32, float16, bfloat16, float32, float64}) {
      array a(v, d);
      EXPECT_EQ(a.dtype(), d);
      EXPECT_EQ(a.item<double>(), astype(array(v), d).item<double>()) << d;
    }
  }
  EXPECT_EQ(array(int64_t(1) << 40).item<int64_t>(), int64_t(1) << 40);
  auto z = array(complex64_t(1.5f, -2.f)).item<complex64_t>();
  EXPECT_EQ(z.re, 1.5f);
  EXPECT_EQ(z.im, -2.f);
  EXPECT_EQ(array(3.f).ndim(), 0);
  EXPECT_EQ(array(3.f).size(), 1);
  EXPECT_EQ(array(3.f).shape(), Shape{});
}

TEST(ArrayConstruct, FromValues) {
  auto v = test::uniform_values(6, -5, 5);
  std::vector<float> f(v.begin(), v.end());
  array a(f, {2, 3});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.dtype(), float32);
  EXPECT_EQ(a.to_vector<float>(), f);
  array b({1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(b.dtype(), int32);
  EXPECT_EQ(b.shape(), (Shape{3, 2}));
  array c({1.5, 2.5});
  EXPECT_EQ(c.dtype(), float64);
  EXPECT_EQ(c.shape(), (Shape{2}));
  array e(std::vector<float>{}, {0, 4});
  EXPECT_EQ(e.size(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  // Arrays from data are evaluated already and live on the default device.
  EXPECT_TRUE(a.is_available());
  EXPECT_EQ(a.device(), default_device());
  KILN_EXPECT_THROW_MSG(array(f, {4, 2}), ValueError, "[array]");
  KILN_EXPECT_THROW_MSG(array(f, {4, 2}), ValueError, "(4, 2)");
  KILN_EXPECT_THROW_MSG(array({1.f, 2.f}, {3}), ValueError, "[array]");
  KILN_EXPECT_THROW_MSG(array(f.data(), Shape{-2, -3}, float32), ValueError, "[array]");
}

TEST(ArrayAccess, ItemDataToVector) {
  auto [x, xv] = test::random_array({3, 4}, float32);
  KILN_EXPECT_THROW_MSG(x.item<float>(), ValueError, "[item]");
  KILN_EXPECT_THROW_MSG(x.item<float>(), ValueError, "12");
  KILN_EXPECT_THROW_MSG(zeros({0}).item<float>(), ValueError, "[item]");
  KILN_EXPECT_THROW_MSG(x.data<double>(), TypeError, "[data]");
  KILN_EXPECT_THROW_MSG(x.data<int32_t>(), TypeError, "float32");
  KILN_EXPECT_THROW_MSG(zeros({2}, float16).data<bfloat16_t>(), TypeError, "[data]");
  EXPECT_EQ(ones({1, 1, 1}).item<float>(), 1.f);
  EXPECT_EQ(array(2.75f).item<int>(), 2);  // item converts as astype does
  EXPECT_EQ(array(-2.75).item<int64_t>(), -2);
  const float* p = x.data<float>();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(p[i], xv[i]);
  // to_vector walks the logical (row-major) order whatever the layout.
  auto t = transpose(x).to_vector<double>();
  auto s = slice(x, {2, 3}, {-4, -5}, {-1, -2}).to_vector<double>();
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_EQ(t[i * 3 + j], xv[j * 4 + i]);
  }
  ASSERT_EQ(s.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) EXPECT_EQ(s[i * 2 + j], xv[(2 - i) * 4 + (3 - 2 * j)]);
  }
  EXPECT_EQ(x.shape(-1), 4);
  EXPECT_EQ(x.shape(0), 3);
  KILN_EXPECT_THROW_MSG(x.shape(2), IndexError, "[shape]");
  KILN_EXPECT_THROW_MSG(x.shape(-3), IndexError, "[shape]");
}

TEST(ArrayLayout, Flags) {
  auto [x, xv] = test::random_array({4, 6}, float32);
  EXPECT_TRUE(x.row_contiguous());
  EXPECT_FALSE(x.col_contiguous());
  EXPECT_TRUE(x.dense());
  EXPECT_EQ(x.data_size(), 24);
  EXPECT_EQ(x.strides(), (Strides{6, 1}));
  array t = transpose(x);
  t.eval();
  EXPECT_FALSE(t.row_contiguous());
  EXPECT_TRUE(t.col_contiguous());
  EXPECT_TRUE(t.dense());
  EXPECT_EQ(t.strides(), (Strides{1, 6}));
  array b = broadcast_to(slice(x, {0}, {1}), {3, 4, 6});
  b.eval();
  EXPECT_FALSE(b.row_contiguous());
  EXPECT_FALSE(b.dense());
  array s = slice(x, {0, 0}, {4, 6}, {1, 2});
  s.eval();
  EXPECT_FALSE(s.dense());
  array rows = slice(x, {1}, {3});
  rows.eval();
  EXPECT_TRUE(rows.row_contiguous());  // a block of whole rows, at an offset
  EXPECT_EQ(rows.offset(), 6);
  array p = transpose(reshape(x, {2, 2, 6}), {1, 0, 2});
  p.eval();
  EXPECT_FALSE(p.row_contiguous());
  EXPECT_TRUE(p.dense());  // a permutation of packed axes is still packed
  array one = reshape(x, {4, 1, 6});
  one.eval();
  EXPECT_TRUE(one.row_contiguous());  // axes of length 1 do not matter
}

TEST(ArrayHandles, SharedNodes) {
  array a = zeros({3}) + 1.0;
  array b = a;
  EXPECT_TRUE(a.is_same(b));
  EXPECT_EQ(a.id(), b.id());
  b.eval();
  EXPECT_TRUE(a.is_available());
  EXPECT_FALSE(a.is_same(a + 0.0));
}

TEST(ArrayPrint, Format) {
  std::ostringstream s;
  s << Shape{3} << " " << Shape{} << " " << Shape{2, 3};
  EXPECT_EQ(s.str(), "(3,) () (2, 3)");
  auto str = [](array a) {
    std::ostringstream os;
    os << a;
    return os.str();
  };
  std::string f = str(array({1.5f, -2.f, 3.f}));
  EXPECT_NE(f.find("1.5"), std::string::npos) << f;
  EXPECT_NE(f.find("-2"), std::string::npos) << f;
  EXPECT_NE(f.find("dtype=float32"), std::string::npos) << f;
  EXPECT_NE(str(array(true)).find("true"), std::string::npos);
  EXPECT_NE(str(array(complex64_t(1.f, -2.f))).find("1-2j"), std::string::npos) << str(array(complex64_t(1.f, -2.f)));
  EXPECT_NE(str(zeros({2}, int8)).find("dtype=int8"), std::string::npos);
  std::string big = str(arange(100, int32));
  EXPECT_NE(big.find("..."), std::string::npos) << big;
  EXPECT_NE(big.find("99"), std::string::npos) << big;
  EXPECT_EQ(big.find("50"), std::string::npos) << big;
  std::string m = str(reshape(arange(6, int32), {2, 3}));
  EXPECT_NE(m.find("[[0, 1, 2],"), std::string::npos) << m;
  EXPECT_NE(m.find("[3, 4, 5]]"), std::string::npos) << m;
  EXPECT_NE(str(zeros({0, 2})).find("[]"), std::string::npos) << str(zeros({0, 2}));
  EXPECT_NE(str(array(2.5f)).find("2.5"), std::string::npos);
}
