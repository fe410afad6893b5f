// Convolutions and pooling, channels-last as in MLX: inputs (N, *spatial, C), convolution
// weights (C_out, *kernel, C_in / groups), outputs (N, *out_spatial, C_out). Loaders convert
// PyTorch's channels-first weights (kiln/nn does). 1 to 3 spatial dimensions.
#pragma once

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln {

// The general form: per spatial axis a stride, padding before (lo) and after (hi) — negative
// values crop —, a kernel dilation and an input dilation (zeros inserted between inputs, which
// makes transposed convolutions); `flip` turns the kernel around (true convolution rather than
// correlation). Empty vectors mean 1 (strides, dilations) or 0 (padding). groups divides both
// C_in and C_out. The result has the promoted floating dtype of input and weight.
array conv_general(const array& input, const array& weight, std::vector<int> stride = {},
                   std::vector<int> padding_lo = {}, std::vector<int> padding_hi = {},
                   std::vector<int> kernel_dilation = {}, std::vector<int> input_dilation = {}, int groups = 1,
                   bool flip = false, StreamOrDevice s = {});

// PyTorch's conv1d/2d/3d (cross-correlation, symmetric zero padding).
array conv1d(const array& input, const array& weight, int stride = 1, int padding = 0, int dilation = 1,
             int groups = 1, StreamOrDevice s = {});
array conv2d(const array& input, const array& weight, std::pair<int, int> stride = {1, 1},
             std::pair<int, int> padding = {0, 0}, std::pair<int, int> dilation = {1, 1}, int groups = 1,
             StreamOrDevice s = {});
array conv3d(const array& input, const array& weight, std::array<int, 3> stride = {1, 1, 1},
             std::array<int, 3> padding = {0, 0, 0}, std::array<int, 3> dilation = {1, 1, 1}, int groups = 1,
             StreamOrDevice s = {});

// What conv2d_fused applies last.
enum class ConvActivation { none, relu, relu6 };

// activation(conv2d(input, weight) + bias + residual) as one operation, so that the epilogue of a
// convolution (a folded batch norm's shift, a residual connection, ReLU) costs no extra pass over
// memory. bias is (C_out,); residual broadcasts to the output's shape. Both are optional.
array conv2d_fused(const array& input, const array& weight, const std::optional<array>& bias,
                   const std::optional<array>& residual, ConvActivation activation,
                   std::pair<int, int> stride = {1, 1}, std::pair<int, int> padding = {0, 0},
                   std::pair<int, int> dilation = {1, 1}, int groups = 1, StreamOrDevice s = {});

// PyTorch's conv_transpose (the gradient of conv with respect to its input): output size
// (S - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1. The weight is
// channels-last too, (C_out, *kernel, C_in / groups); PyTorch's (C_in, C_out / groups, *kernel)
// maps to it by moving the axes (kiln/nn does, per group).
array conv_transpose1d(const array& input, const array& weight, int stride = 1, int padding = 0,
                       int dilation = 1, int output_padding = 0, int groups = 1, StreamOrDevice s = {});
array conv_transpose2d(const array& input, const array& weight, std::pair<int, int> stride = {1, 1},
                       std::pair<int, int> padding = {0, 0}, std::pair<int, int> dilation = {1, 1},
                       std::pair<int, int> output_padding = {0, 0}, int groups = 1, StreamOrDevice s = {});

// Pooling over the spatial axes of (N, *spatial, C) with PyTorch's semantics: padding with -inf
// (max) or zeros counted in the average (avg, count_include_pad) or not; ceil_mode is not
// supported. Empty stride means the kernel size.
array max_pool(const array& input, std::vector<int> kernel, std::vector<int> stride = {},
               std::vector<int> padding = {}, std::vector<int> dilation = {}, StreamOrDevice s = {});
array avg_pool(const array& input, std::vector<int> kernel, std::vector<int> stride = {},
               std::vector<int> padding = {}, bool count_include_pad = true, StreamOrDevice s = {});
// PyTorch's adaptive average pooling to `output` sizes: output index i averages input
// [floor(i * S / O), ceil((i + 1) * S / O)).
array adaptive_avg_pool(const array& input, std::vector<int64_t> output, StreamOrDevice s = {});

}  // namespace kiln
