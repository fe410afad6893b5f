// CapturedFunction (kiln/capture.h): every call, eager or replayed, gives what the function gives
// when run as usual, on fresh inputs each time; a function a graph cannot hold still works.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "kiln/models/resnet.h"
#include "test_utils.h"

namespace kiln {
namespace {

TEST(Capture, ReplaysGiveTheEagerResults) {
  for (Device d : test::devices()) {
    models::ResNet model(18, 10, float32);
    model.eval();
    model.fold_batchnorm();
    auto fn = [&](const std::vector<array>& in) {
      array logits = model(in[0]);
      return std::vector<array>{logits, softmax(logits, -1)};
    };
    CapturedFunction forward(fn, d);
    for (int call = 0; call < 4; ++call) {
      array x = copy(random::normal({2, 32, 32, 3}), d);
      std::vector<array> want = fn({x});
      eval(want);
      std::vector<array> got = forward({x});
      ASSERT_EQ(got.size(), 2u);
      for (size_t i = 0; i < 2; ++i) {
        ASSERT_EQ(got[i].shape(), want[i].shape());
        KILN_EXPECT_CLOSE(test::to_doubles(got[i]), test::to_doubles(want[i]), float32,
                          test::device_name(d) + " call " + std::to_string(call));
      }
    }
    array x1 = copy(random::normal({1, 32, 32, 3}), d);
    forward({x1});
    forward({x1});
    EXPECT_EQ(forward.captured({x1}), d.type == Device::gpu) << "a second call of a signature captures on the GPU";
  }
  test::note_gpu_skip();
}

TEST(Capture, ScalarsMadeOnTheHostStayInTheGraph) {
  for (Device d : test::devices()) {
    // The scalar is a new host array at every call, gone once the capture ends; replays must
    // still read its value, even after the host memory it lived in is reused.
    const float scale = static_cast<float>(random::uniform(1.0, 2.0, {}).item<float>());
    CapturedFunction f([&](const std::vector<array>& in) {
      return std::vector<array>{divide(in[0], array(scale))};
    }, d);
    for (int call = 0; call < 4; ++call) {
      std::vector<array> clutter;
      for (int i = 0; i < 256; ++i) clutter.push_back(array(-1e30f * static_cast<float>(i + 1)));
      clutter.clear();
      array x = copy(random::normal({7}), d);
      std::vector<double> want;
      for (double v : test::to_doubles(x)) want.push_back(v / scale);
      KILN_EXPECT_CLOSE(test::to_doubles(f({x})[0]), want, float32, test::device_name(d) + " call " + std::to_string(call));
    }
  }
  test::note_gpu_skip();
}

TEST(Capture, AFunctionThatReadsOnTheHostRunsAsUsual) {
  for (Device d : test::devices()) {
    // item() waits for the GPU, which a graph cannot record: every call stays eager and right.
    CapturedFunction f([&](const std::vector<array>& in) {
      float s = sum(in[0]).item<float>();
      return std::vector<array>{multiply(in[0], array(s))};
    }, d);
    for (int call = 0; call < 3; ++call) {
      // Positive entries: a sum that cancels would make its float32 rounding the whole answer.
      array x = copy(random::uniform(0.5, 1.5, {5}), d);
      auto xs = test::to_doubles(x);
      double s = 0;
      for (double v : xs) s += v;
      std::vector<double> want;
      for (double v : xs) want.push_back(v * s);
      KILN_EXPECT_CLOSE(test::to_doubles(f({x})[0]), want, float32, test::device_name(d));
    }
  }
  test::note_gpu_skip();
}

}  // namespace
}  // namespace kiln
