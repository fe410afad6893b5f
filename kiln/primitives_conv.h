// The primitives behind convolutions. Convolution is the whole operation, with an optional
// fused epilogue (bias, residual, activation): cuDNN runs it on CUDA, im2col + GEMM on the CPU.
// Im2Col gathers each output position's receptive field into a row, so that a convolution is
// one (batched) matrix product; it serves the input-dilated (transposed) convolutions. Pool is
// max or average pooling in one pass over the input, padding handled by the kernel.
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

enum class PoolKind { max, avg };

// Pooling of x (N, S_1 .. S_d, C), row-contiguous, d = 1..3, into (N, O_1 .. O_d, C), O_i =
// floor((S_i + 2 pad_i - dilation_i (k_i - 1) - 1) / stride_i) + 1. Window taps at
// o_i * stride_i + q_i * dilation_i - pad_i; taps outside the input are skipped: max never picks
// them (a window of padding only gives the lowest value, -inf for floats) and NaN wins; avg sums
// in float32 (float64 for float64) and divides by the window's size, or by its count of real
// inputs without count_include_pad. max takes bool, integer and floating dtypes, avg floating
// ones; the output has the input's dtype.
class Pool : public Primitive {
 public:
  Pool(PoolKind kind, std::vector<int> kernel, std::vector<int> stride, std::vector<int> padding,
       std::vector<int> dilation, bool count_include_pad)
      : kind(kind),
        kernel(std::move(kernel)),
        stride(std::move(stride)),
        padding(std::move(padding)),
        dilation(std::move(dilation)),
        count_include_pad(count_include_pad) {}
  const char* name() const override { return "pool"; }
  void print(std::ostream& os) const override;
  PoolKind kind;
  std::vector<int> kernel, stride, padding, dilation;
  bool count_include_pad;
};

}  // namespace kiln
