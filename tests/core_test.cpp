#include <gtest/gtest.h>

#include "kiln/kiln.h"

using namespace kiln;

TEST(Core, ScalarAndAdd) {
  array a({1.f, 2.f, 3.f});
  array b = a + 1.0;
  auto v = b.to_vector<float>();
  EXPECT_EQ(v, (std::vector<float>{2.f, 3.f, 4.f}));
}
