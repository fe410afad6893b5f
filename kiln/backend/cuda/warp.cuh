// Warp shuffles of any value of at most 8 bytes (bool, 64-bit and complex accumulators included).
#pragma once

namespace kiln::cuda {

template <class V, class F>
__device__ __forceinline__ V shuffle_words(V v, F f) {
  static_assert(sizeof(V) <= 8, "shuffle of a value wider than 8 bytes");
  if constexpr (sizeof(V) <= 4) {
    unsigned w = 0;
    memcpy(&w, &v, sizeof(V));
    w = f(w);
    memcpy(&v, &w, sizeof(V));
  } else {
    unsigned long long w;
    memcpy(&w, &v, sizeof(V));
    w = f(w);
    memcpy(&v, &w, sizeof(V));
  }
  return v;
}

}  // namespace kiln::cuda
