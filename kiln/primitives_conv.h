// The primitive behind convolutions: im2col, which gathers each output position's receptive
// field into a row, so that a convolution is one (batched) matrix product. Both backends
// implement it; the products use matmul's kernels.
#pragma once

#include <vector>

#include "kiln/primitive.h"

namespace kiln {

// Input (N, S_1 .. S_d, C) channels-last, d = 1..3, C = groups * Cg. Output
// (N, O_1 .. O_d, groups, k_1 .. k_d, Cg): element (n, o, g, q, c) is the input at spatial index
// p_i = (o_i * stride_i + q_i * dilation_i - pad_lo_i) / input_dilation_i (positions between
// dilated inputs and outside the input read 0), channel g * Cg + c.
class Im2Col : public Primitive {
 public:
  Im2Col(std::vector<int> kernel, std::vector<int> stride, std::vector<int> pad_lo, std::vector<int> dilation,
         std::vector<int> input_dilation, int groups)
      : kernel(std::move(kernel)),
        stride(std::move(stride)),
        pad_lo(std::move(pad_lo)),
        dilation(std::move(dilation)),
        input_dilation(std::move(input_dilation)),
        groups(groups) {}
  const char* name() const override { return "im2col"; }
  void print(std::ostream& os) const override;
  std::vector<int> kernel, stride, pad_lo, dilation, input_dilation;
  int groups;
};

}  // namespace kiln
