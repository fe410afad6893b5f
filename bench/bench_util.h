// Timing helpers for the benchmarks: median of repeated runs, device synchronised.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::bench {

// Median seconds per call of fn over `reps` timed batches of `inner` calls, after a warm-up.
// Synchronises all devices around each batch so GPU work is counted.
inline double time_median(const std::function<void()>& fn, int reps = 7, int inner = 5) {
  fn();
  synchronize();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < inner; ++i) fn();
    synchronize();
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count() / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace kiln::bench
