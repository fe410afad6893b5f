#include "kiln/nn/activations.h"

#include "kiln/ops_shape.h"

namespace kiln::nn {

namespace {

array as_float(const array& x, const StreamOrDevice& s) { return is_inexact(x.dtype()) ? x : astype(x, float32, s); }

}  // namespace

array relu(const array& x, StreamOrDevice s) {
  if (x.dtype() == bool_) return x;
  return maximum(x, scalar_like(0.0, x), s);
}

array relu6(const array& x, StreamOrDevice s) {
  return minimum(maximum(x, scalar_like(0.0, x), s), scalar_like(6.0, x), s);
}

array silu(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return multiply(xf, sigmoid(xf, s), s);
}

array gelu(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  array inner = erf(multiply(xf, scalar_like(0.70710678118654752440, xf), s), s);  // erf(x / sqrt(2))
  array half_x = multiply(xf, scalar_like(0.5, xf), s);
  return multiply(half_x, add(inner, scalar_like(1.0, xf), s), s);
}

array gelu_tanh(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  array cube = multiply(multiply(xf, xf, s), xf, s);
  array inner = add(xf, multiply(cube, scalar_like(0.044715, xf), s), s);
  array t = tanh(multiply(inner, scalar_like(0.79788456080286535588, xf), s), s);  // sqrt(2 / pi)
  array half_x = multiply(xf, scalar_like(0.5, xf), s);
  return multiply(half_x, add(t, scalar_like(1.0, xf), s), s);
}

array hardsigmoid(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return divide(relu6(add(xf, scalar_like(3.0, xf), s), s), scalar_like(6.0, xf), s);
}

array hardswish(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return multiply(xf, hardsigmoid(xf, s), s);
}

array softplus(const array& x, float beta, float threshold, StreamOrDevice s) {
  array xf = as_float(x, s);
  array bx = multiply(xf, scalar_like(beta, xf), s);
  array soft = divide(log1p(exp(bx, s), s), scalar_like(beta, xf), s);
  return where(greater(bx, scalar_like(threshold, xf), s), xf, soft, s);
}

array leaky_relu(const array& x, float negative_slope, StreamOrDevice s) {
  array xf = as_float(x, s);
  return where(greater(xf, scalar_like(0.0, xf), s), xf, multiply(xf, scalar_like(negative_slope, xf), s), s);
}

array elu(const array& x, float alpha, StreamOrDevice s) {
  array xf = as_float(x, s);
  // expm1 keeps the small negative values accurate; the positive branch never reads it.
  array neg = multiply(expm1(minimum(xf, scalar_like(0.0, xf), s), s), scalar_like(alpha, xf), s);
  return where(greater(xf, scalar_like(0.0, xf), s), xf, neg, s);
}

array selu(const array& x, StreamOrDevice s) {
  // The constants of Klambauer et al. (2017), which make zero mean and unit variance a fixed point.
  constexpr double kAlpha = 1.6732632423543772848170429916717;
  constexpr double kScale = 1.0507009873554804934193349852946;
  array xf = as_float(x, s);
  array neg = multiply(expm1(minimum(xf, scalar_like(0.0, xf), s), s), scalar_like(kAlpha, xf), s);
  return multiply(where(greater(xf, scalar_like(0.0, xf), s), xf, neg, s), scalar_like(kScale, xf), s);
}

array celu(const array& x, float alpha, StreamOrDevice s) {
  if (alpha == 0.0f) fail<ValueError>("[celu] alpha must be non-zero");
  array xf = as_float(x, s);
  array zero = scalar_like(0.0, xf);
  array scaled = divide(minimum(xf, zero, s), scalar_like(alpha, xf), s);
  array neg = multiply(expm1(scaled, s), scalar_like(alpha, xf), s);
  return add(maximum(xf, zero, s), minimum(neg, zero, s), s);
}

array mish(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return multiply(xf, tanh(softplus(xf, 1.0f, 20.0f, s), s), s);
}

array log_sigmoid(const array& x, StreamOrDevice s) {
  // min(x, 0) - log(1 + exp(-|x|)): exp never overflows.
  array xf = as_float(x, s);
  array tail = log1p(exp(negative(abs(xf, s), s), s), s);
  return subtract(minimum(xf, scalar_like(0.0, xf), s), tail, s);
}

array softsign(const array& x, StreamOrDevice s) {
  array xf = as_float(x, s);
  return divide(xf, add(abs(xf, s), scalar_like(1.0, xf), s), s);
}

array hardtanh(const array& x, float min_val, float max_val, StreamOrDevice s) {
  if (!(min_val < max_val)) {
    fail<ValueError>("[hardtanh] min_val must be less than max_val, got ", min_val, " and ", max_val);
  }
  array xf = as_float(x, s);
  return clip(xf, scalar_like(min_val, xf), scalar_like(max_val, xf), s);
}

array glu(const array& x, int axis, StreamOrDevice s) {
  int nd = x.ndim();
  if (axis < -nd || axis >= nd) fail<IndexError>("[glu] axis ", axis, " is out of range for shape ", x.shape());
  int ax = axis < 0 ? axis + nd : axis;
  int64_t n = x.shape(ax);
  if (n % 2 != 0) fail<ValueError>("[glu] axis ", axis, " must have an even length, got shape ", x.shape());
  array xf = as_float(x, s);
  Shape start(nd, 0), mid = xf.shape(), stop = xf.shape();
  mid[ax] = n / 2;
  Shape second(nd, 0);
  second[ax] = n / 2;
  array a = slice(xf, start, mid, {}, s);
  array b = slice(xf, second, stop, {}, s);
  return multiply(a, sigmoid(b, s), s);
}

GELU::GELU(const std::string& approximate) : tanh_(approximate == "tanh") {
  if (approximate != "none" && approximate != "tanh") {
    fail<ValueError>("[GELU] approximate must be 'none' or 'tanh', got '", approximate, "'");
  }
}

array GELU::operator()(const array& x, StreamOrDevice s) const { return tanh_ ? gelu_tanh(x, s) : gelu(x, s); }

CELU::CELU(float alpha) : alpha_(alpha) {
  if (alpha == 0.0f) fail<ValueError>("[CELU] alpha must be non-zero");
}

Hardtanh::Hardtanh(float min_val, float max_val) : min_(min_val), max_(max_val) {
  if (!(min_val < max_val)) {
    fail<ValueError>("[Hardtanh] min_val must be less than max_val, got ", min_val, " and ", max_val);
  }
}

}  // namespace kiln::nn
