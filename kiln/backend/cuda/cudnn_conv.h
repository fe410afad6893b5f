// cuDNN behind the CUDA conv kernel (kiln/backend/cuda/conv.cu).
#pragma once

#include "kiln/array.h"
#include "kiln/primitives_conv.h"

namespace kiln::cuda {

// Device pointers of a Convolution node's operands; bias and residual may be null.
struct ConvOperands {
  const void* x;
  const void* w;
  const void* bias;
  const void* residual;
  void* y;
};

// Runs the node's convolution on cuDNN into ops.y and returns true, or returns false (having done
// nothing) when this build has no cuDNN or cuDNN does not support the case. x and w are the
// shapes of the operands ops.x and ops.w point to (row-contiguous, channels-last; the caller may
// have padded the channels). epilogue_done tells whether cuDNN also applied bias, residual and
// activation (its fused call) or only convolved.
bool cudnn_conv(const Convolution& p, const Shape& x, const Shape& w, const array& out, const ConvOperands& ops,
                bool& epilogue_done);

}  // namespace kiln::cuda
