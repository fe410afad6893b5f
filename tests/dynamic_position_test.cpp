// The operations whose position is an array read when the kernel runs (so that a replayed CUDA
// graph can move it): rope with an offset array, dynamic_slice_update with a start array. Each must
// equal its static counterpart on fresh random inputs, on every device.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "kiln/models/llama.h"
#include "test_utils.h"

namespace kiln {
namespace {

TEST(DynamicPosition, RopeOffsetArrayEqualsTheStaticOffset) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16}) {
      for (bool traditional : {false, true}) {
        auto [x, xv] = test::random_array({2, 3, 5, 16}, t);
        array xd = copy(x, d);
        const int offset = static_cast<int>(test::int_values(1, 0, 3000)[0]);
        array want = fast::rope(xd, 12, traditional, 10000.0f, 1.0f, offset);
        array got = fast::rope(xd, 12, traditional, 10000.0f, 1.0f, copy(array(offset), d));
        KILN_EXPECT_CLOSE(test::to_doubles(got), test::to_doubles(want), t, test::device_name(d) + " rope");
        array freqs = copy(random::uniform(1.0, 100.0, {6}), d);
        want = fast::rope(xd, 12, traditional, std::nullopt, 0.5f, offset, freqs);
        got = fast::rope(xd, 12, traditional, std::nullopt, 0.5f, copy(array(int64_t{offset}), d), freqs);
        KILN_EXPECT_CLOSE(test::to_doubles(got), test::to_doubles(want), t, test::device_name(d) + " rope freqs");
      }
    }
  }
  KILN_EXPECT_THROW_MSG(fast::rope(zeros({1, 2, 4}), 4, false, 1e4f, 1.0f, zeros({2}, int32)), ValueError,
                        "integer scalar");
  test::note_gpu_skip();
}

TEST(DynamicPosition, SliceUpdateAtAnArrayPosition) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16, int32}) {
      auto [src, sv] = test::random_array({2, 3, 10, 4}, t);
      auto [upd, uv] = test::random_array({2, 3, 2, 4}, t);
      for (int start : {0, 5, 8, 9, -3}) {
        const int clamped = std::min(std::max(start, 0), 8);
        array want = slice_update(copy(src, d), copy(upd, d), {0, 0, clamped, 0}, {2, 3, clamped + 2, 4});
        array got = dynamic_slice_update(copy(src, d), copy(upd, d), copy(array(start), d), 2);
        EXPECT_EQ(test::to_doubles(got), test::to_doubles(want)) << test::device_name(d) << " start " << start;
      }
      // In place when the source is not shared: the update lands in the same buffer.
      array s = copy(src, d);
      s.eval();
      const void* before = s.buffer().get();
      s = dynamic_slice_update(s, copy(upd, d), copy(array(1), d), 2);
      s.eval();
      EXPECT_EQ(s.buffer().get(), before) << test::device_name(d);
    }
  }
  array src = zeros({2, 3, 10, 4});
  KILN_EXPECT_THROW_MSG(dynamic_slice_update(src, zeros({2, 3, 11, 4}), array(0), 2), ValueError, "does not fit");
  KILN_EXPECT_THROW_MSG(dynamic_slice_update(src, zeros({2, 2, 1, 4}), array(0), 2), ValueError, "does not fit");
  KILN_EXPECT_THROW_MSG(dynamic_slice_update(src, zeros({2, 3, 1, 4}), array(0.5f), 2), ValueError, "integer scalar");
  KILN_EXPECT_THROW_MSG(dynamic_slice_update(src, zeros({2, 3, 1, 4}), array(0), 4), ValueError, "out of range");
  test::note_gpu_skip();
}

// decode_step (positions in arrays, attention over the whole capacity under a mask) gives the
// logits of the ordinary cached forward pass, step after step, with and without a sliding
// window; on the GPU also when replayed as a CUDA graph.
TEST(DynamicPosition, DecodeStepMatchesTheCachedForward) {
  for (Device d : test::devices()) {
    for (int64_t window : {int64_t{0}, int64_t{3}}) {
      StreamOrDevice dev = d;
      Device before = default_device();
      set_default_device(d);
      models::LlamaConfig c;
      c.vocab_size = 64;
      c.hidden_size = 32;
      c.intermediate_size = 48;
      c.num_hidden_layers = 2;
      c.num_attention_heads = 4;
      c.num_key_value_heads = 2;
      c.head_dim = 8;
      c.rope_theta = 10000;
      c.sliding_window = window;
      models::LlamaForCausalLM m(c, float32);
      m.fuse_projections();
      auto ids = test::int_values(9, 0, c.vocab_size - 1);
      std::vector<int32_t> tok(ids.begin(), ids.end());
      auto a = m.make_cache(), b = m.make_cache();
      a.reserve(16);
      b.reserve(16);
      array prompt(std::vector<int32_t>(tok.begin(), tok.begin() + 4), Shape{1, 4});
      eval(m(prompt, &a, true), m(prompt, &b, true));
      CapturedFunction step([&](const std::vector<array>& in) {
        return std::vector<array>{m.decode_step(in[0], in[1], in[2], b)};
      });
      for (int64_t pos = 4; pos < 9; ++pos) {
        array one(std::vector<int32_t>{tok[pos]}, Shape{1, 1});
        array want = m(one, &a, true);
        array got = step({copy(one, dev), copy(array(static_cast<int32_t>(pos)), dev),
                          copy(m.decode_mask(pos, b.capacity()), dev)})[0];
        b.set_offset(pos + 1);
        KILN_EXPECT_CLOSE(test::to_doubles(got), test::to_doubles(want), float32,
                          test::device_name(d) + " window " + std::to_string(window) + " position " +
                              std::to_string(pos));
      }
      EXPECT_EQ(b.offset(), a.offset());
      set_default_device(before);
    }
  }
  test::note_gpu_skip();
}

}  // namespace
}  // namespace kiln
