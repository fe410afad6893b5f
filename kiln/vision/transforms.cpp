#include "kiln/vision/transforms.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "kiln/device.h"
#include "kiln/memory.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_index.h"
#include "kiln/ops_linalg.h"
#include "kiln/ops_shape.h"

namespace kiln::vision {

namespace {

void check_image(const array& image, const char* op) {
  if (image.ndim() < 3)
    fail<ValueError>("[", op, "] expected an image of shape (..., height, width, channels), got ", image.shape());
}

// ---- resize weights ----

// The input span and weights of each output position along one axis.
struct Taps {
  int64_t kmax = 0;
  std::vector<int64_t> start, count;
  std::vector<double> weights;  // kmax per output position; count of them used
  double max_weight = 0;
};

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// PyTorch's bilinear weights (UpSampleKernel.cpp), in double as its uint8 path computes them.
// Antialiased: the triangle stretched by the scale when downscaling, PIL's approach. Otherwise
// the two neighbours of the source point, with weights of out-of-range neighbours folded onto
// the edge pixel.
Taps bilinear_taps(int64_t in, int64_t out, bool antialias) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  Taps t;
  t.kmax = antialias ? static_cast<int64_t>(std::ceil(scale >= 1.0 ? scale : 1.0)) * 2 + 1 : 2;
  t.start.resize(out);
  t.count.resize(out);
  t.weights.assign(static_cast<size_t>(out * t.kmax), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    double* w = &t.weights[i * t.kmax];
    int64_t xmin = 0, xsize = 0;
    if (antialias) {
      const double support = scale >= 1.0 ? scale : 1.0;
      const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
      const double center = scale * (i + 0.5);
      xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t{0});
      xsize = std::clamp(std::min(static_cast<int64_t>(center + support + 0.5), in) - xmin, int64_t{0}, t.kmax);
      double total = 0;
      for (int64_t j = 0; j < xsize; ++j) {
        w[j] = triangle((j + xmin - center + 0.5) * invscale);
        total += w[j];
      }
      if (total != 0)
        for (int64_t j = 0; j < xsize; ++j) w[j] /= total;
    } else {
      const double real = std::max(scale * (i + 0.5) - 0.5, 0.0);
      const int64_t index = std::min(static_cast<int64_t>(std::floor(real)), in - 1);
      const double lambda = std::clamp(real - static_cast<double>(index), 0.0, 1.0);
      xmin = index;
      xsize = std::clamp(std::min(index + 2, in) - xmin, int64_t{0}, t.kmax);
      int64_t k = 0;
      for (int64_t j = 0; j < 2; ++j, ++k) {
        if (index + j <= 0) {
          k = 0;
        } else if (index + j >= in - 1) {
          k = xsize - 1;
        }
        w[k] += triangle(static_cast<double>(j) - lambda);
      }
    }
    for (int64_t j = 0; j < xsize; ++j) t.max_weight = std::max(t.max_weight, w[j]);
    t.start[i] = xmin;
    t.count[i] = xsize;
  }
  return t;
}

// The uint8 path's fixed-point weights: the most fractional bits (at most 22) for which the
// largest weight still fits in int16.
struct FixedTaps {
  int precision = 0;
  std::vector<int16_t> weights;
};

FixedTaps to_fixed(const Taps& t) {
  FixedTaps f;
  while (f.precision < 22 && static_cast<int>(0.5 + t.max_weight * (1 << (f.precision + 1))) < (1 << 15))
    ++f.precision;
  f.weights.resize(t.weights.size());
  for (size_t i = 0; i < t.weights.size(); ++i) {
    double v = t.weights[i] * (1 << f.precision);
    f.weights[i] = static_cast<int16_t>(v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v));
  }
  return f;
}

// ---- resize passes over contiguous (rows, size, inner) data ----
//
// One pass resamples the middle axis: the horizontal pass has rows = N * H, inner = C; the
// vertical pass rows = N, inner = W * C.

// Taps along rows of `inner` pixels: one output pixel's channels summed together, for few
// channels (the horizontal pass). C is the channel count when known at compile time, else 0.
template <int C>
void pass_u8_pixels(const uint8_t* in, uint8_t* out, int64_t rows, int64_t in_size, int64_t out_size,
                    int64_t inner, const Taps& t, const FixedTaps& f) {
  const int64_t c = C > 0 ? C : inner;
  const int32_t half = f.precision > 0 ? 1 << (f.precision - 1) : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = in + r * in_size * c;
    uint8_t* dst = out + r * out_size * c;
    for (int64_t o = 0; o < out_size; ++o) {
      const int16_t* k = &f.weights[o * t.kmax];
      const uint8_t* s0 = src + t.start[o] * c;
      if constexpr (C > 0) {  // the taps outside, the channels unrolled inside
        int32_t acc[C];
        for (int x = 0; x < C; ++x) acc[x] = half;
        for (int64_t j = 0, n = t.count[o]; j < n; ++j) {
          const int32_t kj = k[j];
          for (int x = 0; x < C; ++x) acc[x] += static_cast<int32_t>(s0[j * C + x]) * kj;
        }
        for (int x = 0; x < C; ++x) dst[o * C + x] = static_cast<uint8_t>(std::clamp(acc[x] >> f.precision, 0, 255));
        continue;
      }
      for (int64_t x = 0; x < c; ++x) {
        int32_t acc = half;
        for (int64_t j = 0; j < t.count[o]; ++j) acc += static_cast<int32_t>(s0[j * c + x]) * k[j];
        dst[o * c + x] = static_cast<uint8_t>(std::clamp(acc >> f.precision, 0, 255));
      }
    }
  }
}

// Taps across whole rows (the vertical pass, inner = width * channels): each output row is the
// weighted sum of input rows, accumulated row by row so the inner loop runs over contiguous bytes.
void pass_u8_rows(const uint8_t* in, uint8_t* out, int64_t rows, int64_t in_size, int64_t out_size, int64_t inner,
                  const Taps& t, const FixedTaps& f) {
  const int32_t half = f.precision > 0 ? 1 << (f.precision - 1) : 0;
  std::vector<int32_t> acc(static_cast<size_t>(inner));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = in + r * in_size * inner;
    uint8_t* dst = out + r * out_size * inner;
    for (int64_t o = 0; o < out_size; ++o) {
      std::fill(acc.begin(), acc.end(), half);
      const int16_t* k = &f.weights[o * t.kmax];
      for (int64_t j = 0; j < t.count[o]; ++j) {
        const uint8_t* row = src + (t.start[o] + j) * inner;
        const int32_t kj = k[j];
        for (int64_t x = 0; x < inner; ++x) acc[x] += static_cast<int32_t>(row[x]) * kj;
      }
      uint8_t* d = dst + o * inner;
      for (int64_t x = 0; x < inner; ++x) d[x] = static_cast<uint8_t>(std::clamp(acc[x] >> f.precision, 0, 255));
    }
  }
}

// One pass in PyTorch's uint8 arithmetic (int16 weights, int32 sums, rounded, clamped); the sum
// of integers is the same in any order, so the loops are ordered for speed.
void pass_u8(const uint8_t* in, uint8_t* out, int64_t rows, int64_t in_size, int64_t out_size, int64_t inner,
             const Taps& t) {
  const FixedTaps f = to_fixed(t);
  if (inner >= 16) {
    pass_u8_rows(in, out, rows, in_size, out_size, inner, t, f);
  } else if (inner == 3) {
    pass_u8_pixels<3>(in, out, rows, in_size, out_size, inner, t, f);
  } else if (inner == 1) {
    pass_u8_pixels<1>(in, out, rows, in_size, out_size, inner, t, f);
  } else {
    pass_u8_pixels<0>(in, out, rows, in_size, out_size, inner, t, f);
  }
}

template <class T>
void pass_float(const T* in, T* out, int64_t rows, int64_t in_size, int64_t out_size, int64_t inner, const Taps& t) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = in + r * in_size * inner;
    T* dst = out + r * out_size * inner;
    for (int64_t o = 0; o < out_size; ++o) {
      const double* k = &t.weights[o * t.kmax];
      const T* s0 = src + t.start[o] * inner;
      for (int64_t x = 0; x < inner; ++x) {
        T acc = 0;
        for (int64_t j = 0; j < t.count[o]; ++j) acc += s0[j * inner + x] * static_cast<T>(k[j]);
        dst[o * inner + x] = acc;
      }
    }
  }
}

// A fresh evaluated host array whose bytes the caller writes.
struct HostArray {
  array out;
  std::shared_ptr<Buffer> buffer;
  HostArray(const Shape& shape, Dtype dtype) : out(shape, dtype, nullptr, {}, default_stream(Device(Device::cpu))) {
    buffer = std::make_shared<Buffer>(out.nbytes());
  }
  template <class T>
  T* data() {
    return static_cast<T*>(buffer->write_host());
  }
  array finish() {
    out.set_data(std::move(buffer));
    out.detach();
    return out;
  }
};

// The outputs [first, first + n) of taps whose input is read from `shift` on. The fixed-point
// precision follows max_weight, kept from all the outputs, so a window computes the same values.
Taps slice_taps(const Taps& t, int64_t first, int64_t n, int64_t shift) {
  Taps s;
  s.kmax = t.kmax;
  s.max_weight = t.max_weight;
  s.start.resize(n);
  s.count.assign(t.count.begin() + first, t.count.begin() + first + n);
  s.weights.assign(t.weights.begin() + first * t.kmax, t.weights.begin() + (first + n) * t.kmax);
  for (int64_t i = 0; i < n; ++i) s.start[i] = t.start[first + i] - shift;
  return s;
}

// The part [top, top + height) x [left, left + width) of the resized image (all of it by default).
struct Window {
  int64_t top = 0, height = -1, left = 0, width = -1;
};

// Horizontal then vertical pass, as PyTorch orders them; a pass whose size is unchanged is a copy.
// Only what the window needs is computed: its columns, from the input rows its rows read.
template <class T>
array resize_host(const array& image, int64_t oh, int64_t ow, bool antialias, Window win = {}) {
  const Shape& shape = image.shape();
  const int nd = image.ndim();
  const int64_t h = shape[nd - 3], w = shape[nd - 2], c = shape[nd - 1];
  const int64_t n = h * w * c == 0 ? 0 : image.size() / (h * w * c);
  if (win.height < 0) win = Window{0, oh, 0, ow};
  Shape out_shape = shape;
  out_shape[nd - 3] = win.height;
  out_shape[nd - 2] = win.width;
  auto run = [&](const T* in, T* out, int64_t rows, int64_t in_size, int64_t out_size, int64_t inner, const Taps& t) {
    if constexpr (std::is_same_v<T, uint8_t>) {
      pass_u8(in, out, rows, in_size, out_size, inner, t);
    } else {
      pass_float<T>(in, out, rows, in_size, out_size, inner, t);
    }
  };
  HostArray result(out_shape, image.dtype());
  if (result.out.size() == 0 || image.size() == 0) return result.finish();
  // The input rows [r0, r1) that the window's rows read.
  Taps tv;
  int64_t r0 = win.top, r1 = win.top + win.height;
  if (oh != h) {
    const Taps full = bilinear_taps(h, oh, antialias);
    r0 = full.start[win.top];
    r1 = r0;
    for (int64_t i = win.top; i < win.top + win.height; ++i) {
      r0 = std::min(r0, full.start[i]);
      r1 = std::max(r1, full.start[i] + full.count[i]);
    }
    tv = slice_taps(full, win.top, win.height, r0);
  }
  // Horizontal: rows [r0, r1) of every image to (n, r1 - r0, width, c).
  const T* src = image.host_data<T>();
  std::vector<T> temp;
  T* mid = oh != h ? (temp.resize(static_cast<size_t>(n * (r1 - r0) * win.width * c)), temp.data()) : result.data<T>();
  const int64_t band = (r1 - r0) * win.width * c;
  if (ow != w) {
    const Taps th = slice_taps(bilinear_taps(w, ow, antialias), win.left, win.width, 0);
    for (int64_t i = 0; i < n; ++i) run(src + (i * h + r0) * w * c, mid + i * band, r1 - r0, w, win.width, c, th);
  } else {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = r0; r < r1; ++r)
        std::copy_n(src + ((i * h + r) * w + win.left) * c, win.width * c, mid + i * band + (r - r0) * win.width * c);
  }
  if (oh != h) run(mid, result.data<T>(), n, r1 - r0, win.height, win.width * c, tv);
  return result.finish();
}

// resize on the CPU, a host routine: float16 and bfloat16 images are computed in float32.
array resize_cpu(const array& image, int64_t oh, int64_t ow, bool antialias, Window win = {}) {
  const Device cpu(Device::cpu);
  const Dtype dt = image.dtype();
  array in = contiguous(dt == float16 || dt == bfloat16 ? astype(image, float32, cpu) : image, cpu);
  in.eval();
  switch (in.dtype()) {
    case uint8: return resize_host<uint8_t>(in, oh, ow, antialias, win);
    case float32: {
      array out = resize_host<float>(in, oh, ow, antialias, win);
      if (dt == float32) return out;
      out = astype(out, dt, cpu);
      out.eval();
      return out;
    }
    default: return resize_host<double>(in, oh, ow, antialias, win);
  }
}

// The interpolation of one axis as a dense (out, in) float32 matrix of the same weights.
array taps_matrix(int64_t in, int64_t out, bool antialias, Stream s) {
  const Taps t = bilinear_taps(in, out, antialias);
  std::vector<float> m(static_cast<size_t>(out * in), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t j = 0; j < t.count[o]; ++j) m[o * in + t.start[o] + j] = static_cast<float>(t.weights[o * t.kmax + j]);
  }
  return copy(array(m, Shape{out, in}), s);
}

// resize on a device: horizontal then vertical pass as matrix products, in float32.
array resize_device(const array& image, int64_t oh, int64_t ow, bool antialias, Stream s) {
  const int nd = image.ndim();
  const int64_t h = image.shape(nd - 3), w = image.shape(nd - 2);
  array x = astype(image, float32, s);
  std::vector<int> to_cw(nd), back(nd);
  for (int i = 0; i < nd; ++i) to_cw[i] = back[i] = i;
  std::swap(to_cw[nd - 2], to_cw[nd - 1]);  // (..., H, C, W)
  if (ow != w) {
    x = transpose(matmul(transpose(x, to_cw, s), transpose(taps_matrix(w, ow, antialias, s), s), s), to_cw, s);
  }
  if (oh != h) {
    // (..., H, W, C) with H as the rows of a product: (oh, H) @ (..., H, W * C).
    Shape flat = x.shape();
    flat.pop_back();
    flat.back() = x.shape(nd - 2) * x.shape(nd - 1);
    Shape out_shape = x.shape();
    out_shape[nd - 3] = oh;
    x = reshape(matmul(taps_matrix(h, oh, antialias, s), reshape(x, flat, s), s), out_shape, s);
  }
  if (image.dtype() == uint8) return astype(clip(round(x, s), array(0.0f), array(255.0f), s), uint8, s);
  return astype(x, image.dtype(), s);
}

Shape parse_size(const Shape& size, const char* op) {
  if (size.size() != 1 && size.size() != 2)
    fail<ValueError>("[", op, "] size must have one value or two (height, width), got ", size);
  for (int64_t v : size)
    if (v <= 0) fail<ValueError>("[", op, "] size values must be positive, got ", size);
  return size;
}

// Python's round((a - b) / 2) for a >= b: halves go to the even neighbour.
int64_t half_round_even(int64_t d) {
  int64_t k = d / 2;
  return d % 2 == 1 && k % 2 == 1 ? k + 1 : k;
}

}  // namespace

std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, const Shape& size,
                                         std::optional<int64_t> max_size) {
  parse_size(size, "resize");
  if (size.size() == 2) {
    if (max_size) fail<ValueError>("[resize] max_size is only allowed with a single size (the shorter side)");
    return {size[0], size[1]};
  }
  const bool tall = width <= height;
  const int64_t shorter = tall ? width : height, longer = tall ? height : width;
  if (shorter <= 0) fail<ValueError>("[resize] cannot resize an empty image of ", height, " x ", width, " pixels");
  int64_t new_short = size[0];
  auto new_long = static_cast<int64_t>(static_cast<double>(new_short * longer) / static_cast<double>(shorter));
  if (max_size) {
    if (*max_size <= new_short)
      fail<ValueError>("[resize] max_size = ", *max_size, " must be greater than the requested size ", new_short);
    if (new_long > *max_size) {
      new_short = static_cast<int64_t>(static_cast<double>(*max_size * new_short) / static_cast<double>(new_long));
      new_long = *max_size;
    }
  }
  if (new_short <= 0) fail<ValueError>("[resize] the resized image would be empty (shorter side ", new_short, ")");
  return tall ? std::pair{new_long, new_short} : std::pair{new_short, new_long};
}

array resize(const array& image, const Shape& size, bool antialias, std::optional<int64_t> max_size,
             StreamOrDevice s) {
  check_image(image, "resize");
  const Dtype dt = image.dtype();
  if (dt != uint8 && !is_floating(dt))
    fail<TypeError>("[resize] expected a uint8 or floating image, got ", dt);
  const int nd = image.ndim();
  const int64_t h = image.shape(nd - 3), w = image.shape(nd - 2);
  auto [oh, ow] = resized_size(h, w, size, max_size);
  if (oh == h && ow == w) return image;
  const Stream st = to_stream(s);
  if (st.device.type == Device::gpu) return resize_device(image, oh, ow, antialias, st);
  return resize_cpu(image, oh, ow, antialias);
}

array resize(const array& image, int64_t size, bool antialias, std::optional<int64_t> max_size, StreamOrDevice s) {
  return resize(image, Shape{size}, antialias, max_size, s);
}

array center_crop(const array& image, const Shape& size, StreamOrDevice s) {
  check_image(image, "center_crop");
  parse_size(size, "center_crop");
  const int64_t ch = size[0], cw = size.size() == 2 ? size[1] : size[0];
  const int nd = image.ndim();
  int64_t h = image.shape(nd - 3), w = image.shape(nd - 2);
  array img = image;
  if (ch > h || cw > w) {
    std::vector<std::pair<int64_t, int64_t>> widths(nd, {0, 0});
    if (ch > h) widths[nd - 3] = {(ch - h) / 2, (ch - h + 1) / 2};
    if (cw > w) widths[nd - 2] = {(cw - w) / 2, (cw - w + 1) / 2};
    img = pad(img, widths, PadMode::constant, array(0), s);
    h = img.shape(nd - 3);
    w = img.shape(nd - 2);
    if (h == ch && w == cw) return img;
  }
  const int64_t top = half_round_even(h - ch), left = half_round_even(w - cw);
  Shape start(nd, 0), stop = img.shape();
  start[nd - 3] = top;
  stop[nd - 3] = top + ch;
  start[nd - 2] = left;
  stop[nd - 2] = left + cw;
  return slice(img, start, stop, {}, s);
}

array center_crop(const array& image, int64_t size, StreamOrDevice s) { return center_crop(image, Shape{size}, s); }

array resize_center_crop(const array& image, int64_t size, int64_t crop, bool antialias, StreamOrDevice s) {
  check_image(image, "resize_center_crop");
  const Dtype dt = image.dtype();
  const int nd = image.ndim();
  const int64_t h = image.shape(nd - 3), w = image.shape(nd - 2);
  auto [oh, ow] = resized_size(h, w, Shape{size}, {});
  if (dt != uint8 && !is_floating(dt))
    fail<TypeError>("[resize_center_crop] expected a uint8 or floating image, got ", dt);
  parse_size(Shape{crop}, "resize_center_crop");
  if (to_stream(s).device.type == Device::gpu || crop > oh || crop > ow)
    return center_crop(resize(image, size, antialias, {}, s), crop, s);
  return resize_cpu(image, oh, ow, antialias,
                    Window{half_round_even(oh - crop), crop, half_round_even(ow - crop), crop});
}

array to_float_chw(const array& image, StreamOrDevice s) {
  check_image(image, "to_float_chw");
  const Dtype dt = image.dtype();
  if (dt != uint8 && !is_floating(dt))
    fail<TypeError>("[to_float_chw] expected a uint8 or floating image, got ", dt);
  const int nd = image.ndim();
  std::vector<int> axes;
  for (int i = 0; i < nd - 3; ++i) axes.push_back(i);
  axes.insert(axes.end(), {nd - 1, nd - 3, nd - 2});
  array chw = astype(transpose(image, axes, s), float32, s);
  return dt == uint8 ? divide(chw, array(255.0f), s) : chw;
}

array normalize(const array& x, const std::vector<double>& mean, const std::vector<double>& std, StreamOrDevice s) {
  if (!is_floating(x.dtype())) fail<TypeError>("[normalize] expected a floating array, got ", x.dtype());
  if (x.ndim() < 3) fail<ValueError>("[normalize] expected shape (..., channels, height, width), got ", x.shape());
  const int64_t c = x.shape(-3);
  auto per_channel = [&](const std::vector<double>& v, const char* what) {
    if (v.size() != 1 && static_cast<int64_t>(v.size()) != c)
      fail<ValueError>("[normalize] ", what, " has ", v.size(), " values for ", c, " channels");
    return astype(array(v, Shape{static_cast<int64_t>(v.size()), 1, 1}), x.dtype(), s);
  };
  for (double v : std)
    if (v == 0) fail<ValueError>("[normalize] std evaluated to zero, leading to division by zero");
  return divide(subtract(x, per_channel(mean, "mean"), s), per_channel(std, "std"), s);
}

array imagenet_preprocess(const array& image, StreamOrDevice s) {
  if (image.ndim() != 3 || image.shape(2) != 3)
    fail<ValueError>("[imagenet_preprocess] expected an RGB image of shape (height, width, 3), got ", image.shape());
  array x = resize_center_crop(image, 256, 224, true, s);
  return normalize(to_float_chw(x, s), kImageNetMean, kImageNetStd, s);
}

}  // namespace kiln::vision
