// Activation functions with PyTorch's definitions, and a module per function (nn.ReLU, nn.GELU,
// ...) so that containers such as Sequential can hold them. Integer and bool inputs compute in
// float32, except in relu and relu6, which keep integer dtypes; floating inputs keep their dtype.
#pragma once

#include <string>

#include "kiln/array.h"
#include "kiln/nn/module.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_reduce.h"

namespace kiln::nn {

// The elementwise ops that are activations too, so that nn::sigmoid etc. read as in PyTorch.
using kiln::log_softmax;
using kiln::sigmoid;
using kiln::softmax;
using kiln::tanh;

array relu(const array& x, StreamOrDevice s = {});         // max(x, 0)
array relu6(const array& x, StreamOrDevice s = {});        // min(max(x, 0), 6)
array silu(const array& x, StreamOrDevice s = {});         // x * sigmoid(x)
array gelu(const array& x, StreamOrDevice s = {});         // x/2 * (1 + erf(x / sqrt(2))), exact
array gelu_tanh(const array& x, StreamOrDevice s = {});    // x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
array hardsigmoid(const array& x, StreamOrDevice s = {});  // relu6(x + 3) / 6
array hardswish(const array& x, StreamOrDevice s = {});    // x * hardsigmoid(x)
// log(1 + exp(beta x)) / beta, and x itself where beta x > threshold.
array softplus(const array& x, float beta = 1.0f, float threshold = 20.0f, StreamOrDevice s = {});
array leaky_relu(const array& x, float negative_slope = 0.01f, StreamOrDevice s = {});  // x > 0 ? x : slope x
array elu(const array& x, float alpha = 1.0f, StreamOrDevice s = {});  // x > 0 ? x : alpha (exp(x) - 1)
array selu(const array& x, StreamOrDevice s = {});  // scale * elu(x, alpha) with the self-normalizing constants
// max(0, x) + min(0, alpha (exp(x / alpha) - 1)); alpha must be non-zero (ValueError).
array celu(const array& x, float alpha = 1.0f, StreamOrDevice s = {});
array mish(const array& x, StreamOrDevice s = {});         // x * tanh(softplus(x))
array log_sigmoid(const array& x, StreamOrDevice s = {});  // log(sigmoid(x)), without overflow
array softsign(const array& x, StreamOrDevice s = {});     // x / (1 + |x|)
// clip(x, min_val, max_val); ValueError unless min_val < max_val.
array hardtanh(const array& x, float min_val = -1.0f, float max_val = 1.0f, StreamOrDevice s = {});
// a * sigmoid(b) with a, b the two halves of `axis` (its length must be even: ValueError).
array glu(const array& x, int axis = -1, StreamOrDevice s = {});

// The modules: no parameters, the function's arguments kept.
#define KILN_NN_ACTIVATION(Name, fn)                                                              \
  class Name : public Module {                                                                    \
   public:                                                                                        \
    array operator()(const array& x, StreamOrDevice s = {}) const { return fn(x, s); }           \
    array forward(const array& x) const override { return fn(x); }                               \
  };
KILN_NN_ACTIVATION(ReLU, relu)
KILN_NN_ACTIVATION(ReLU6, relu6)
KILN_NN_ACTIVATION(SiLU, silu)
KILN_NN_ACTIVATION(SELU, selu)
KILN_NN_ACTIVATION(Mish, mish)
KILN_NN_ACTIVATION(Sigmoid, sigmoid)
KILN_NN_ACTIVATION(Tanh, tanh)
KILN_NN_ACTIVATION(Hardsigmoid, hardsigmoid)
KILN_NN_ACTIVATION(Hardswish, hardswish)
KILN_NN_ACTIVATION(LogSigmoid, log_sigmoid)
KILN_NN_ACTIVATION(Softsign, softsign)
#undef KILN_NN_ACTIVATION

// approximate "none" (erf) or "tanh", as PyTorch's nn.GELU; anything else is a ValueError.
class GELU : public Module {
 public:
  explicit GELU(const std::string& approximate = "none");
  array operator()(const array& x, StreamOrDevice s = {}) const;
  array forward(const array& x) const override { return (*this)(x); }

 private:
  bool tanh_;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : slope_(negative_slope) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return leaky_relu(x, slope_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  float slope_;
};

class ELU : public Module {
 public:
  explicit ELU(float alpha = 1.0f) : alpha_(alpha) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return elu(x, alpha_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  float alpha_;
};

class CELU : public Module {
 public:
  explicit CELU(float alpha = 1.0f);
  array operator()(const array& x, StreamOrDevice s = {}) const { return celu(x, alpha_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  float alpha_;
};

class Softplus : public Module {
 public:
  explicit Softplus(float beta = 1.0f, float threshold = 20.0f) : beta_(beta), threshold_(threshold) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return softplus(x, beta_, threshold_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  float beta_, threshold_;
};

class Hardtanh : public Module {
 public:
  explicit Hardtanh(float min_val = -1.0f, float max_val = 1.0f);
  array operator()(const array& x, StreamOrDevice s = {}) const { return hardtanh(x, min_, max_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  float min_, max_;
};

// Softmax and LogSoftmax along `axis` (PyTorch's dim; the last by default).
class Softmax : public Module {
 public:
  explicit Softmax(int axis = -1) : axis_(axis) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return softmax(x, axis_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  int axis_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int axis = -1) : axis_(axis) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return log_softmax(x, axis_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  int axis_;
};

class GLU : public Module {
 public:
  explicit GLU(int axis = -1) : axis_(axis) {}
  array operator()(const array& x, StreamOrDevice s = {}) const { return glu(x, axis_, s); }
  array forward(const array& x) const override { return (*this)(x); }

 private:
  int axis_;
};

}  // namespace kiln::nn
