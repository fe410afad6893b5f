// Memory accounting: active memory follows live arrays, the cache empties on request, and the
// memory limit stops allocations past it with an error naming the limit.
#include <gtest/gtest.h>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

constexpr size_t kMiB = size_t(1) << 20;

// Restores the memory and cache limits however a test ends.
struct LimitGuard {
  size_t memory = get_memory_limit();
  size_t cache = set_cache_limit(size_t(4) << 30);
  ~LimitGuard() {
    set_memory_limit(memory);
    set_cache_limit(cache);
  }
};

// Memory readings are exact only once no asynchronous evaluation still holds arrays.
void settle() { synchronize(); }

}  // namespace

TEST(Memory, ActiveFollowsLiveArrays) {
  settle();
  for (Device dev : test::devices()) {
    size_t before = get_active_memory();
    {
      array a = zeros({4 * kMiB / 4}, float32, dev);
      a.eval();
      size_t one = get_active_memory();
      EXPECT_GE(one, before + 4 * kMiB) << test::device_name(dev);
      array b = ones({2 * kMiB}, uint8, dev);
      b.eval();
      EXPECT_GE(get_active_memory(), one + 2 * kMiB);
      array v = transpose(reshape(a, {1024, 1024}, dev), dev);  // a view adds nothing
      v.eval();
      EXPECT_LT(get_active_memory(), one + 2 * kMiB + 4096);
    }
    EXPECT_EQ(get_active_memory(), before) << "arrays that died still count on " << test::device_name(dev);
    // An array made from host data counts too.
    {
      std::vector<float> host(kMiB / 4, 1.f);
      array h(host, {static_cast<int64_t>(host.size())});
      EXPECT_GE(get_active_memory(), before + kMiB);
    }
    EXPECT_EQ(get_active_memory(), before);
  }
}

TEST(Memory, PeakAndReset) {
  settle();
  for (Device dev : test::devices()) {
    reset_peak_memory();
    EXPECT_EQ(get_peak_memory(), get_active_memory());
    size_t base = get_active_memory();
    {
      array a = zeros({8 * kMiB}, uint8, dev);
      a.eval();
    }
    EXPECT_GE(get_peak_memory(), base + 8 * kMiB);
    EXPECT_EQ(get_active_memory(), base);
    reset_peak_memory();
    EXPECT_EQ(get_peak_memory(), base);
  }
}

TEST(Memory, ClearCacheEmptiesIt) {
  LimitGuard guard;
  for (Device dev : test::devices()) {
    // On the GPU a block large enough to take whole pool chunks of its own, so that letting go
    // of it frees them (the pool keeps the unused part of chunks that live arrays still share).
    const int64_t bytes = dev.type == Device::gpu ? 256 * kMiB : 3 * kMiB;
    {
      array a = zeros({bytes}, uint8, dev);
      a.eval();
    }
    synchronize();  // GPU frees are stream-ordered
    EXPECT_GE(get_cache_memory(), static_cast<size_t>(bytes))
        << "freed memory was not kept for reuse on " << test::device_name(dev);
    size_t cached = get_cache_memory();
    clear_cache();
    if (!gpu_available()) {
      EXPECT_EQ(get_cache_memory(), 0u);
    } else if (dev.type == Device::cpu) {
      EXPECT_LT(get_cache_memory(), cached);  // the GPU pool's own remainder may stay
    } else {
      EXPECT_LE(get_cache_memory() + 200 * kMiB, cached) << "clear_cache kept the freed block";
      EXPECT_LT(get_cache_memory(), 64 * kMiB);
    }
  }
  // A cache limit of 0 keeps nothing on the host.
  set_cache_limit(0);
  {
    array a = zeros({kMiB}, uint8, Device(Device::cpu));
    a.eval();
  }
  if (!gpu_available()) {
    EXPECT_EQ(get_cache_memory(), 0u);
  }
}

TEST(Memory, LimitStopsLargeAllocations) {
  settle();
  LimitGuard guard;
  for (Device dev : test::devices()) {
    size_t limit = get_active_memory() + 4 * kMiB;
    size_t old = set_memory_limit(limit);
    EXPECT_EQ(old, guard.memory);
    EXPECT_EQ(get_memory_limit(), limit);
    // Under the limit: fine.
    array small = zeros({kMiB}, uint8, dev);
    small.eval();
    // Past it: a RuntimeError that names the limit, and nothing is left allocated.
    array big = zeros({16 * kMiB}, uint8, dev);
    size_t active = get_active_memory();
    try {
      big.eval();
      ADD_FAILURE() << "allocation past the memory limit succeeded on " << test::device_name(dev);
    } catch (const RuntimeError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(limit)), std::string::npos) << msg;
      EXPECT_NE(msg.find("limit"), std::string::npos) << msg;
    }
    EXPECT_FALSE(big.is_available());
    EXPECT_EQ(get_active_memory(), active);
    // Host data too.
    std::vector<uint8_t> host(16 * kMiB);
    KILN_EXPECT_THROW_MSG(array(host, {static_cast<int64_t>(host.size())}), RuntimeError, std::to_string(limit));
    // Restoring the limit makes the same allocation work.
    EXPECT_EQ(set_memory_limit(old), limit);
    big.eval();
    EXPECT_TRUE(big.is_available());
    EXPECT_EQ(big.to_vector<uint8_t>()[12345], 0);
  }
}
