// The index map of im2col (see Im2Col in kiln/primitives_conv.h), shared by both backends so they
// gather the same elements. Host and device code.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/array.h"
#include "kiln/primitives_conv.h"
#include "kiln/types.h"

namespace kiln::conv {

constexpr int kMaxSpatial = 3;

struct Im2ColGeometry {
  int d = 0;             // spatial dimensions
  int64_t C = 0, G = 1, Cg = 0;
  int64_t S[kMaxSpatial] = {}, O[kMaxSpatial] = {}, K[kMaxSpatial] = {};
  int64_t stride[kMaxSpatial] = {}, pad[kMaxSpatial] = {}, dil[kMaxSpatial] = {}, idil[kMaxSpatial] = {};

  // Offset in the row-contiguous input of the channel-0 element of output row r (the output
  // without its innermost Cg axis), or -1 when the row reads padding or a hole of a dilated input.
  KILN_HD int64_t source_row(int64_t r) const {
    int64_t q[kMaxSpatial], o[kMaxSpatial];
    for (int j = d - 1; j >= 0; --j) {
      q[j] = r % K[j];
      r /= K[j];
    }
    const int64_t g = r % G;
    r /= G;
    for (int j = d - 1; j >= 0; --j) {
      o[j] = r % O[j];
      r /= O[j];
    }
    int64_t off = r;  // the batch index
    for (int j = 0; j < d; ++j) {
      int64_t p = o[j] * stride[j] + q[j] * dil[j] - pad[j];
      if (p < 0 || p % idil[j] != 0) return -1;
      p /= idil[j];
      if (p >= S[j]) return -1;
      off = off * S[j] + p;
    }
    return off * C + g * Cg;
  }
};

// The geometry of a channels-last input `in` gathered for `out` (axes 1..d spatial in both), with
// per-axis kernel sizes, strides, padding before, dilations and input dilations (empty: 1).
inline Im2ColGeometry make_geometry(const array& in, const array& out, int groups, const std::vector<int64_t>& kernel,
                                    const std::vector<int>& stride, const std::vector<int>& pad_lo,
                                    const std::vector<int>& dilation, const std::vector<int>& input_dilation) {
  Im2ColGeometry g;
  g.d = static_cast<int>(kernel.size());
  g.C = in.shape().back();
  g.G = groups;
  g.Cg = g.C / g.G;
  for (int j = 0; j < g.d; ++j) {
    g.S[j] = in.shape(1 + j);
    g.O[j] = out.shape(1 + j);
    g.K[j] = kernel[j];
    g.stride[j] = stride[j];
    g.pad[j] = pad_lo[j];
    g.dil[j] = dilation[j];
    g.idil[j] = input_dilation.empty() ? 1 : input_dilation[j];
  }
  return g;
}

// The geometry of an Im2Col node from its primitive and shapes (the input is row-contiguous).
inline Im2ColGeometry im2col_geometry(const Im2Col& p, const array& in, const array& out) {
  return make_geometry(in, out, p.groups, std::vector<int64_t>(p.kernel.begin(), p.kernel.end()), p.stride,
                       p.pad_lo, p.dilation, p.input_dilation);
}

// The geometry of a Convolution node's input (inputs[0]) and weight (inputs[1]).
inline Im2ColGeometry conv_geometry(const Convolution& p, const array& in, const array& w, const array& out) {
  return make_geometry(in, out, p.groups, Shape(w.shape().begin() + 1, w.shape().end() - 1), p.stride, p.pad_lo,
                       p.dilation, {});
}

}  // namespace kiln::conv
