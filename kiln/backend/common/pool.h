// The window geometry of pooling (Pool in kiln/primitives_conv.h), shared by both backends so
// that they visit the same taps in the same order. Host and device code.
#pragma once

#include <cstdint>

#include "kiln/array.h"
#include "kiln/primitives_conv.h"
#include "kiln/types.h"

namespace kiln::pool {

// Always three spatial axes: fewer are padded in front with axes of size 1 (one tap, no
// padding), so kernels need no loop over the number of axes.
struct Geometry {
  int64_t N = 0, C = 0;
  int64_t S[3] = {}, O[3] = {}, K[3] = {}, stride[3] = {}, pad[3] = {}, dil[3] = {};

  // The taps [lo, hi) of axis j that land inside the input for output index o.
  KILN_HD void taps(int j, int64_t o, int64_t& lo, int64_t& hi) const {
    const int64_t start = o * stride[j] - pad[j];  // the position of tap 0
    lo = start >= 0 ? 0 : (dil[j] - 1 - start) / dil[j];
    const int64_t room = S[j] - start;  // tap q is inside while q * dil < room
    hi = room <= 0 ? 0 : (room + dil[j] - 1) / dil[j];
    if (hi > K[j]) hi = K[j];
    if (hi < lo) hi = lo;
  }
  // Output row r (n, o_0, o_1, o_2 row-major) into its spatial indices o; returns n.
  KILN_HD int64_t split(int64_t r, int64_t (&o)[3]) const {
    for (int j = 2; j >= 0; --j) {
      const int64_t q = r / O[j];
      o[j] = r - q * O[j];
      r = q;
    }
    return r;
  }
  // Input position on axis j of tap q for output index o.
  KILN_HD int64_t pos(int j, int64_t o, int64_t q) const { return o * stride[j] + q * dil[j] - pad[j]; }
};

inline Geometry geometry(const Pool& p, const array& in, const array& out) {
  Geometry g;
  const int d = static_cast<int>(p.kernel.size());
  g.N = in.shape(0);
  g.C = in.shape().back();
  for (int j = 0; j < 3; ++j) {
    const int a = j - (3 - d);  // the primitive's axis, or < 0 for a unit one
    g.S[j] = a < 0 ? 1 : in.shape(1 + a);
    g.O[j] = a < 0 ? 1 : out.shape(1 + a);
    g.K[j] = a < 0 ? 1 : p.kernel[a];
    g.stride[j] = a < 0 ? 1 : p.stride[a];
    g.pad[j] = a < 0 ? 0 : p.padding[a];
    g.dil[j] = a < 0 ? 1 : p.dilation[a];
  }
  return g;
}

}  // namespace kiln::pool
