#include "kiln/ops_conv.h"

#include <limits>
#include <numeric>

#include "kiln/ops.h"
#include "kiln/primitives_conv.h"

namespace kiln {

namespace {

// ", name=[a, b, ...]" (name given with its leading separator).
void put_field(std::ostream& os, const char* name, const std::vector<int>& v) {
  os << name;
  detail::put(os, v);
}

}  // namespace

void Im2Col::print(std::ostream& os) const {
  put_field(os, "im2col(kernel=", kernel);
  put_field(os, ", stride=", stride);
  put_field(os, ", pad_lo=", pad_lo);
  put_field(os, ", dilation=", dilation);
  put_field(os, ", input_dilation=", input_dilation);
  os << ", groups=" << groups << ")";
}

void Convolution::print(std::ostream& os) const {
  put_field(os, "conv(stride=", stride);
  put_field(os, ", pad_lo=", pad_lo);
  put_field(os, ", pad_hi=", pad_hi);
  put_field(os, ", dilation=", dilation);
  os << ", groups=" << groups << (has_bias ? ", bias" : "") << (has_residual ? ", residual" : "");
  if (activation == ConvActivation::relu) os << ", relu";
  if (activation == ConvActivation::relu6) os << ", relu6";
  os << ")";
}

void Pool::print(std::ostream& os) const {
  os << "pool(" << (kind == PoolKind::max ? "max" : "avg");
  put_field(os, ", kernel=", kernel);
  put_field(os, ", stride=", stride);
  put_field(os, ", padding=", padding);
  put_field(os, ", dilation=", dilation);
  if (kind == PoolKind::avg) os << ", count_include_pad=" << (count_include_pad ? "true" : "false");
  os << ")";
}

namespace {

// An empty list becomes `d` copies of `fill`; otherwise it must have d entries.
std::vector<int> per_axis(std::vector<int> v, int d, int fill, const char* op, const char* what) {
  if (v.empty()) return std::vector<int>(d, fill);
  if (static_cast<int>(v.size()) != d) {
    fail<ValueError>("[", op, "] ", what, " needs ", d, " values (one per spatial axis), got ", v.size());
  }
  return v;
}

void check_positive(const std::vector<int>& v, const char* op, const char* what) {
  for (int x : v)
    if (x < 1) fail<ValueError>("[", op, "] ", what, " must be positive, got ", x);
}

// Output size of spatial axis j of x, which must be positive.
int64_t out_size(const array& x, int j, int k, int stride, int lo, int hi, int dil, int idil, const char* op) {
  const int64_t S = x.shape(1 + j);
  int64_t D = S == 0 ? 0 : (S - 1) * idil + 1;
  int64_t span = static_cast<int64_t>(dil) * (k - 1) + 1;
  int64_t room = D + lo + hi - span;
  if (room < 0) {
    fail<ValueError>("[", op, "] the kernel (", k, ", dilation ", dil, ") is larger than spatial axis ", j,
                     " of the input (", S, " with padding ", lo, " + ", hi, ")");
  }
  return room / stride + 1;
}

struct Windows {
  array cols;  // (N, O..., G, k..., Cg)
  Shape out_spatial;
};

// im2col of a channels-last input (validated by the caller).
Windows windows(const array& x, const std::vector<int>& kernel, const std::vector<int>& stride,
                const std::vector<int>& lo, const std::vector<int>& hi, const std::vector<int>& dil,
                const std::vector<int>& idil, int groups, const char* op, Stream st) {
  const int d = static_cast<int>(kernel.size());
  Shape shape{x.shape(0)};
  Shape out_spatial;
  for (int j = 0; j < d; ++j) {
    out_spatial.push_back(out_size(x, j, kernel[j], stride[j], lo[j], hi[j], dil[j], idil[j], op));
  }
  shape.insert(shape.end(), out_spatial.begin(), out_spatial.end());
  shape.push_back(groups);
  for (int k : kernel) shape.push_back(k);
  shape.push_back(x.shape().back() / groups);
  array cols(shape, x.dtype(), std::make_shared<Im2Col>(kernel, stride, lo, dil, idil, groups),
             {contiguous(x, st)}, st);
  return {cols, out_spatial};
}

// Checks that groups divides the channels and the weight's input channels fit; returns the
// floating dtype the convolution computes in.
Dtype check_channels(const array& input, const array& weight, int groups, const char* op) {
  if (groups < 1) fail<ValueError>("[", op, "] groups must be positive, got ", groups);
  const int64_t C = input.shape().back(), Cout = weight.shape(0);
  if (C % groups != 0 || Cout % groups != 0) {
    fail<ValueError>("[", op, "] groups (", groups, ") must divide the input channels (", C, ") and output channels (",
                     Cout, ")");
  }
  if (weight.shape().back() != C / groups) {
    fail<ValueError>("[", op, "] weight has ", weight.shape().back(), " input channels per group; the input has ", C,
                     " channels in ", groups, " group(s), so ", C / groups, " are expected");
  }
  Dtype dtype = promote_types(input.dtype(), weight.dtype());
  return is_floating(dtype) ? dtype : float32;
}

// The Convolution node: x and w validated, of one floating dtype.
array convolution(const array& x, const array& w, const std::vector<int>& stride, const std::vector<int>& lo,
                  const std::vector<int>& hi, const std::vector<int>& dil, int groups,
                  const std::optional<array>& bias, const std::optional<array>& residual, ConvActivation activation,
                  const char* op, Stream st) {
  const int d = x.ndim() - 2;
  const int64_t Cout = w.shape(0);
  Shape out_shape{x.shape(0)};
  for (int j = 0; j < d; ++j) {
    out_shape.push_back(out_size(x, j, static_cast<int>(w.shape(1 + j)), stride[j], lo[j], hi[j], dil[j], 1, op));
  }
  out_shape.push_back(Cout);
  std::vector<array> inputs{contiguous(x, st), contiguous(w, st)};
  if (bias) {
    if (bias->ndim() != 1 || bias->shape(0) != Cout) {
      fail<ValueError>("[", op, "] bias must have shape (", Cout, ",), got ", bias->shape());
    }
    inputs.push_back(contiguous(astype(*bias, x.dtype(), st), st));
  }
  if (residual) {
    if (broadcast_shapes(residual->shape(), out_shape, op) != out_shape) {
      fail<ValueError>("[", op, "] the residual of shape ", residual->shape(), " does not broadcast to the output ",
                       out_shape);
    }
    inputs.push_back(contiguous(broadcast_to(astype(*residual, x.dtype(), st), out_shape, st), st));
  }
  return array(out_shape, x.dtype(),
               std::make_shared<Convolution>(stride, lo, hi, dil, groups, bias.has_value(), residual.has_value(),
                                             activation),
               std::move(inputs), st);
}

}  // namespace

array conv_general(const array& input, const array& weight_in, std::vector<int> stride, std::vector<int> padding_lo,
                   std::vector<int> padding_hi, std::vector<int> kernel_dilation, std::vector<int> input_dilation,
                   int groups, bool flip_kernel, StreamOrDevice s) {
  const char* op = "conv";
  const int d = input.ndim() - 2;
  if (d < 1 || d > 3) {
    fail<ValueError>("[conv] input must be (N, *spatial, C) with 1 to 3 spatial axes, got shape ", input.shape());
  }
  if (weight_in.ndim() != input.ndim()) {
    fail<ValueError>("[conv] weight must be (C_out, *kernel, C_in / groups) with ", d, " kernel axes, got shape ",
                     weight_in.shape(), " for input ", input.shape());
  }
  const Dtype dtype = check_channels(input, weight_in, groups, op);
  const int64_t Cout = weight_in.shape(0);
  stride = per_axis(stride, d, 1, op, "stride");
  padding_lo = per_axis(padding_lo, d, 0, op, "padding_lo");
  padding_hi = per_axis(padding_hi, d, 0, op, "padding_hi");
  kernel_dilation = per_axis(kernel_dilation, d, 1, op, "kernel_dilation");
  input_dilation = per_axis(input_dilation, d, 1, op, "input_dilation");
  check_positive(stride, op, "stride");
  check_positive(kernel_dilation, op, "kernel_dilation");
  check_positive(input_dilation, op, "input_dilation");
  std::vector<int> kernel(d);
  for (int j = 0; j < d; ++j) {
    kernel[j] = static_cast<int>(weight_in.shape(1 + j));
    if (kernel[j] < 1) fail<ValueError>("[conv] kernel sizes must be positive, got weight shape ", weight_in.shape());
  }
  Stream st = to_stream(s);
  array x = astype(input, dtype, st);
  array w = astype(weight_in, dtype, st);
  if (flip_kernel) {
    std::vector<int> axes(d);
    std::iota(axes.begin(), axes.end(), 1);
    w = flip(w, axes, st);
  }
  bool direct = true;  // a Convolution node (cuDNN on CUDA) unless the input is dilated or cropped
  for (int j = 0; j < d; ++j) direct &= input_dilation[j] == 1 && padding_lo[j] >= 0 && padding_hi[j] >= 0;
  if (direct) {
    return convolution(x, w, stride, padding_lo, padding_hi, kernel_dilation, groups, {}, {}, ConvActivation::none,
                       op, st);
  }
  const int64_t N = x.shape(0), G = groups, K = w.size() / Cout, Cout_g = Cout / G;
  bool pointwise = G == 1;
  for (int j = 0; j < d; ++j) {
    pointwise &= kernel[j] == 1 && stride[j] == 1 && padding_lo[j] == 0 && padding_hi[j] == 0 &&
                 input_dilation[j] == 1;
  }
  Shape out_spatial;
  array cols = x;
  if (pointwise) {
    // A 1x1 convolution is a matrix product as it stands.
    out_spatial.assign(x.shape().begin() + 1, x.shape().end() - 1);
  } else {
    auto win = windows(x, kernel, stride, padding_lo, padding_hi, kernel_dilation, input_dilation, groups, op, st);
    cols = win.cols;
    out_spatial = win.out_spatial;
  }
  int64_t P = 1;
  for (auto o : out_spatial) P *= o;
  Shape out_shape{N};
  out_shape.insert(out_shape.end(), out_spatial.begin(), out_spatial.end());
  out_shape.push_back(Cout);
  if (G == 1) {
    array y = matmul(reshape(cols, {N * P, K}, st), transpose(reshape(w, {Cout, K}, st), st), st);
    return reshape(y, out_shape, st);
  }
  // Groups as a batch: (G, NP, K) @ (G, K, Cout_g), views of the columns and the weight.
  array a = transpose(reshape(cols, {N * P, G, K}, st), {1, 0, 2}, st);
  array b = transpose(reshape(w, {G, Cout_g, K}, st), {0, 2, 1}, st);
  array y = matmul(a, b, st);  // (G, NP, Cout_g)
  return reshape(transpose(y, {1, 0, 2}, st), out_shape, st);
}

array conv1d(const array& input, const array& weight, int stride, int padding, int dilation, int groups,
             StreamOrDevice s) {
  if (input.ndim() != 3) fail<ValueError>("[conv1d] input must be (N, L, C), got shape ", input.shape());
  return conv_general(input, weight, {stride}, {padding}, {padding}, {dilation}, {}, groups, false, s);
}

array conv2d(const array& input, const array& weight, std::pair<int, int> stride, std::pair<int, int> padding,
             std::pair<int, int> dilation, int groups, StreamOrDevice s) {
  if (input.ndim() != 4) fail<ValueError>("[conv2d] input must be (N, H, W, C), got shape ", input.shape());
  return conv_general(input, weight, {stride.first, stride.second}, {padding.first, padding.second},
                      {padding.first, padding.second}, {dilation.first, dilation.second}, {}, groups, false, s);
}

array conv3d(const array& input, const array& weight, std::array<int, 3> stride, std::array<int, 3> padding,
             std::array<int, 3> dilation, int groups, StreamOrDevice s) {
  if (input.ndim() != 5) fail<ValueError>("[conv3d] input must be (N, D, H, W, C), got shape ", input.shape());
  std::vector<int> p(padding.begin(), padding.end());
  return conv_general(input, weight, {stride.begin(), stride.end()}, p, p, {dilation.begin(), dilation.end()}, {},
                      groups, false, s);
}

array conv2d_fused(const array& input, const array& weight, const std::optional<array>& bias,
                   const std::optional<array>& residual, ConvActivation activation, std::pair<int, int> stride,
                   std::pair<int, int> padding, std::pair<int, int> dilation, int groups, StreamOrDevice s) {
  const char* op = "conv2d_fused";
  if (input.ndim() != 4) fail<ValueError>("[", op, "] input must be (N, H, W, C), got shape ", input.shape());
  if (weight.ndim() != 4) {
    fail<ValueError>("[", op, "] weight must be (C_out, kH, kW, C_in / groups), got shape ", weight.shape());
  }
  const Dtype dtype = check_channels(input, weight, groups, op);
  std::vector<int> st_{stride.first, stride.second}, pad{padding.first, padding.second},
      dil{dilation.first, dilation.second};
  check_positive(st_, op, "stride");
  check_positive(dil, op, "dilation");
  if (padding.first < 0 || padding.second < 0) fail<ValueError>("[", op, "] padding must not be negative");
  Stream st = to_stream(s);
  return convolution(astype(input, dtype, st), astype(weight, dtype, st), st_, pad, pad, dil, groups, bias, residual,
                     activation, op, st);
}

namespace {

// A transposed convolution as a convolution of the input dilated by the stride, padded by
// dilation * (k - 1) - padding (plus output_padding after), with the kernel flipped.
array conv_transpose(const array& input, const array& weight, std::vector<int> stride, std::vector<int> padding,
                     std::vector<int> dilation, std::vector<int> output_padding, int groups, const char* op,
                     StreamOrDevice s) {
  const int d = static_cast<int>(stride.size());
  if (input.ndim() != d + 2) fail<ValueError>("[", op, "] input must have ", d, " spatial axes, got shape ", input.shape());
  if (weight.ndim() != d + 2) {
    fail<ValueError>("[", op, "] weight must be (C_out, *kernel, C_in / groups), got shape ", weight.shape());
  }
  check_positive(stride, op, "stride");
  check_positive(dilation, op, "dilation");
  std::vector<int> lo(d), hi(d);
  for (int j = 0; j < d; ++j) {
    if (padding[j] < 0) fail<ValueError>("[", op, "] padding must be non-negative, got ", padding[j]);
    if (output_padding[j] < 0 || output_padding[j] >= std::max(stride[j], dilation[j])) {
      fail<ValueError>("[", op, "] output_padding must be smaller than the stride or the dilation, got ",
                       output_padding[j]);
    }
    int k = static_cast<int>(weight.shape(1 + j));
    lo[j] = dilation[j] * (k - 1) - padding[j];
    hi[j] = lo[j] + output_padding[j];
  }
  return conv_general(input, weight, std::vector<int>(d, 1), lo, hi, dilation, stride, groups, true, s);
}

}  // namespace

array conv_transpose1d(const array& input, const array& weight, int stride, int padding, int dilation,
                       int output_padding, int groups, StreamOrDevice s) {
  return conv_transpose(input, weight, {stride}, {padding}, {dilation}, {output_padding}, groups, "conv_transpose1d",
                        s);
}

array conv_transpose2d(const array& input, const array& weight, std::pair<int, int> stride,
                       std::pair<int, int> padding, std::pair<int, int> dilation,
                       std::pair<int, int> output_padding, int groups, StreamOrDevice s) {
  return conv_transpose(input, weight, {stride.first, stride.second}, {padding.first, padding.second},
                        {dilation.first, dilation.second}, {output_padding.first, output_padding.second}, groups,
                        "conv_transpose2d", s);
}

// ---- pooling ----

namespace {

struct PoolArgs {
  std::vector<int> kernel, stride, padding, dilation;
  int d;
};

PoolArgs pool_args(const array& x, std::vector<int> kernel, std::vector<int> stride, std::vector<int> padding,
                   std::vector<int> dilation, const char* op) {
  PoolArgs a;
  a.d = x.ndim() - 2;
  if (a.d < 1 || a.d > 3) {
    fail<ValueError>("[", op, "] input must be (N, *spatial, C) with 1 to 3 spatial axes, got shape ", x.shape());
  }
  if (static_cast<int>(kernel.size()) != a.d) {
    fail<ValueError>("[", op, "] kernel needs ", a.d, " sizes (one per spatial axis), got ", kernel.size());
  }
  check_positive(kernel, op, "kernel size");
  a.kernel = kernel;
  a.stride = stride.empty() ? kernel : per_axis(stride, a.d, 1, op, "stride");
  a.padding = per_axis(padding, a.d, 0, op, "padding");
  a.dilation = per_axis(dilation, a.d, 1, op, "dilation");
  check_positive(a.stride, op, "stride");
  check_positive(a.dilation, op, "dilation");
  for (int j = 0; j < a.d; ++j) {
    if (a.padding[j] < 0 || 2 * a.padding[j] > a.kernel[j]) {
      fail<ValueError>("[", op, "] padding must be at most half the kernel size, got ", a.padding[j], " for kernel ",
                       a.kernel[j]);
    }
  }
  return a;
}

// The Pool node over x (validated by pool_args; the kernel reads it row-contiguous).
array pool_node(const array& x, PoolKind kind, const PoolArgs& a, bool count_include_pad, const char* op, Stream st) {
  Shape shape{x.shape(0)};
  for (int j = 0; j < a.d; ++j) {
    shape.push_back(out_size(x, j, a.kernel[j], a.stride[j], a.padding[j], a.padding[j], a.dilation[j], 1, op));
  }
  shape.push_back(x.shape().back());
  return array(shape, x.dtype(),
               std::make_shared<Pool>(kind, a.kernel, a.stride, a.padding, a.dilation, count_include_pad),
               {contiguous(x, st)}, st);
}

}  // namespace

array max_pool(const array& input, std::vector<int> kernel, std::vector<int> stride, std::vector<int> padding,
               std::vector<int> dilation, StreamOrDevice s) {
  const char* op = "max_pool";
  PoolArgs a = pool_args(input, kernel, stride, padding, dilation, op);
  if (is_complex(input.dtype())) fail<TypeError>("[", op, "] ", input.dtype(), " input is not supported");
  return pool_node(input, PoolKind::max, a, true, op, to_stream(s));
}

array avg_pool(const array& input, std::vector<int> kernel, std::vector<int> stride, std::vector<int> padding,
               bool count_include_pad, StreamOrDevice s) {
  const char* op = "avg_pool";
  PoolArgs a = pool_args(input, kernel, stride, padding, {}, op);
  Stream st = to_stream(s);
  // Integers average to float32; the kernel accumulates in float32 (float64 for float64).
  Dtype dtype = is_floating(input.dtype()) ? input.dtype() : float32;
  return pool_node(astype(input, dtype, st), PoolKind::avg, a, count_include_pad, op, st);
}

array adaptive_avg_pool(const array& input, std::vector<int64_t> output, StreamOrDevice s) {
  const char* op = "adaptive_avg_pool";
  const int d = input.ndim() - 2;
  if (d < 1 || d > 3) {
    fail<ValueError>("[adaptive_avg_pool] input must be (N, *spatial, C) with 1 to 3 spatial axes, got shape ",
                     input.shape());
  }
  if (static_cast<int>(output.size()) != d) {
    fail<ValueError>("[adaptive_avg_pool] output needs ", d, " sizes, got ", output.size());
  }
  for (int64_t O : output) {
    if (O < 1) fail<ValueError>("[adaptive_avg_pool] output sizes must be positive, got ", O);
  }
  Stream st = to_stream(s);
  Dtype dtype = is_floating(input.dtype()) ? input.dtype() : float32;
  // Every axis divided evenly: fixed windows, one pooling pass.
  PoolArgs even{{}, {}, std::vector<int>(d, 0), std::vector<int>(d, 1), d};
  for (int j = 0; j < d; ++j) {
    const int64_t S = input.shape(1 + j), O = output[j];
    if (S == 0 || S % O != 0 || S / O > std::numeric_limits<int>::max()) break;
    even.kernel.push_back(static_cast<int>(S / O));
  }
  if (static_cast<int>(even.kernel.size()) == d) {
    even.stride = even.kernel;
    return pool_node(astype(input, dtype, st), PoolKind::avg, even, true, op, st);
  }
  Dtype acc = dtype == float64 ? float64 : float32;
  array x = astype(input, acc, st);
  // One spatial axis at a time: each output index averages its own [start, end) range.
  for (int j = 0; j < d; ++j) {
    const int axis = 1 + j;
    const int64_t S = x.shape(axis), O = output[j];
    if (S % O == 0) {
      int64_t k = S / O;
      Shape split = x.shape();
      split[axis] = O;
      split.insert(split.begin() + axis + 1, k);
      x = mean(reshape(x, split, st), axis + 1, false, st);
      continue;
    }
    std::vector<array> parts;
    for (int64_t i = 0; i < O; ++i) {
      int64_t begin = (i * S) / O, end = ((i + 1) * S + O - 1) / O;
      Shape lo(x.ndim(), 0), hi = x.shape();
      lo[axis] = begin;
      hi[axis] = end;
      parts.push_back(mean(slice(x, lo, hi, {}, st), axis, true, st));
    }
    x = concatenate(parts, axis, st);
  }
  return astype(x, dtype, st);
}

}  // namespace kiln
