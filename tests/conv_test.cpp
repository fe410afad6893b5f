// Convolutions and pooling (kiln/ops_conv.h) against float64 references written here from the
// definitions (PyTorch's semantics, channels-last), on fresh random inputs, on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>

#include "kiln/kiln.h"
#include "kiln/nn/conv_layers.h"
#include "test_utils.h"

namespace kiln {
namespace {

// Row-major index helpers over a shape.
int64_t flat(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t i = 0; i < shape.size(); ++i) f = f * shape[i] + idx[i];
  return f;
}

void for_each_index(const Shape& shape, const std::function<void(const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> idx(shape.size(), 0);
  if (shape_size(shape) == 0) return;
  for (;;) {
    fn(idx);
    int i = static_cast<int>(shape.size()) - 1;
    for (; i >= 0; --i) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
    if (i < 0) return;
  }
}

struct ConvCase {
  Shape x;  // (N, *S, C)
  int64_t cout;
  std::vector<int64_t> k;
  std::vector<int> stride, pad, dil;
  int groups;
};

// Cross-correlation with symmetric padding: out[n, o, co] = sum x[n, o*s + q*dil - pad, g*Cg + ci] * w[co, q, ci].
std::vector<double> ref_conv(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                             const Shape& ws, const ConvCase& c, Shape& out_shape) {
  const int d = static_cast<int>(c.k.size());
  const int64_t C = xs.back(), Cg = C / c.groups, Cout_g = c.cout / c.groups;
  out_shape = {xs[0]};
  for (int j = 0; j < d; ++j) {
    out_shape.push_back((xs[1 + j] + 2 * c.pad[j] - c.dil[j] * (c.k[j] - 1) - 1) / c.stride[j] + 1);
  }
  out_shape.push_back(c.cout);
  std::vector<double> out(shape_size(out_shape), 0.0);
  Shape kshape(c.k.begin(), c.k.end());
  kshape.push_back(Cg);
  for_each_index(out_shape, [&](const std::vector<int64_t>& o) {
    const int64_t co = o.back(), g = co / Cout_g;
    double acc = 0;
    for_each_index(kshape, [&](const std::vector<int64_t>& q) {
      std::vector<int64_t> xi{o[0]};
      for (int j = 0; j < d; ++j) {
        int64_t p = o[1 + j] * c.stride[j] + q[j] * c.dil[j] - c.pad[j];
        if (p < 0 || p >= xs[1 + j]) return;
        xi.push_back(p);
      }
      xi.push_back(g * Cg + q.back());
      std::vector<int64_t> wi{co};
      wi.insert(wi.end(), q.begin(), q.end());
      acc += x[flat(xs, xi)] * w[flat(ws, wi)];
    });
    out[flat(out_shape, o)] = acc;
  });
  return out;
}

array conv_nd(const array& x, const array& w, const ConvCase& c) {
  switch (c.k.size()) {
    case 1: return conv1d(x, w, c.stride[0], c.pad[0], c.dil[0], c.groups);
    case 2:
      return conv2d(x, w, {c.stride[0], c.stride[1]}, {c.pad[0], c.pad[1]}, {c.dil[0], c.dil[1]}, c.groups);
    default:
      return conv3d(x, w, {c.stride[0], c.stride[1], c.stride[2]}, {c.pad[0], c.pad[1], c.pad[2]},
                    {c.dil[0], c.dil[1], c.dil[2]}, c.groups);
  }
}

TEST(Conv, MatchesTheDefinition) {
  const std::vector<ConvCase> cases{
      {{2, 11, 3}, 4, {3}, {1}, {0}, {1}, 1},
      {{1, 17, 4}, 6, {5}, {2}, {2}, {2}, 2},
      {{2, 9, 10, 3}, 5, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},     // ResNet's 3x3
      {{1, 16, 15, 8}, 8, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 8},    // depthwise, stride 2
      {{2, 8, 8, 6}, 4, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},      // pointwise
      {{1, 13, 12, 4}, 6, {7, 5}, {2, 3}, {3, 2}, {1, 2}, 2},    // ResNet's stem-like, groups
      {{1, 5, 6, 7, 4}, 3, {3, 2, 3}, {1, 2, 1}, {1, 0, 1}, {1, 1, 2}, 1},
  };
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16, float16}) {
      for (const auto& c : cases) {
        Shape ws{c.cout};
        ws.insert(ws.end(), c.k.begin(), c.k.end());
        ws.push_back(c.x.back() / c.groups);
        auto [x, xv] = test::random_array(c.x, t);
        auto [w, wv] = test::random_array(ws, t);
        Shape os;
        auto ref = ref_conv(xv, c.x, wv, ws, c, os);
        array y = conv_nd(copy(x, d), copy(w, d), c);
        std::ostringstream what;
        what << test::device_name(d) << " " << t << " conv x" << c.x << " w" << ws << " groups " << c.groups;
        ASSERT_EQ(y.shape(), os) << what.str();
        EXPECT_EQ(y.dtype(), t);
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what.str());
      }
    }
  }
  test::note_gpu_skip();
}

// The transposed convolution by its scatter definition:
// out[n, i*s + q*dil - pad, co] += x[n, i, g*Cin_g + ci] * w[co, q, ci], g = co / Cout_g.
TEST(Conv, TransposeMatchesTheDefinition) {
  struct Case {
    Shape x;
    int64_t cout;
    std::vector<int64_t> k;
    std::vector<int> stride, pad, dil, outpad;
    int groups;
  };
  const std::vector<Case> cases{
      {{2, 7, 3}, 4, {3}, {2}, {1}, {1}, {1}, 1},
      {{1, 5, 6, 4}, 6, {4, 3}, {2, 1}, {1, 0}, {1, 1}, {0, 0}, 2},
      {{1, 4, 4, 2}, 3, {3, 3}, {3, 2}, {1, 2}, {2, 1}, {2, 1}, 1},
  };
  for (Device d : test::devices()) {
    for (const auto& c : cases) {
      const int dn = static_cast<int>(c.k.size());
      const int64_t C = c.x.back(), Cin_g = C / c.groups, Cout_g = c.cout / c.groups;
      Shape ws{c.cout};
      ws.insert(ws.end(), c.k.begin(), c.k.end());
      ws.push_back(Cin_g);
      auto [x, xv] = test::random_array(c.x, float32);
      auto [w, wv] = test::random_array(ws, float32);
      Shape os{c.x[0]};
      for (int j = 0; j < dn; ++j) {
        os.push_back((c.x[1 + j] - 1) * c.stride[j] - 2 * c.pad[j] + c.dil[j] * (c.k[j] - 1) + c.outpad[j] + 1);
      }
      os.push_back(c.cout);
      std::vector<double> ref(shape_size(os), 0.0);
      Shape kshape(c.k.begin(), c.k.end());
      for_each_index(c.x, [&](const std::vector<int64_t>& xi) {
        const int64_t cin = xi.back(), g = cin / Cin_g, ci = cin % Cin_g;
        for (int64_t col = 0; col < Cout_g; ++col) {
          const int64_t co = g * Cout_g + col;
          for_each_index(kshape, [&](const std::vector<int64_t>& q) {
            std::vector<int64_t> oi{xi[0]};
            for (int j = 0; j < dn; ++j) {
              int64_t p = xi[1 + j] * c.stride[j] + q[j] * c.dil[j] - c.pad[j];
              if (p < 0 || p >= os[1 + j]) return;
              oi.push_back(p);
            }
            oi.push_back(co);
            std::vector<int64_t> wi{co};
            wi.insert(wi.end(), q.begin(), q.end());
            wi.push_back(ci);
            ref[flat(os, oi)] += xv[flat(c.x, xi)] * wv[flat(ws, wi)];
          });
        }
      });
      array y = dn == 1 ? conv_transpose1d(copy(x, d), copy(w, d), c.stride[0], c.pad[0], c.dil[0], c.outpad[0],
                                           c.groups)
                        : conv_transpose2d(copy(x, d), copy(w, d), {c.stride[0], c.stride[1]}, {c.pad[0], c.pad[1]},
                                           {c.dil[0], c.dil[1]}, {c.outpad[0], c.outpad[1]}, c.groups);
      std::ostringstream what;
      what << test::device_name(d) << " conv_transpose x" << c.x << " w" << ws;
      ASSERT_EQ(y.shape(), os) << what.str();
      KILN_EXPECT_CLOSE(test::to_doubles(y), ref, float32, what.str());
    }
  }
}

TEST(Conv, Pooling) {
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16}) {
      const Shape xs{2, 9, 8, 3};
      auto [x, xv] = test::random_array(xs, t);
      array xd = copy(x, d);
      struct P {
        std::vector<int> k, s, p;
      };
      for (const P& c : {P{{3, 3}, {2, 2}, {1, 1}}, P{{2, 2}, {}, {0, 0}}, P{{3, 2}, {1, 2}, {1, 0}}}) {
        std::vector<int> stride = c.s.empty() ? c.k : c.s;
        Shape os{2, (9 + 2 * c.p[0] - c.k[0]) / stride[0] + 1, (8 + 2 * c.p[1] - c.k[1]) / stride[1] + 1, 3};
        std::vector<double> rmax(shape_size(os)), ravg(shape_size(os)), ravg_real(shape_size(os));
        for_each_index(os, [&](const std::vector<int64_t>& o) {
          double mx = -std::numeric_limits<double>::infinity(), sum = 0;
          int real = 0;
          for (int a = 0; a < c.k[0]; ++a) {
            for (int b = 0; b < c.k[1]; ++b) {
              int64_t h = o[1] * stride[0] + a - c.p[0], w = o[2] * stride[1] + b - c.p[1];
              if (h < 0 || h >= 9 || w < 0 || w >= 8) continue;
              double v = xv[flat(xs, {o[0], h, w, o[3]})];
              mx = std::max(mx, v);
              sum += v;
              ++real;
            }
          }
          rmax[flat(os, o)] = mx;
          ravg[flat(os, o)] = sum / (c.k[0] * c.k[1]);
          ravg_real[flat(os, o)] = sum / real;
        });
        std::string what = test::device_name(d) + " pool";
        array mp = max_pool(xd, c.k, c.s, c.p);
        ASSERT_EQ(mp.shape(), os) << what;
        KILN_EXPECT_CLOSE(test::to_doubles(mp), rmax, t, what + " max");
        KILN_EXPECT_CLOSE(test::to_doubles(avg_pool(xd, c.k, c.s, c.p)), ravg, t, what + " avg");
        KILN_EXPECT_CLOSE(test::to_doubles(avg_pool(xd, c.k, c.s, c.p, false)), ravg_real, t, what + " avg real");
      }
      // Adaptive average pooling: to 1x1 (global), to a divisor, and to sizes that overlap.
      for (Shape out : {Shape{1, 1}, Shape{3, 4}, Shape{4, 3}, Shape{9, 5}}) {
        Shape os{2, out[0], out[1], 3};
        std::vector<double> ref(shape_size(os));
        for_each_index(os, [&](const std::vector<int64_t>& o) {
          int64_t h0 = o[1] * 9 / out[0], h1 = ((o[1] + 1) * 9 + out[0] - 1) / out[0];
          int64_t w0 = o[2] * 8 / out[1], w1 = ((o[2] + 1) * 8 + out[1] - 1) / out[1];
          double s = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) s += xv[flat(xs, {o[0], h, w, o[3]})];
          ref[flat(os, o)] = s / double((h1 - h0) * (w1 - w0));
        });
        array y = adaptive_avg_pool(xd, {out[0], out[1]});
        ASSERT_EQ(y.shape(), os);
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, test::device_name(d) + " adaptive_avg_pool");
      }
    }
  }
}

// conv2d_fused: the convolution's definition, then + bias + residual (broadcast) and the activation.
TEST(Conv, FusedEpilogueMatchesTheDefinition) {
  const std::vector<ConvCase> cases{
      {{2, 9, 10, 16}, 24, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
      {{1, 12, 11, 8}, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 8},   // depthwise, channel multiplier 2
      {{1, 33, 33, 8192}, 2, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},  // im2col in more than one block on the CPU
      {{2, 7, 9, 64}, 96, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},     // pointwise: a GEMM with its epilogue on CUDA
      {{2, 15, 13, 3}, 16, {7, 7}, {2, 2}, {3, 3}, {1, 1}, 1},    // an RGB stem: patches times weights on CUDA
  };
  const ConvActivation acts[] = {ConvActivation::none, ConvActivation::relu, ConvActivation::relu6};
  for (Device d : test::devices()) {
    for (Dtype t : {float32, bfloat16, float64}) {
      if (t == float64 && d.type == Device::gpu) continue;
      for (size_t ci = 0; ci < cases.size(); ++ci) {
        const ConvCase& c = cases[ci];
        Shape ws{c.cout, c.k[0], c.k[1], c.x.back() / c.groups};
        auto [x, xv] = test::random_array(c.x, t);
        auto [w, wv] = test::random_array(ws, t);
        auto [b, bv] = test::random_array({c.cout}, t);
        Shape os;
        auto ref = ref_conv(xv, c.x, wv, ws, c, os);
        // The residual is a full tensor in one case and a row broadcast over (N, H, W) in another.
        Shape rs = ci == 1 ? Shape{1, 1, os[2], c.cout} : os;
        auto [r, rv] = test::random_array(rs, t);
        for (ConvActivation act : acts) {
          const bool with_bias = act != ConvActivation::relu6, with_residual = act != ConvActivation::none;
          std::vector<double> want(ref.size());
          for (size_t i = 0; i < ref.size(); ++i) {
            const int64_t co = static_cast<int64_t>(i) % c.cout;
            const int64_t wcol = (static_cast<int64_t>(i) / c.cout) % os[2];
            double v = ref[i];
            if (with_bias) v += bv[co];
            if (with_residual) v += ci == 1 ? rv[wcol * c.cout + co] : rv[i];
            if (act != ConvActivation::none) v = std::max(v, 0.0);
            if (act == ConvActivation::relu6) v = std::min(v, 6.0);
            want[i] = v;
          }
          std::optional<array> bias, residual;
          if (with_bias) bias = copy(b, d);
          if (with_residual) residual = copy(r, d);
          array y = conv2d_fused(copy(x, d), copy(w, d), bias, residual, act, {c.stride[0], c.stride[1]},
                                 {c.pad[0], c.pad[1]}, {c.dil[0], c.dil[1]}, c.groups);
          std::ostringstream what;
          what << test::device_name(d) << " " << t << " fused conv x" << c.x << " w" << ws << " activation "
               << static_cast<int>(act);
          ASSERT_EQ(y.shape(), os) << what.str();
          KILN_EXPECT_CLOSE(test::to_doubles(y), want, t, what.str());
        }
      }
    }
  }
  test::note_gpu_skip();
}

TEST(Conv, Errors) {
  array x = zeros({1, 8, 8, 4});
  KILN_EXPECT_THROW_MSG(conv2d(zeros({8, 8, 4}), zeros({2, 3, 3, 4})), ValueError, "(N, H, W, C)");
  KILN_EXPECT_THROW_MSG(conv2d(x, zeros({2, 3, 3, 3})), ValueError, "input channels per group");
  KILN_EXPECT_THROW_MSG(conv2d(x, zeros({3, 3, 3, 2}), {1, 1}, {0, 0}, {1, 1}, 2), ValueError, "must divide");
  KILN_EXPECT_THROW_MSG(conv2d(x, zeros({2, 9, 9, 4})), ValueError, "larger than spatial axis");
  KILN_EXPECT_THROW_MSG(conv2d(x, zeros({2, 3, 3, 4}), {0, 1}), ValueError, "stride must be positive");
  KILN_EXPECT_THROW_MSG(conv_general(x, zeros({2, 3, 4})), ValueError, "kernel axes");
  KILN_EXPECT_THROW_MSG(max_pool(x, {3}), ValueError, "kernel needs 2 sizes");
  KILN_EXPECT_THROW_MSG(max_pool(x, {3, 3}, {}, {2, 2}), ValueError, "at most half the kernel");
  KILN_EXPECT_THROW_MSG(adaptive_avg_pool(x, {0, 2}), ValueError, "positive");
  KILN_EXPECT_THROW_MSG(conv_transpose2d(x, zeros({2, 3, 3, 4}), {2, 2}, {0, 0}, {1, 1}, {2, 0}), ValueError,
                        "output_padding");
  KILN_EXPECT_THROW_MSG(conv2d_fused(x, zeros({2, 3, 3, 4}), zeros({3}), {}, ConvActivation::relu), ValueError,
                        "bias must have shape (2,)");
  KILN_EXPECT_THROW_MSG(conv2d_fused(x, zeros({2, 3, 3, 4}), {}, zeros({1, 5, 6, 2}), ConvActivation::none),
                        ValueError, "broadcast");
  KILN_EXPECT_THROW_MSG(conv2d_fused(x, zeros({2, 3, 3, 2}), {}, {}, ConvActivation::none), ValueError,
                        "input channels per group");
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// The nn pooling layers are the ops with their arguments kept; activations by definition.
TEST(Conv, PoolingLayersAndActivations) {
  auto [x, xv] = test::random_array({2, 7, 6, 3}, float32, -8, 8);
  auto same = [](const array& a, const array& b) { return test::to_doubles(a) == test::to_doubles(b); };
  EXPECT_TRUE(same(nn::MaxPool2d({3, 3}, std::pair{2, 2}, {1, 1})(x), max_pool(x, {3, 3}, {2, 2}, {1, 1})));
  EXPECT_TRUE(same(nn::MaxPool2d({2, 2})(x), max_pool(x, {2, 2}, {2, 2})));
  EXPECT_TRUE(same(nn::AvgPool2d({3, 2}, std::nullopt, {1, 0}, false)(x), avg_pool(x, {3, 2}, {3, 2}, {1, 0}, false)));
  EXPECT_TRUE(same(nn::AdaptiveAvgPool2d({1, 1})(x), adaptive_avg_pool(x, {1, 1})));
  auto r6 = test::to_doubles(nn::relu6(x)), hs = test::to_doubles(nn::hardsigmoid(x)),
       hw = test::to_doubles(nn::hardswish(x)), sp = test::to_doubles(nn::softplus(x, 2.0f, 5.0f));
  for (size_t i = 0; i < xv.size(); ++i) {
    double v = xv[i], h = std::min(std::max(v + 3, 0.0), 6.0) / 6;
    EXPECT_NEAR(r6[i], std::min(std::max(v, 0.0), 6.0), 1e-6);
    EXPECT_NEAR(hs[i], h, 1e-6);
    EXPECT_NEAR(hw[i], v * h, 1e-5);
    EXPECT_NEAR(sp[i], 2 * v > 5 ? v : std::log1p(std::exp(2 * v)) / 2, 1e-5);
  }
}

}  // namespace
}  // namespace kiln
