// A small thread pool for CPU kernels. KILN_NUM_THREADS sets the size (default: the hardware
// threads).
#pragma once

#include <cstdint>
#include <functional>

namespace kiln::cpu {

int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks covering [0, n), in parallel when n is at least
// `grain` per thread. Returns after every chunk is done; the first exception is rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace kiln::cpu
