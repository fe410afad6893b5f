// The primitives behind convolutions. Convolution is the whole operation, with an optional
// fused epilogue (bias, residual, activation): cuDNN runs it on CUDA, im2col + GEMM on the CPU.
// Im2Col gathers each output position's receptive field into a row, so that a convolution is
// one (batched) matrix product; it serves the input-dilated (transposed) convolutions.
#pragma once

#include <vector>

#include "kiln/ops_conv.h"
#include "kiln/primitive.h"

namespace kiln {

// Input (N, S_1 .. S_d, C) channels-last, d = 1..3, C = groups * Cg. Output
// (N, O_1 .. O_d, groups, k_1 .. k_d, Cg): element (n, o, g, q, c) is the input at spatial index
// p_i = (o_i * stride_i + q_i * dilation_i - pad_lo_i) / input_dilation_i (positions between
// dilated inputs and outside the input read 0), channel g * Cg + c.
// y = act(conv(x, w) + bias + residual), cross-correlation. Inputs: x (N, S_1 .. S_d, C) and w
// (C_out, k_1 .. k_d, C / groups), row-contiguous, one floating dtype; then bias (C_out,) and
// residual (the output's shape) when the flags say so. d = 1..3, zero padding pad_lo before and
// pad_hi after each spatial axis (both >= 0).
class Convolution : public Primitive {
 public:
  Convolution(std::vector<int> stride, std::vector<int> pad_lo, std::vector<int> pad_hi, std::vector<int> dilation,
              int groups, bool has_bias, bool has_residual, ConvActivation activation)
      : stride(std::move(stride)),
        pad_lo(std::move(pad_lo)),
        pad_hi(std::move(pad_hi)),
        dilation(std::move(dilation)),
        groups(groups),
        has_bias(has_bias),
        has_residual(has_residual),
        activation(activation) {}
  const char* name() const override { return "conv"; }
  void print(std::ostream& os) const override;
  std::vector<int> stride, pad_lo, pad_hi, dilation;
  int groups;
  bool has_bias, has_residual;
  ConvActivation activation;
};

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
