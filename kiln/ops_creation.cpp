#include "kiln/ops_creation.h"

#include <cmath>

#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_creation.h"

namespace kiln {

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("[", op, "] negative dimension in shape ", shape);
  }
}
}  // namespace

array full(Shape shape, const array& value, Dtype dtype, StreamOrDevice s) {
  check_shape(shape, "full");
  Stream st = to_stream(s);
  return copy(broadcast_to(astype(value, dtype, st), shape, st), st);
}

array full(Shape shape, const array& value, StreamOrDevice s) { return full(std::move(shape), value, value.dtype(), s); }

array full(Shape shape, double value, Dtype dtype, StreamOrDevice s) {
  return full(std::move(shape), array(value, dtype), dtype, s);
}

array zeros(Shape shape, Dtype dtype, StreamOrDevice s) {
  check_shape(shape, "zeros");
  return full(std::move(shape), 0.0, dtype, s);
}
array ones(Shape shape, Dtype dtype, StreamOrDevice s) {
  check_shape(shape, "ones");
  return full(std::move(shape), 1.0, dtype, s);
}
array zeros_like(const array& a, StreamOrDevice s) { return zeros(a.shape(), a.dtype(), s); }
array ones_like(const array& a, StreamOrDevice s) { return ones(a.shape(), a.dtype(), s); }
array full_like(const array& a, double value, StreamOrDevice s) { return full(a.shape(), value, a.dtype(), s); }

array arange(double start, double stop, double step, std::optional<Dtype> dtype, StreamOrDevice s) {
  if (step == 0) fail<ValueError>("[arange] step cannot be zero");
  if (!std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step)) {
    fail<ValueError>("[arange] start, stop and step must be finite, got ", start, ", ", stop, ", ", step);
  }
  auto integral = [](double v) { return std::floor(v) == v; };
  Dtype dt = dtype.value_or(integral(start) && integral(stop) && integral(step) ? int32 : float32);
  if (dt == bool_) fail<TypeError>("[arange] bool dtype is not supported");
  double n = std::ceil((stop - start) / step);
  int64_t size = n > 0 ? static_cast<int64_t>(n) : 0;
  return array(Shape{size}, dt, std::make_shared<Arange>(start, step), {}, to_stream(s));
}

array arange(double stop, std::optional<Dtype> dtype, StreamOrDevice s) { return arange(0, stop, 1, dtype, s); }

array linspace(double start, double stop, int64_t num, Dtype dtype, StreamOrDevice s) {
  if (num < 0) fail<ValueError>("[linspace] number of samples must be non-negative, got ", num);
  if (!is_inexact(dtype) && !is_integer(dtype)) fail<TypeError>("[linspace] dtype ", dtype, " is not supported");
  double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  return array(Shape{num}, dtype, std::make_shared<Arange>(start, step), {}, to_stream(s));
}

array eye(int64_t n, std::optional<int64_t> m, int k, Dtype dtype, StreamOrDevice s) {
  int64_t cols = m.value_or(n);
  if (n < 0 || cols < 0) fail<ValueError>("[eye] dimensions must be non-negative, got ", n, " x ", cols);
  Stream st = to_stream(s);
  array r = reshape(arange(0, static_cast<double>(n), 1, int64, st), {n, 1}, st);
  array c = reshape(arange(0, static_cast<double>(cols), 1, int64, st), {1, cols}, st);
  return astype(equal(add(r, scalar_like(k, r), st), c, st), dtype, st);
}

array identity(int64_t n, Dtype dtype, StreamOrDevice s) { return eye(n, n, 0, dtype, s); }

array tri(int64_t n, std::optional<int64_t> m, int k, Dtype dtype, StreamOrDevice s) {
  int64_t cols = m.value_or(n);
  if (n < 0 || cols < 0) fail<ValueError>("[tri] dimensions must be non-negative, got ", n, " x ", cols);
  Stream st = to_stream(s);
  array r = reshape(arange(0, static_cast<double>(n), 1, int64, st), {n, 1}, st);
  array c = reshape(arange(0, static_cast<double>(cols), 1, int64, st), {1, cols}, st);
  return astype(less_equal(c, add(r, scalar_like(k, r), st), st), dtype, st);
}

}  // namespace kiln
