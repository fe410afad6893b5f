// The CPU thread pool (kiln/backend/cpu/parallel.h): every index exactly once, errors passed on,
// regions back to back (the workers' spin-then-sleep hand-over), regions from several threads at
// once, and regions inside regions.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kiln/backend/cpu/parallel.h"

namespace kiln::cpu {
namespace {

// Runs parallel_for(n, grain) and checks that each index in [0, n) was visited exactly once.
void expect_each_index_once(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  for (auto& h : hits) h.store(0);
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    ASSERT_LE(0, b);
    ASSERT_LE(b, e);
    ASSERT_LE(e, n);
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " index " << i;
}

TEST(Parallel, EachIndexOnce) {
  std::mt19937 rng(std::random_device{}());
  for (int64_t n : {1, 2, 3, 7, 64, 1000, 4097}) {
    for (int64_t grain : {1, 3, 100, 5000}) expect_each_index_once(n, grain);
  }
  for (int r = 0; r < 50; ++r) {
    expect_each_index_once(std::uniform_int_distribution<int64_t>(1, 3000)(rng),
                           std::uniform_int_distribution<int64_t>(1, 50)(rng));
  }
}

TEST(Parallel, ManyRegionsBackToBack) {
  // Tiny regions one after another: workers still finishing one meet the next one's start.
  for (int r = 0; r < 20000; ++r) {
    std::atomic<int64_t> sum{0};
    const int64_t n = 2 + r % 9;
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum.fetch_add(i + r);
    });
    ASSERT_EQ(sum.load(), n * (n - 1) / 2 + n * r) << "region " << r;
  }
}

TEST(Parallel, ErrorsReachTheCallerAndThePoolGoesOn) {
  for (int r = 0; r < 100; ++r) {
    EXPECT_THROW(parallel_for(64, 1,
                              [&](int64_t b, int64_t) {
                                if (b == 0) throw std::runtime_error("chunk failed");
                              }),
                 std::runtime_error);
    expect_each_index_once(64, 1);
  }
}

TEST(Parallel, RegionsFromSeveralThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 2000; ++r) {
        std::atomic<int64_t> sum{0};
        const int64_t n = 10 + (r + t) % 50;
        parallel_for(n, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
        });
        if (sum.load() != n * (n - 1) / 2) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Parallel, NestedRegions) {
  std::atomic<int64_t> sum{0};
  parallel_for(8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      parallel_for(100, 1, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) sum.fetch_add(i * 100 + j);
      });
    }
  });
  EXPECT_EQ(sum.load(), 800 * 799 / 2);
}

}  // namespace
}  // namespace kiln::cpu
