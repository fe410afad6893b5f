// Tests of the kiln::nn layers beyond the basics (nn_test.cpp): Conv1d, GroupNorm, Dropout and
// the training flag, Sequential and Module::forward, the activation functions and modules,
// MultiHeadAttention and the losses. Each is checked against a float64 reference written here
// from PyTorch's definition, on fresh random inputs, on every device; parameter names against
// PyTorch's; and the error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "kiln/kiln.h"
#include "kiln/nn/nn.h"
#include "kiln/random.h"
#include "test_utils.h"

namespace kiln {
namespace {

using Values = std::vector<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::set<std::string> names_of(const nn::Module& m) {
  std::set<std::string> s;
  for (const auto& [k, v] : m.parameters()) s.insert(k);
  return s;
}

// Replaces every floating parameter of `m` by fresh random values; returns them by name.
std::map<std::string, Values> randomize(nn::Module& m, double lo = -1, double hi = 1) {
  std::map<std::string, array> w;
  std::map<std::string, Values> v;
  for (const auto& [name, p] : m.parameters()) {
    if (!is_floating(p.dtype())) continue;
    auto [a, av] = test::random_array(p.shape(), p.dtype(), lo, hi);
    w.emplace(name, a);
    v.emplace(name, av);
  }
  m.update(w);
  return v;
}

// (rows, n) @ (m, n)^T + b, row-major.
Values ref_linear(const Values& x, const Values& w, const Values* b, int64_t rows, int64_t n, int64_t m,
                  int64_t w_row0 = 0, int64_t b0 = 0) {
  Values y(rows * m);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      double s = b ? (*b)[b0 + j] : 0.0;
      for (int64_t k = 0; k < n; ++k) s += x[r * n + k] * w[(w_row0 + j) * n + k];
      y[r * m + j] = s;
    }
  }
  return y;
}

// The values rounded to dtype, as kiln stores an intermediate result.
Values round_to(const Values& v, Dtype t) {
  return test::to_doubles(test::from_doubles(v, {static_cast<int64_t>(v.size())}, t));
}

// ‖out − ref‖ / (‖ref‖ + scale √n): the relative error, measured against the size `scale` of the
// inputs too, for results such as a loss near 0 that is the difference of terms as large as the
// inputs and carries their rounding. NaNs and infinities must match as in test::relative_error.
double scaled_error(const Values& out, const Values& ref, double scale) {
  if (std::isinf(test::relative_error(out, ref))) return kInf;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(ref[i]) || std::isinf(ref[i])) continue;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / (std::sqrt(den) + scale * std::sqrt(static_cast<double>(out.size())));
}

Values map_values(const Values& x, const std::function<double(double)>& f) {
  Values y;
  for (double v : x) y.push_back(f(v));
  return y;
}

// ---- Module: training flag, forward, type names ----

struct Opaque : nn::Module {};

TEST(NNLayers, TrainingFlagPropagates) {
  auto inner = std::make_shared<nn::Sequential>(
      std::vector<std::shared_ptr<nn::Module>>{std::make_shared<nn::Dropout>(0.5f), std::make_shared<nn::ReLU>()});
  nn::Sequential outer({std::make_shared<nn::Linear>(3, 3), inner});
  auto all = [&](bool want) {
    EXPECT_EQ(outer.training(), want);
    EXPECT_EQ(outer[0]->training(), want);
    EXPECT_EQ(inner->training(), want);
    EXPECT_EQ((*inner)[0]->training(), want);
    EXPECT_EQ((*inner)[1]->training(), want);
  };
  all(true);  // PyTorch's default
  outer.eval();
  all(false);
  outer.train();
  all(true);
  outer.train(false);
  all(false);
  inner->train(true);  // a subtree alone
  EXPECT_FALSE(outer.training());
  EXPECT_TRUE((*inner)[0]->training());
  // eval() still evaluates the parameters.
  nn::Linear l(4, 2);
  l.update({{"weight", add(zeros({2, 4}), ones({2, 4}))}});
  EXPECT_FALSE(l.weight().is_available());
  l.eval();
  EXPECT_TRUE(l.weight().is_available());
}

TEST(NNLayers, ForwardOfAModuleWithoutOneInput) {
  array x = zeros({2, 3});
  KILN_EXPECT_THROW_MSG(Opaque().forward(x), TypeError, "Opaque is not callable with one array");
  KILN_EXPECT_THROW_MSG(nn::Module().forward(x), TypeError, "kiln::nn::Module is not callable with one array");
  EXPECT_EQ(nn::Linear(2, 2).type_name(), "kiln::nn::Linear");
  // Every single-input layer answers forward as its call operator does.
  auto [xi, xv] = test::random_array({2, 5, 6}, float32);
  std::vector<std::pair<std::shared_ptr<nn::Module>, std::function<array(const array&)>>> layers;
  auto lin = std::make_shared<nn::Linear>(6, 4);
  layers.push_back({lin, [&](const array& a) { return (*lin)(a); }});
  auto rms = std::make_shared<nn::RMSNorm>(6);
  layers.push_back({rms, [&](const array& a) { return (*rms)(a); }});
  auto ln = std::make_shared<nn::LayerNorm>(6);
  layers.push_back({ln, [&](const array& a) { return (*ln)(a); }});
  auto gn = std::make_shared<nn::GroupNorm>(3, 6);
  layers.push_back({gn, [&](const array& a) { return (*gn)(a); }});
  auto c1 = std::make_shared<nn::Conv1d>(6, 2, 3);
  layers.push_back({c1, [&](const array& a) { return (*c1)(a); }});
  auto bn = std::make_shared<nn::BatchNorm>(6);
  layers.push_back({bn, [&](const array& a) { return (*bn)(a); }});
  auto mha = std::make_shared<nn::MultiHeadAttention>(6, 2);
  layers.push_back({mha, [&](const array& a) { return (*mha)(a, a, a); }});
  for (auto& [m, call] : layers) {
    EXPECT_EQ(test::to_doubles(m->forward(xi)), test::to_doubles(call(xi))) << m->type_name();
  }
  auto [img, iv] = test::random_array({1, 6, 6, 3}, float32);
  auto c2 = std::make_shared<nn::Conv2d>(3, 4, std::pair{3, 3});
  EXPECT_EQ(test::to_doubles(c2->forward(img)), test::to_doubles((*c2)(img)));
  EXPECT_EQ(test::to_doubles(nn::MaxPool2d({2, 2}).forward(img)), test::to_doubles(max_pool(img, {2, 2})));
  EXPECT_EQ(test::to_doubles(nn::AvgPool2d({2, 2}).forward(img)), test::to_doubles(avg_pool(img, {2, 2})));
  EXPECT_EQ(test::to_doubles(nn::AdaptiveAvgPool2d({1, 1}).forward(img)),
            test::to_doubles(adaptive_avg_pool(img, {1, 1})));
  auto [ids, idv] = test::random_array({2, 3}, int32, 0, 9);
  nn::Embedding e(10, 4);
  EXPECT_EQ(test::to_doubles(e.forward(ids)), test::to_doubles(e(ids)));
}

// ---- Conv1d ----

// out[n, o, co] = b[co] + sum_{q, ci} x[n, o*stride + q*dil - pad, g*Cg + ci] * w[co, q, ci].
Values ref_conv1d(const Values& x, int64_t N, int64_t L, int64_t C, const Values& w, const Values* b, int64_t Cout,
                  int64_t k, int stride, int pad, int dil, int groups, int64_t& Lout) {
  const int64_t Cg = C / groups, Cout_g = Cout / groups;
  Lout = (L + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  Values y(N * Lout * Cout);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < Lout; ++o) {
      for (int64_t co = 0; co < Cout; ++co) {
        int64_t g = co / Cout_g;
        double acc = b ? (*b)[co] : 0.0;
        for (int64_t q = 0; q < k; ++q) {
          int64_t p = o * stride + q * dil - pad;
          if (p < 0 || p >= L) continue;
          for (int64_t ci = 0; ci < Cg; ++ci) acc += x[(n * L + p) * C + g * Cg + ci] * w[(co * k + q) * Cg + ci];
        }
        y[(n * Lout + o) * Cout + co] = acc;
      }
    }
  }
  return y;
}

TEST(NNLayers, Conv1dMatchesTheDefinition) {
  struct Case {
    int64_t N, L, C, Cout;
    int k, stride, pad, dil, groups;
    bool bias;
  };
  const std::vector<Case> cases{{2, 11, 3, 4, 3, 1, 0, 1, 1, true},
                                {1, 17, 4, 6, 5, 2, 2, 2, 2, false},
                                {3, 8, 6, 6, 3, 1, 1, 1, 6, true},  // depthwise
                                {2, 9, 5, 7, 1, 1, 0, 1, 1, true}};
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      for (const auto& c : cases) {
        std::ostringstream what;
        what << test::device_name(d) << " " << t << " L " << c.L << " k " << c.k << " groups " << c.groups;
        nn::Conv1d conv(c.C, c.Cout, c.k, c.stride, c.pad, c.dil, c.groups, c.bias, t);
        std::set<std::string> want{"weight"};
        if (c.bias) want.insert("bias");
        EXPECT_EQ(names_of(conv), want);
        EXPECT_EQ(conv.weight().shape(), (Shape{c.Cout, c.k, c.C / c.groups}));
        auto w = randomize(conv);
        auto [x, xv] = test::random_array({c.N, c.L, c.C}, t);
        int64_t Lout = 0;
        Values ref = ref_conv1d(xv, c.N, c.L, c.C, w.at("weight"), c.bias ? &w.at("bias") : nullptr, c.Cout, c.k,
                                c.stride, c.pad, c.dil, c.groups, Lout);
        array y = conv(copy(x, d));
        ASSERT_EQ(y.shape(), (Shape{c.N, Lout, c.Cout})) << what.str();
        EXPECT_EQ(y.dtype(), t);
        KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what.str());
      }
    }
  }
  test::note_gpu_skip();
}

TEST(NNLayers, Conv1dLoadsAPyTorchStateDict) {
  // PyTorch's Sequential(Conv1d(4, 6, 3, groups=2)) state dict: weight (C_out, C_in / g, k).
  const int64_t Cin = 4, Cout = 6, k = 3, Cg = 2;
  auto [wt, wtv] = test::random_array({Cout, Cg, k}, float32);
  auto [b, bv] = test::random_array({Cout}, float32);
  nn::Sequential seq({std::make_shared<nn::Conv1d>(Cin, Cout, k, 1, 1, 1, 2)});
  seq.load_weights(nn::torch_to_kiln_layout({{"0.weight", wt}, {"0.bias", b}}));
  Values w(Cout * k * Cg);  // channels-last
  for (int64_t co = 0; co < Cout; ++co)
    for (int64_t ci = 0; ci < Cg; ++ci)
      for (int64_t q = 0; q < k; ++q) w[(co * k + q) * Cg + ci] = wtv[(co * Cg + ci) * k + q];
  auto [x, xv] = test::random_array({2, 7, Cin}, float32);
  int64_t Lout = 0;
  Values ref = ref_conv1d(xv, 2, 7, Cin, w, &bv, Cout, k, 1, 1, 1, 2, Lout);
  KILN_EXPECT_CLOSE(test::to_doubles(seq(x)), ref, float32, "Conv1d from a PyTorch state dict");
}

TEST(NNLayers, Conv1dInitialisationAndErrors) {
  nn::Conv1d conv(8, 300, 2, 1, 0, 1, 2);
  double bound = 1.0 / std::sqrt(8 / 2 * 2);
  for (const char* name : {"weight", "bias"}) {
    Values v = test::to_doubles(conv.parameter(name));
    double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    EXPECT_GE(lo, -bound) << name;
    EXPECT_LE(hi, bound) << name;
    EXPECT_LT(lo, -0.8 * bound) << name << " should fill the range";
    EXPECT_GT(hi, 0.8 * bound) << name;
  }
  KILN_EXPECT_THROW_MSG(nn::Conv1d(3, 4, 3, 1, 0, 1, 2), ValueError, "[Conv1d] channels (3, 4)");
  KILN_EXPECT_THROW_MSG(nn::Conv1d(0, 4, 3), ValueError, "[Conv1d]");
  KILN_EXPECT_THROW_MSG(nn::Conv1d(2, 4, 0), ValueError, "[Conv1d] kernel size must be positive");
  KILN_EXPECT_THROW_MSG(nn::Conv1d(2, 4, 3, 1, 0, 1, 1, true, int32), TypeError, "[Conv1d]");
  nn::Conv1d c(2, 4, 3);
  EXPECT_THROW(c(zeros({1, 5, 3})), ValueError);  // channels
  EXPECT_THROW(c(zeros({5, 2})), ValueError);     // no batch axis
}

// ---- GroupNorm ----

// x (N, S, C): each (n, group) normalized over S and the group's channels.
Values ref_group_norm(const Values& x, int64_t N, int64_t S, int64_t C, int64_t G, double eps, const Values* w,
                      const Values* b) {
  const int64_t Cg = C / G;
  Values y(x.size());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      double mean = 0, var = 0, cnt = static_cast<double>(S * Cg);
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) mean += x[(n * S + s) * C + c] / cnt;
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
          double dv = x[(n * S + s) * C + c] - mean;
          var += dv * dv / cnt;
        }
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
          int64_t i = (n * S + s) * C + c;
          y[i] = (x[i] - mean) / std::sqrt(var + eps) * (w ? (*w)[c] : 1.0) + (b ? (*b)[c] : 0.0);
        }
    }
  }
  return y;
}

TEST(NNLayers, GroupNormMatchesTheDefinition) {
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      for (Shape xs : {Shape{3, 12}, Shape{2, 7, 12}, Shape{2, 3, 5, 12}, Shape{1, 1, 12}}) {
        for (int64_t G : {1, 3, 12}) {
          for (bool affine : {true, false}) {
            std::ostringstream what;
            what << test::device_name(d) << " " << t << " x" << xs << " groups " << G << (affine ? " affine" : "");
            nn::GroupNorm gn(G, 12, 1e-5f, affine, t);
            EXPECT_EQ(names_of(gn), affine ? (std::set<std::string>{"weight", "bias"}) : std::set<std::string>());
            auto w = randomize(gn);
            auto [x, xv] = test::random_array(xs, t, -3, 5);
            array y = gn(x, d);
            ASSERT_EQ(y.shape(), xs);
            EXPECT_EQ(y.dtype(), t);
            int64_t S = x.size() / (xs[0] * 12);
            Values ref = ref_group_norm(xv, xs[0], S, 12, G, double(1e-5f), affine ? &w.at("weight") : nullptr,
                                        affine ? &w.at("bias") : nullptr);
            KILN_EXPECT_CLOSE(test::to_doubles(y), ref, t, what.str());
          }
        }
      }
      // A channels-first array moved to channels-last (a strided view).
      nn::GroupNorm gn(2, 4, 1e-3f, true, t);
      auto w = randomize(gn);
      auto [xf, xfv] = test::random_array({2, 4, 6}, t);
      array x = swapaxes(xf, 1, 2);
      Values ref = ref_group_norm(test::to_doubles(x), 2, 6, 4, 2, double(1e-3f), &w.at("weight"), &w.at("bias"));
      KILN_EXPECT_CLOSE(test::to_doubles(gn(x, d)), ref, t, "GroupNorm on a transposed input");
    }
  }
  KILN_EXPECT_THROW_MSG(nn::GroupNorm(3, 8), ValueError, "[GroupNorm] num_channels (8) must be a positive multiple");
  KILN_EXPECT_THROW_MSG(nn::GroupNorm(0, 8), ValueError, "[GroupNorm]");
  KILN_EXPECT_THROW_MSG(nn::GroupNorm(2, 8, 1e-5f, true, int32), TypeError, "[GroupNorm]");
  nn::GroupNorm gn(2, 8);
  KILN_EXPECT_THROW_MSG(gn(zeros({2, 3, 6})), ValueError, "[GroupNorm] expects inputs (N, ..., C) with C = 8");
  KILN_EXPECT_THROW_MSG(gn(zeros({8})), ValueError, "[GroupNorm]");
  KILN_EXPECT_THROW_MSG(gn(zeros({2, 8}, int32)), TypeError, "[GroupNorm] expects a floating input");
  test::note_gpu_skip();
}

// ---- Dropout ----

TEST(NNLayers, Dropout) {
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      SCOPED_TRACE(test::device_name(d) + " " + dtype_name(t));
      const double p = double(0.3f);  // as the layer holds it
      nn::Dropout drop(0.3f);
      auto [x, xv] = test::random_array({200, 500}, t, 1, 2);  // no zeros in x
      array y = drop(x, {}, d);
      EXPECT_EQ(y.shape(), x.shape());
      EXPECT_EQ(y.dtype(), t);
      Values yv = test::to_doubles(y);
      // Kept elements are x / (1 - p) (the scale rounded to the dtype, as the product is).
      double scale = test::to_doubles(astype(array(1.0 / (1.0 - p)), t))[0];
      Values kept, want;
      int64_t zeros_seen = 0;
      for (size_t i = 0; i < yv.size(); ++i) {
        if (yv[i] == 0) {
          ++zeros_seen;
        } else {
          kept.push_back(yv[i]);
          want.push_back(xv[i] * scale);
        }
      }
      KILN_EXPECT_CLOSE(kept, want, t, "kept elements");
      // The fraction dropped is p, within 6 standard deviations.
      double n = static_cast<double>(yv.size()), frac = zeros_seen / n;
      EXPECT_NEAR(frac, p, 6 * std::sqrt(p * (1 - p) / n));
      // The same key gives the same mask; another key another one.
      array k1 = random::key(test::rng()()), k2 = random::key(test::rng()());
      Values a = test::to_doubles(drop(x, k1, d)), b = test::to_doubles(drop(x, k1, d)),
             c = test::to_doubles(drop(x, k2, d));
      EXPECT_EQ(a, b);
      EXPECT_NE(a, c);
      // p = 0 and p = 1.
      EXPECT_EQ(test::to_doubles(nn::Dropout(0.0f)(x, {}, d)), xv);
      EXPECT_EQ(test::to_doubles(nn::Dropout(1.0f)(x, {}, d)), Values(xv.size(), 0.0));
      // Inference mode: the identity.
      drop.eval();
      EXPECT_TRUE(drop(x, {}, d).is_same(x));
      EXPECT_TRUE(drop.forward(x).is_same(x));
      drop.train();
      EXPECT_NE(test::to_doubles(drop.forward(x)), xv);
    }
  }
  KILN_EXPECT_THROW_MSG(nn::Dropout(1.5f), ValueError, "[Dropout] p must be in [0, 1], got 1.5");
  KILN_EXPECT_THROW_MSG(nn::Dropout(-0.1f), ValueError, "[Dropout]");
  KILN_EXPECT_THROW_MSG(nn::Dropout(NAN), ValueError, "[Dropout]");
  KILN_EXPECT_THROW_MSG(nn::Dropout(0.5f)(zeros({3}, int32)), TypeError, "[Dropout] expects a floating input");
  EXPECT_TRUE(nn::Dropout().parameters().empty());
  test::note_gpu_skip();
}

// ---- Sequential ----

TEST(NNLayers, SequentialNamesAndCallsInOrder) {
  for (Device d : test::devices()) {
    SCOPED_TRACE(test::device_name(d));
    // PyTorch's Sequential(Linear(4, 8), ReLU(), Linear(8, 8), Sequential(Tanh(), Linear(8, 3))).
    auto tail = std::make_shared<nn::Sequential>(
        std::vector<std::shared_ptr<nn::Module>>{std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(8, 3)});
    nn::Sequential seq;
    auto first = seq.append(std::make_shared<nn::Linear>(4, 8));
    seq.append(std::make_shared<nn::ReLU>());
    seq.append(std::make_shared<nn::Linear>(8, 8, false));
    seq.append(tail);
    EXPECT_EQ(names_of(seq), (std::set<std::string>{"0.weight", "0.bias", "2.weight", "3.1.weight", "3.1.bias"}));
    EXPECT_EQ(seq.size(), 4u);
    EXPECT_EQ(seq[0], first);
    EXPECT_EQ(seq.children()[3].first, "3");

    // A state dict by PyTorch's names loads strictly.
    std::map<std::string, array> sd;
    std::map<std::string, Values> v;
    for (const auto& [name, p] : seq.parameters()) {
      auto [a, av] = test::random_array(p.shape(), float32);
      sd.emplace(name, a);
      v.emplace(name, av);
    }
    seq.load_weights(sd);
    auto [x, xv] = test::random_array({5, 4}, float32);
    Values h = ref_linear(xv, v.at("0.weight"), &v.at("0.bias"), 5, 4, 8);
    h = map_values(h, [](double a) { return std::max(a, 0.0); });
    h = ref_linear(h, v.at("2.weight"), nullptr, 5, 8, 8);
    h = map_values(h, [](double a) { return std::tanh(a); });
    h = ref_linear(h, v.at("3.1.weight"), &v.at("3.1.bias"), 5, 8, 3);
    array y = seq(copy(x, d));
    EXPECT_EQ(y.shape(), (Shape{5, 3}));
    KILN_EXPECT_CLOSE(test::to_doubles(y), h, float32, "Sequential");
    EXPECT_EQ(test::to_doubles(seq.forward(x)), test::to_doubles(y));
  }
  // Empty: the identity.
  array x = zeros({2, 2});
  EXPECT_TRUE(nn::Sequential()(x).is_same(x));
  // Errors.
  nn::Sequential seq({std::make_shared<nn::Linear>(2, 2), std::make_shared<Opaque>()});
  KILN_EXPECT_THROW_MSG(seq(x), TypeError, "Opaque is not callable with one array");
  KILN_EXPECT_THROW_MSG(seq[2], IndexError, "[Sequential] index 2 is out of range for 2 layers");
  KILN_EXPECT_THROW_MSG(seq.append(std::shared_ptr<nn::Module>()), ValueError, "[Sequential] layer 2 is null");
  test::note_gpu_skip();
}

TEST(NNLayers, SequentialOfMixedLayers) {
  // A small 1-d CNN; in inference mode the Sequential is exactly the layers called by hand.
  auto conv = std::make_shared<nn::Conv1d>(3, 8, 3, 1, 1);
  auto gn = std::make_shared<nn::GroupNorm>(4, 8);
  auto drop = std::make_shared<nn::Dropout>(0.5f);
  auto fc = std::make_shared<nn::Linear>(8 * 10, 5);
  nn::Sequential seq({conv, gn, std::make_shared<nn::GELU>("tanh"), drop, std::make_shared<nn::Flatten>(), fc,
                      std::make_shared<nn::LogSoftmax>()});
  randomize(seq);
  seq.eval();
  auto [x, xv] = test::random_array({2, 10, 3}, float32);
  array by_hand = log_softmax((*fc)(flatten(nn::gelu_tanh((*gn)((*conv)(x))), 1)), -1);
  array y = seq(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  EXPECT_EQ(test::to_doubles(y), test::to_doubles(by_hand));
  // In training mode the dropout acts.
  seq.train();
  EXPECT_NE(test::to_doubles(seq(x)), test::to_doubles(by_hand));
}

// ---- activations ----

double ref_softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }

TEST(NNLayers, ActivationsMatchTheDefinitions) {
  const double selu_a = 1.6732632423543772848170429916717, selu_s = 1.0507009873554804934193349852946;
  struct Act {
    std::string name;
    std::function<array(const array&, StreamOrDevice)> fn;
    std::shared_ptr<nn::Module> module;
    std::function<double(double)> ref;
  };
  std::vector<Act> acts{
      {"leaky_relu", [](const array& x, StreamOrDevice s) { return nn::leaky_relu(x, 0.2f, s); },
       std::make_shared<nn::LeakyReLU>(0.2f), [](double x) { return x > 0 ? x : double(0.2f) * x; }},
      {"elu", [](const array& x, StreamOrDevice s) { return nn::elu(x, 0.7f, s); }, std::make_shared<nn::ELU>(0.7f),
       [](double x) { return x > 0 ? x : double(0.7f) * std::expm1(x); }},
      {"selu", [](const array& x, StreamOrDevice s) { return nn::selu(x, s); }, std::make_shared<nn::SELU>(),
       [&](double x) { return selu_s * (x > 0 ? x : selu_a * std::expm1(x)); }},
      {"celu", [](const array& x, StreamOrDevice s) { return nn::celu(x, 1.5f, s); }, std::make_shared<nn::CELU>(1.5f),
       [](double x) { return std::max(0.0, x) + std::min(0.0, 1.5 * std::expm1(x / 1.5)); }},
      {"mish", [](const array& x, StreamOrDevice s) { return nn::mish(x, s); }, std::make_shared<nn::Mish>(),
       [](double x) { return x * std::tanh(ref_softplus(x)); }},
      {"log_sigmoid", [](const array& x, StreamOrDevice s) { return nn::log_sigmoid(x, s); },
       std::make_shared<nn::LogSigmoid>(), [](double x) { return -std::log1p(std::exp(-x)); }},
      {"softsign", [](const array& x, StreamOrDevice s) { return nn::softsign(x, s); }, std::make_shared<nn::Softsign>(),
       [](double x) { return x / (1 + std::abs(x)); }},
      {"hardtanh", [](const array& x, StreamOrDevice s) { return nn::hardtanh(x, -2.0f, 3.0f, s); },
       std::make_shared<nn::Hardtanh>(-2.0f, 3.0f), [](double x) { return std::min(std::max(x, -2.0), 3.0); }},
      {"sigmoid", [](const array& x, StreamOrDevice s) { return nn::sigmoid(x, s); }, std::make_shared<nn::Sigmoid>(),
       [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"tanh", [](const array& x, StreamOrDevice s) { return nn::tanh(x, s); }, std::make_shared<nn::Tanh>(),
       [](double x) { return std::tanh(x); }},
      {"relu", [](const array& x, StreamOrDevice s) { return nn::relu(x, s); }, std::make_shared<nn::ReLU>(),
       [](double x) { return std::max(x, 0.0); }},
      {"relu6", [](const array& x, StreamOrDevice s) { return nn::relu6(x, s); }, std::make_shared<nn::ReLU6>(),
       [](double x) { return std::min(std::max(x, 0.0), 6.0); }},
      {"silu", [](const array& x, StreamOrDevice s) { return nn::silu(x, s); }, std::make_shared<nn::SiLU>(),
       [](double x) { return x / (1 + std::exp(-x)); }},
      {"gelu", [](const array& x, StreamOrDevice s) { return nn::gelu(x, s); }, std::make_shared<nn::GELU>(),
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"gelu_tanh", [](const array& x, StreamOrDevice s) { return nn::gelu_tanh(x, s); },
       std::make_shared<nn::GELU>("tanh"),
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }},
      {"softplus", [](const array& x, StreamOrDevice s) { return nn::softplus(x, 1.0f, 20.0f, s); },
       std::make_shared<nn::Softplus>(), ref_softplus},
      {"hardsigmoid", [](const array& x, StreamOrDevice s) { return nn::hardsigmoid(x, s); },
       std::make_shared<nn::Hardsigmoid>(), [](double x) { return std::min(std::max(x + 3, 0.0), 6.0) / 6; }},
      {"hardswish", [](const array& x, StreamOrDevice s) { return nn::hardswish(x, s); },
       std::make_shared<nn::Hardswish>(), [](double x) { return x * std::min(std::max(x + 3, 0.0), 6.0) / 6; }},
  };
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      auto [x, xv] = test::random_array({3, 41}, t, -8, 8);
      for (const auto& a : acts) {
        SCOPED_TRACE(test::device_name(d) + " " + dtype_name(t) + " " + a.name);
        array y = a.fn(x, d);
        EXPECT_EQ(y.dtype(), t);
        EXPECT_EQ(y.shape(), x.shape());
        KILN_EXPECT_CLOSE(test::to_doubles(y), map_values(xv, a.ref), t, a.name);
        // The module runs on the default device, which may not be d: close, not bitwise equal.
        KILN_EXPECT_CLOSE(test::to_doubles(a.module->forward(x)), test::to_doubles(y), t, "module " + a.name);
        EXPECT_TRUE(a.module->parameters().empty());
      }
      // Far tails stay finite and accurate.
      if (t == float32 || t == float64) {
        Values big{-200, -60, 60, 200};
        array xb = astype(array(big, {4}), t);
        for (const auto& a : acts) {
          KILN_EXPECT_CLOSE(test::to_doubles(a.fn(xb, d)), map_values(big, a.ref), t, a.name + " in the tails");
        }
      }
    }
    // Integer inputs compute in float32, except relu and relu6.
    auto [xi, xiv] = test::random_array({10}, int32, -5, 5);
    for (const auto& a : acts) {
      Dtype want = (a.name == "relu" || a.name == "relu6") ? int32 : float32;
      array y = a.fn(xi, d);
      EXPECT_EQ(y.dtype(), want) << a.name;
      KILN_EXPECT_CLOSE(test::to_doubles(y), map_values(xiv, a.ref), float32, a.name + " of integers");
    }
  }
  KILN_EXPECT_THROW_MSG(nn::GELU("erf"), ValueError, "[GELU] approximate must be 'none' or 'tanh', got 'erf'");
  KILN_EXPECT_THROW_MSG(nn::hardtanh(zeros({2}), 1.0f, 1.0f), ValueError, "[hardtanh] min_val must be less");
  KILN_EXPECT_THROW_MSG(nn::Hardtanh(2.0f, -2.0f), ValueError, "[Hardtanh]");
  KILN_EXPECT_THROW_MSG(nn::celu(zeros({2}), 0.0f), ValueError, "[celu] alpha must be non-zero");
  KILN_EXPECT_THROW_MSG(nn::CELU(0.0f), ValueError, "[CELU]");
  test::note_gpu_skip();
}

TEST(NNLayers, SoftmaxGluAndTheirModules) {
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      SCOPED_TRACE(test::device_name(d) + " " + dtype_name(t));
      auto [x, xv] = test::random_array({3, 4, 6}, t, -4, 4);
      // Along axis 1: (3, 4, 6).
      Values sm(xv.size()), lsm(xv.size());
      for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 6; ++k) {
          double z = 0;
          for (int j = 0; j < 4; ++j) z += std::exp(xv[(i * 4 + j) * 6 + k]);
          for (int j = 0; j < 4; ++j) {
            int idx = (i * 4 + j) * 6 + k;
            sm[idx] = std::exp(xv[idx]) / z;
            lsm[idx] = xv[idx] - std::log(z);
          }
        }
      KILN_EXPECT_CLOSE(test::to_doubles(nn::Softmax(1)(x, d)), sm, t, "Softmax(1)");
      KILN_EXPECT_CLOSE(test::to_doubles(nn::LogSoftmax(1).forward(x)), lsm, t, "LogSoftmax(1)");
      // glu along the last axis (6 -> 3) and along axis 1 (4 -> 2).
      Values g_last, g_mid;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j)
          for (int k = 0; k < 3; ++k) {
            double a = xv[(i * 4 + j) * 6 + k], b = xv[(i * 4 + j) * 6 + k + 3];
            g_last.push_back(a / (1 + std::exp(-b)));
          }
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
          for (int k = 0; k < 6; ++k) {
            double a = xv[(i * 4 + j) * 6 + k], b = xv[(i * 4 + j + 2) * 6 + k];
            g_mid.push_back(a / (1 + std::exp(-b)));
          }
      array gl = nn::glu(x, -1, d);
      EXPECT_EQ(gl.shape(), (Shape{3, 4, 3}));
      KILN_EXPECT_CLOSE(test::to_doubles(gl), g_last, t, "glu(-1)");
      array gm = nn::GLU(1)(x, d);
      EXPECT_EQ(gm.shape(), (Shape{3, 2, 6}));
      KILN_EXPECT_CLOSE(test::to_doubles(gm), g_mid, t, "GLU(1)");
    }
  }
  KILN_EXPECT_THROW_MSG(nn::glu(zeros({2, 5})), ValueError, "[glu] axis -1 must have an even length");
  KILN_EXPECT_THROW_MSG(nn::glu(zeros({2, 4}), 2), IndexError, "[glu] axis 2 is out of range");
  // Identity and Flatten.
  array x = zeros({2, 3, 4, 5});
  EXPECT_TRUE(nn::Identity().forward(x).is_same(x));
  EXPECT_EQ(nn::Flatten()(x).shape(), (Shape{2, 60}));
  EXPECT_EQ(nn::Flatten(0, 1).forward(x).shape(), (Shape{6, 4, 5}));
  test::note_gpu_skip();
}

// ---- MultiHeadAttention ----

// PyTorch's nn.MultiheadAttention (batch_first) in float64. `bias_scores` (B, H, Lq, Lk) is added
// to the scores (-inf = masked); a query row with no key left gives zeros before out_proj. The
// results of the stages (products, bias additions, the attention) are rounded to `t` as kiln
// stores them, so that 16-bit dtypes are held to one stage's rounding, not the sum of all.
Values ref_mha(const Values& q, const Values& k, const Values& v, int64_t B, int64_t Lq, int64_t Lk, int64_t E,
               int64_t H, const std::map<std::string, Values>& p, bool bias, const Values& bias_scores,
               Dtype t = float64) {
  const int64_t D = E / H;
  const Values& W = p.at("in_proj_weight");
  auto linear = [&](const Values& x, const Values& w, const Values* b, int64_t rows, int64_t row0) {
    Values y = round_to(ref_linear(x, w, nullptr, rows, E, E, row0), t);
    if (!b) return y;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < E; ++j) y[r * E + j] += (*b)[row0 + j];
    return round_to(y, t);
  };
  const Values* bin = bias ? &p.at("in_proj_bias") : nullptr;
  Values Q = linear(q, W, bin, B * Lq, 0);
  Values K = linear(k, W, bin, B * Lk, E);
  Values V = linear(v, W, bin, B * Lk, 2 * E);
  Values O(B * Lq * E, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        Values sc(Lk);
        double top = -kInf;
        for (int64_t j = 0; j < Lk; ++j) {
          double s = 0;
          for (int64_t e = 0; e < D; ++e) s += Q[(b * Lq + i) * E + h * D + e] * K[(b * Lk + j) * E + h * D + e];
          sc[j] = s / std::sqrt(static_cast<double>(D)) + bias_scores[((b * H + h) * Lq + i) * Lk + j];
          top = std::max(top, sc[j]);
        }
        if (top == -kInf) continue;
        double z = 0;
        for (double& s : sc) z += (s = std::exp(s - top));
        for (int64_t j = 0; j < Lk; ++j)
          for (int64_t e = 0; e < D; ++e) O[(b * Lq + i) * E + h * D + e] += sc[j] / z * V[(b * Lk + j) * E + h * D + e];
      }
  return linear(round_to(O, t), p.at("out_proj.weight"), bias ? &p.at("out_proj.bias") : nullptr, B * Lq, 0);
}

TEST(NNLayers, MultiHeadAttentionParameters) {
  nn::MultiHeadAttention mha(32, 4);
  EXPECT_EQ(names_of(mha), (std::set<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  auto p = mha.parameters();
  EXPECT_EQ(p.at("in_proj_weight").shape(), (Shape{96, 32}));
  EXPECT_EQ(p.at("in_proj_bias").shape(), (Shape{96}));
  EXPECT_EQ(p.at("out_proj.weight").shape(), (Shape{32, 32}));
  EXPECT_EQ(test::to_doubles(p.at("in_proj_bias")), Values(96, 0.0));
  EXPECT_EQ(test::to_doubles(p.at("out_proj.bias")), Values(32, 0.0));
  // Xavier-uniform: bound sqrt(6 / (32 + 96)).
  Values w = test::to_doubles(p.at("in_proj_weight"));
  double bound = std::sqrt(6.0 / 128), lo = *std::min_element(w.begin(), w.end()),
         hi = *std::max_element(w.begin(), w.end());
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.9 * bound);
  EXPECT_GT(hi, 0.9 * bound);
  EXPECT_EQ(names_of(nn::MultiHeadAttention(8, 2, false)), (std::set<std::string>{"in_proj_weight", "out_proj.weight"}));
  EXPECT_EQ(nn::MultiHeadAttention(8, 2, true, bfloat16).parameters().at("out_proj.weight").dtype(), bfloat16);
  KILN_EXPECT_THROW_MSG(nn::MultiHeadAttention(10, 3), ValueError,
                        "[MultiHeadAttention] embed_dim (10) must be a positive multiple of num_heads (3)");
  KILN_EXPECT_THROW_MSG(nn::MultiHeadAttention(8, 0), ValueError, "[MultiHeadAttention]");
  KILN_EXPECT_THROW_MSG(nn::MultiHeadAttention(8, 2, true, int32), TypeError, "[MultiHeadAttention]");
}

TEST(NNLayers, MultiHeadAttentionMatchesTheDefinition) {
  const int64_t B = 2, Lq = 5, Lk = 7, E = 16, H = 4;
  for (Device d : test::devices()) {
    for (Dtype t : test::float_dtypes()) {
      for (bool bias : {true, false}) {
        nn::MultiHeadAttention mha(E, H, bias, t);
        auto p = randomize(mha);
        auto ref = [&](const auto&... args) { return ref_mha(args..., t); };
        auto [q, qv] = test::random_array({B, Lq, E}, t);
        auto [k, kv] = test::random_array({B, Lk, E}, t);
        auto [v, vv] = test::random_array({B, Lk, E}, t);
        auto check = [&](const array& got, const Values& ref, const std::string& what) {
          std::string w = test::device_name(d) + " " + dtype_name(t) + (bias ? " bias " : " ") + what;
          ASSERT_EQ(got.dtype(), t) << w;
          KILN_EXPECT_CLOSE(test::to_doubles(got), ref, t, w);
        };
        auto scores_from = [&](int64_t lq, int64_t lk, const std::function<double(int64_t, int64_t, int64_t, int64_t)>& f) {
          Values s(B * H * lq * lk);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < H; ++h)
              for (int64_t i = 0; i < lq; ++i)
                for (int64_t j = 0; j < lk; ++j) s[((b * H + h) * lq + i) * lk + j] = f(b, h, i, j);
          return s;
        };
        auto none = [](int64_t, int64_t, int64_t, int64_t) { return 0.0; };

        // Cross-attention, no mask.
        array y = mha(q, k, v, {}, false, {}, d);
        EXPECT_EQ(y.shape(), (Shape{B, Lq, E}));
        check(y, ref(qv, kv, vv, B, Lq, Lk, E, H, p, bias, scores_from(Lq, Lk, none)), "cross-attention");

        // Self-attention: one array for all three (one projection), and forward.
        Values self_ref = ref(kv, kv, kv, B, Lk, Lk, E, H, p, bias, scores_from(Lk, Lk, none));
        check(mha(k, k, k, {}, false, {}, d), self_ref, "self-attention");
        check(mha.forward(k), self_ref, "forward");
        check(mha(k, copy(k), copy(k), {}, false, {}, d), self_ref, "self-attention of copies");

        // A boolean attn_mask (Lq, Lk), true = masked out, with a fully masked row.
        Values mb = test::int_values(Lq * Lk, 0, 1);
        for (int64_t j = 0; j < Lk; ++j) mb[2 * Lk + j] = 1;
        array bool_mask = astype(array(mb, {Lq, Lk}), bool_);
        check(mha(q, k, v, bool_mask, false, {}, d),
              ref(qv, kv, vv, B, Lq, Lk, E, H, p, bias,
                      scores_from(Lq, Lk, [&](int64_t, int64_t, int64_t i, int64_t j) { return mb[i * Lk + j] ? -kInf : 0.0; })),
              "boolean attn_mask");

        // An additive attn_mask per batch entry and head (B * H, Lq, Lk), with a key padding mask.
        auto [am, amv] = test::random_array({B * H, Lq, Lk}, t, -3, 3);
        Values pad = test::int_values(B * Lk, 0, 1);
        pad[0] = 0;  // batch 0 keeps key 0
        array pad_mask = astype(array(pad, {B, Lk}), bool_);
        check(mha(q, k, v, am, false, pad_mask, d),
              ref(qv, kv, vv, B, Lq, Lk, E, H, p, bias,
                      scores_from(Lq, Lk,
                                  [&](int64_t b, int64_t h, int64_t i, int64_t j) {
                                    return pad[b * Lk + j] ? -kInf : amv[((b * H + h) * Lq + i) * Lk + j];
                                  })),
              "additive attn_mask and key_padding_mask");
        // Both boolean.
        check(mha(q, k, v, bool_mask, false, pad_mask, d),
              ref(qv, kv, vv, B, Lq, Lk, E, H, p, bias,
                      scores_from(Lq, Lk,
                                  [&](int64_t b, int64_t, int64_t i, int64_t j) {
                                    return (mb[i * Lk + j] || pad[b * Lk + j]) ? -kInf : 0.0;
                                  })),
              "boolean attn_mask and key_padding_mask");

        // Causal: queries at the end of the keys.
        auto causal = [&](int64_t lq, int64_t lk) {
          return [lq, lk](int64_t, int64_t, int64_t i, int64_t j) { return j <= lk - lq + i ? 0.0 : -kInf; };
        };
        check(mha(q, k, v, {}, true, {}, d), ref(qv, kv, vv, B, Lq, Lk, E, H, p, bias, scores_from(Lq, Lk, causal(Lq, Lk))),
              "causal, Lq < Lk");
        check(mha(k, k, k, {}, true, {}, d), ref(kv, kv, kv, B, Lk, Lk, E, H, p, bias, scores_from(Lk, Lk, causal(Lk, Lk))),
              "causal self-attention");

        // Unbatched (L, E).
        array q0 = squeeze(slice(q, {1, 0, 0}, {2, Lq, E}), {0}), k0 = squeeze(slice(k, {1, 0, 0}, {2, Lk, E}), {0}),
              v0 = squeeze(slice(v, {1, 0, 0}, {2, Lk, E}), {0});
        Values q0v(qv.begin() + Lq * E, qv.end()), k0v(kv.begin() + Lk * E, kv.end()), v0v(vv.begin() + Lk * E, vv.end());
        array y0 = mha(q0, k0, v0, {}, false, astype(array(Values(pad.begin() + Lk, pad.end()), {Lk}), bool_), d);
        EXPECT_EQ(y0.shape(), (Shape{Lq, E}));
        Values pad1(pad.begin() + Lk, pad.end());
        bool any_key = std::count(pad1.begin(), pad1.end(), 0.0) > 0;
        Values want0 = ref(q0v, k0v, v0v, 1, Lq, Lk, E, H, p, bias, [&] {
          Values s(H * Lq * Lk);
          for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < Lq; ++i)
              for (int64_t j = 0; j < Lk; ++j) s[(h * Lq + i) * Lk + j] = pad1[j] ? -kInf : 0.0;
          return s;
        }());
        check(y0, want0, any_key ? "unbatched" : "unbatched, all keys padded");
      }
    }
  }
  test::note_gpu_skip();
}

TEST(NNLayers, MultiHeadAttentionBeyondTheFusedHeadSize) {
  // head_dim 260 > the fused kernel's limit: the composed path, in float32.
  const int64_t B = 1, L = 3, E = 520, H = 2;
  nn::MultiHeadAttention mha(E, H);
  auto p = randomize(mha, -0.1, 0.1);
  auto [x, xv] = test::random_array({B, L, E}, float32);
  Values zero(B * H * L * L, 0.0);
  for (int64_t h = 0; h < H; ++h) zero[(h * L + 0) * L + 2] = -kInf;  // query 0 does not see key 2
  Values mb(L * L, 0.0);
  mb[2] = 1;
  KILN_EXPECT_CLOSE(test::to_doubles(mha(x, x, x, astype(array(mb, {L, L}), bool_))),
                    ref_mha(xv, xv, xv, B, L, L, E, H, p, true, zero), float32, "head_dim 260");
}

TEST(NNLayers, MultiHeadAttentionErrors) {
  nn::MultiHeadAttention mha(8, 2);
  array q = zeros({2, 3, 8}), k = zeros({2, 5, 8});
  KILN_EXPECT_THROW_MSG(mha(q, k, zeros({2, 4, 8})), ValueError, "[MultiHeadAttention] key and value must have the same length");
  KILN_EXPECT_THROW_MSG(mha(q, zeros({1, 5, 8}), zeros({1, 5, 8})), ValueError, "[MultiHeadAttention]");
  KILN_EXPECT_THROW_MSG(mha(q, zeros({5, 8}), zeros({5, 8})), ValueError, "all be (B, L, E) or all (L, E)");
  KILN_EXPECT_THROW_MSG(mha(zeros({2, 3, 6}), k, k), ValueError, "expects 8 features");
  KILN_EXPECT_THROW_MSG(mha(zeros({2, 3, 8}, int32), k, k), TypeError, "inputs must be floating");
  KILN_EXPECT_THROW_MSG(mha(q, k, k, zeros({3, 4})), ValueError, "attn_mask must have shape (3, 5) or (4, 3, 5)");
  KILN_EXPECT_THROW_MSG(mha(q, k, k, zeros({3, 5}, int32)), TypeError, "attn_mask must be bool or floating");
  KILN_EXPECT_THROW_MSG(mha(q, k, k, {}, false, zeros({2, 4}, bool_)), ValueError,
                        "key_padding_mask must have shape (2, 5)");
  KILN_EXPECT_THROW_MSG(mha(k, q, q, {}, true), ValueError, "causal attention needs Lq <= Lk");
}

// ---- losses ----

struct ClassCase {
  Shape batch;
  int64_t C;
};

// cross_entropy / nll_loss with class-index targets, per sample and reduced as PyTorch does.
Values ref_class_loss(const Values& x, const Values& t, int64_t C, const Values* w, int64_t ignore, double eps,
                      bool log_softmax_first, const std::string& reduction) {
  const int64_t N = static_cast<int64_t>(t.size());
  Values loss(N), wt(N);
  for (int64_t n = 0; n < N; ++n) {
    Values lp(x.begin() + n * C, x.begin() + (n + 1) * C);
    if (log_softmax_first) {
      double top = *std::max_element(lp.begin(), lp.end()), z = 0;
      for (double a : lp) z += std::exp(a - top);
      for (double& a : lp) a -= top + std::log(z);
    }
    int64_t c = static_cast<int64_t>(t[n]);
    if (c == ignore) {
      loss[n] = wt[n] = 0;
      continue;
    }
    wt[n] = w ? (*w)[c] : 1.0;
    double smooth = 0;
    for (int64_t j = 0; j < C; ++j) smooth -= (w ? (*w)[j] : 1.0) * lp[j];
    loss[n] = (1 - eps) * (-wt[n] * lp[c]) + eps / C * smooth;
  }
  if (reduction == "none") return loss;
  double s = 0, ws = 0;
  for (int64_t n = 0; n < N; ++n) s += loss[n], ws += wt[n];
  return {reduction == "sum" ? s : s / ws};
}

TEST(NNLosses, CrossEntropyWithClassIndices) {
  for (Device d : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      for (const ClassCase& c : {ClassCase{{12}, 5}, ClassCase{{3, 4}, 7}, ClassCase{{}, 4}}) {
        for (bool weighted : {false, true}) {
          for (double eps : {0.0, double(0.2f)}) {  // values a float holds exactly
            for (const char* red : {"mean", "sum", "none"}) {
              Shape ls = c.batch;
              ls.push_back(c.C);
              auto [x, xv] = test::random_array(ls, dt, -4, 4);
              auto [t, tv] = test::random_array(c.batch, int64, 0, c.C - 1);
              auto [w, wv] = test::random_array({c.C}, float32, 0.2, 2);
              // Some ignored targets (never all: the mean would be 0 / 0).
              Values tt = tv;
              for (size_t i = 1; i < tt.size(); i += 3) tt[i] = -100;
              t = astype(array(tt, c.batch), int64);
              std::ostringstream what;
              what << test::device_name(d) << " " << dt << " logits" << ls << (weighted ? " weighted" : "")
                   << " smoothing " << eps << " " << red;
              std::optional<array> wo;
              if (weighted) wo = w;
              array y = nn::cross_entropy(x, t, wo, -100, red, static_cast<float>(eps), d);
              EXPECT_EQ(y.dtype(), dt) << what.str();
              EXPECT_EQ(y.shape(), std::string(red) == "none" ? c.batch : Shape{}) << what.str();
              // A loss near 0 carries the rounding of logits as large as 4 (and of log C).
              EXPECT_LE(scaled_error(test::to_doubles(y),
                                     ref_class_loss(xv, tt, c.C, weighted ? &wv : nullptr, -100, eps, true, red),
                                     4 + std::log(double(c.C))),
                        test::tolerance(dt))
                  << what.str();
              // nll_loss of the log-probabilities is the unsmoothed cross entropy.
              if (eps == 0.0) {
                array lp = log_softmax(astype(x, float64), -1);
                KILN_EXPECT_CLOSE(test::to_doubles(nn::nll_loss(lp, t, wo, -100, red, d)),
                                  ref_class_loss(test::to_doubles(lp), tt, c.C, weighted ? &wv : nullptr, -100, 0, false, red),
                                  float64, "nll_loss " + what.str());
              }
            }
          }
        }
      }
    }
    // Other integer dtypes and an ignore_index inside the class range.
    auto [x, xv] = test::random_array({6, 3}, float32, -3, 3);
    auto [t, tv] = test::random_array({6}, uint8, 0, 2);
    EXPECT_LE(scaled_error(test::to_doubles(nn::cross_entropy(x, t, {}, 1, "mean", 0.0f, d)),
                           ref_class_loss(xv, tv, 3, nullptr, 1, 0, true, "mean"), 3 + std::log(3.0)),
              test::tolerance(float32))
        << "uint8 targets, ignore_index 1";
    // A target out of range gives NaN, not a silent value.
    array bad = astype(array(Values{0, 3, 1, 2, 0, 1}, {6}), int32);
    Values none = test::to_doubles(nn::cross_entropy(x, bad, {}, -100, "none", 0.0f, d));
    EXPECT_TRUE(std::isnan(none[1]));
    EXPECT_FALSE(std::isnan(none[0]));
    EXPECT_TRUE(std::isnan(nn::cross_entropy(x, bad, {}, -100, "mean", 0.0f, d).item<float>()));
    // Large logits stay finite.
    array huge = astype(array(Values{1000, -1000, 0, -1000, 1000, 0}, {2, 3}), float32);
    Values hv = test::to_doubles(nn::cross_entropy(huge, astype(array(Values{1, 1}, {2}), int32), {}, -100, "none", 0.0f, d));
    EXPECT_NEAR(hv[0], 2000, 1e-3);
    EXPECT_NEAR(hv[1], 0, 1e-6);
  }
  test::note_gpu_skip();
}

TEST(NNLosses, CrossEntropyWithProbabilities) {
  for (Device d : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      for (bool weighted : {false, true}) {
        for (double eps : {0.0, double(0.1f)}) {
          for (const char* red : {"mean", "sum", "none"}) {
            const int64_t N = 6, C = 5;
            auto [x, xv] = test::random_array({2, 3, C}, dt, -4, 4);
            auto [p, pv] = test::random_array({2, 3, C}, float32, 0, 1);
            auto [w, wv] = test::random_array({C}, float32, 0.2, 2);
            Values loss(N);
            for (int64_t n = 0; n < N; ++n) {
              double top = -kInf, z = 0;
              for (int64_t c = 0; c < C; ++c) top = std::max(top, xv[n * C + c]);
              for (int64_t c = 0; c < C; ++c) z += std::exp(xv[n * C + c] - top);
              for (int64_t c = 0; c < C; ++c) {
                double lp = xv[n * C + c] - top - std::log(z), tc = (1 - eps) * pv[n * C + c] + eps / C;
                loss[n] -= (weighted ? wv[c] : 1.0) * tc * lp;
              }
            }
            Values ref = loss;
            double total = 0;
            for (double l : loss) total += l;
            if (std::string(red) == "sum") ref = {total};
            if (std::string(red) == "mean") ref = {total / N};
            std::optional<array> wo;
            if (weighted) wo = w;
            array y = nn::cross_entropy(x, p, wo, -100, red, static_cast<float>(eps), d);
            EXPECT_EQ(y.shape(), std::string(red) == "none" ? (Shape{2, 3}) : Shape{});
            std::ostringstream what;
            what << test::device_name(d) << " " << dt << (weighted ? " weighted" : "") << " smoothing " << eps << " " << red;
            EXPECT_LE(scaled_error(test::to_doubles(y), ref, 4 + std::log(double(C))), test::tolerance(dt)) << what.str();
          }
        }
      }
    }
  }
  test::note_gpu_skip();
}

TEST(NNLosses, ClassificationErrors) {
  array x = zeros({4, 3});
  array t = zeros({4}, int32);
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, t, {}, -100, "avg"), ValueError,
                        "[cross_entropy] reduction must be 'mean', 'sum' or 'none', got 'avg'");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(zeros({4, 3}, int32), t), TypeError, "[cross_entropy] logits must be floating");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(array(1.0f), t), ValueError, "[cross_entropy] logits must have a class axis");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, zeros({3}, int32)), ValueError,
                        "[cross_entropy] class-index targets must have shape (4,)");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, zeros({4, 2})), ValueError,
                        "[cross_entropy] probability targets must have the logits' shape");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, zeros({4}, bool_)), TypeError, "[cross_entropy] targets must be integer");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, t, zeros({4})), ValueError, "[cross_entropy] weight must have shape (3,)");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, t, zeros({3}, int32)), TypeError, "[cross_entropy] weight must be floating");
  KILN_EXPECT_THROW_MSG(nn::cross_entropy(x, t, {}, -100, "mean", 1.5f), ValueError,
                        "[cross_entropy] label_smoothing must be in [0, 1]");
  KILN_EXPECT_THROW_MSG(nn::nll_loss(x, zeros({4})), TypeError, "[nll_loss] targets must be integer class indices");
  KILN_EXPECT_THROW_MSG(nn::nll_loss(x, zeros({4, 1}, int32)), ValueError, "[nll_loss] targets must have shape (4,)");
  KILN_EXPECT_THROW_MSG(nn::nll_loss(x, t, {}, -100, "batchmean"), ValueError, "[nll_loss] reduction");
}

Values reduce_ref(const Values& l, const std::string& red) {
  if (red == "none") return l;
  double s = 0;
  for (double v : l) s += v;
  return {red == "sum" ? s : s / static_cast<double>(l.size())};
}

TEST(NNLosses, RegressionLosses) {
  struct Loss {
    std::string name;
    std::function<array(const array&, const array&, const std::string&, StreamOrDevice)> fn;
    std::function<double(double, double)> ref;
  };
  std::vector<Loss> losses{
      {"mse_loss", [](const array& a, const array& b, const std::string& r, StreamOrDevice s) { return nn::mse_loss(a, b, r, s); },
       [](double x, double y) { return (x - y) * (x - y); }},
      {"l1_loss", [](const array& a, const array& b, const std::string& r, StreamOrDevice s) { return nn::l1_loss(a, b, r, s); },
       [](double x, double y) { return std::abs(x - y); }},
      {"smooth_l1_loss",
       [](const array& a, const array& b, const std::string& r, StreamOrDevice s) { return nn::smooth_l1_loss(a, b, 0.7f, r, s); },
       [](double x, double y) {
         double dd = std::abs(x - y), beta = static_cast<double>(0.7f);
         return dd < beta ? 0.5 * dd * dd / beta : dd - 0.5 * beta;
       }},
      {"smooth_l1_loss beta 0",
       [](const array& a, const array& b, const std::string& r, StreamOrDevice s) { return nn::smooth_l1_loss(a, b, 0.0f, r, s); },
       [](double x, double y) { return std::abs(x - y); }},
      {"huber_loss",
       [](const array& a, const array& b, const std::string& r, StreamOrDevice s) { return nn::huber_loss(a, b, 1.3f, r, s); },
       [](double x, double y) {
         double dd = std::abs(x - y), delta = static_cast<double>(1.3f);
         return dd < delta ? 0.5 * dd * dd : delta * (dd - 0.5 * delta);
       }},
  };
  for (Device d : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      auto [x, xv] = test::random_array({4, 9}, dt, -3, 3);
      auto [y, yv] = test::random_array({4, 9}, dt, -3, 3);
      for (const auto& l : losses) {
        Values per;
        for (size_t i = 0; i < xv.size(); ++i) per.push_back(l.ref(xv[i], yv[i]));
        for (const char* red : {"mean", "sum", "none"}) {
          array out = l.fn(x, y, red, d);
          EXPECT_EQ(out.dtype(), dt);
          EXPECT_EQ(out.shape(), std::string(red) == "none" ? x.shape() : Shape{});
          KILN_EXPECT_CLOSE(test::to_doubles(out), reduce_ref(per, red),
                            dt, test::device_name(d) + " " + dtype_name(dt) + " " + l.name + " " + red);
        }
      }
    }
    // Mixed dtypes promote; integer targets take the input's dtype.
    auto [x, xv] = test::random_array({7}, float32);
    auto [y, yv] = test::random_array({7}, float64);
    EXPECT_EQ(nn::mse_loss(x, y, "mean", d).dtype(), float64);
    auto [yi, yiv] = test::random_array({7}, int32, -3, 3);
    array li = nn::l1_loss(x, yi, "none", d);
    EXPECT_EQ(li.dtype(), float32);
    Values per;
    for (int i = 0; i < 7; ++i) per.push_back(std::abs(xv[i] - yiv[i]));
    KILN_EXPECT_CLOSE(test::to_doubles(li), per, float32, "l1_loss with integer targets");
  }
  KILN_EXPECT_THROW_MSG(nn::mse_loss(zeros({3}), zeros({4})), ValueError,
                        "[mse_loss] input and target must have the same shape, got (3,) and (4,)");
  KILN_EXPECT_THROW_MSG(nn::l1_loss(zeros({3}, int32), zeros({3})), TypeError, "[l1_loss] input must be floating");
  KILN_EXPECT_THROW_MSG(nn::mse_loss(zeros({3}), zeros({3}), "total"), ValueError, "[mse_loss] reduction");
  KILN_EXPECT_THROW_MSG(nn::smooth_l1_loss(zeros({3}), zeros({3}), -1.0f), ValueError,
                        "[smooth_l1_loss] beta must be non-negative");
  KILN_EXPECT_THROW_MSG(nn::huber_loss(zeros({3}), zeros({3}), 0.0f), ValueError, "[huber_loss] delta must be positive");
  test::note_gpu_skip();
}

TEST(NNLosses, BinaryCrossEntropy) {
  for (Device d : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      auto [x, xv] = test::random_array({3, 8}, dt, -6, 6);
      auto [t, tv] = test::random_array({3, 8}, dt, 0, 1);
      auto [w, wv] = test::random_array({8}, float32, 0.1, 2);
      auto [pw, pwv] = test::random_array({8}, float32, 0.5, 3);
      // Probabilities for binary_cross_entropy: sigmoid(x) rounded to dtype.
      array p = sigmoid(x);
      Values pv = test::to_doubles(p);
      for (bool weighted : {false, true}) {
        for (const char* red : {"mean", "sum", "none"}) {
          std::string what = test::device_name(d) + " " + dtype_name(dt) + (weighted ? " weighted " : " ") + red;
          std::optional<array> wo;
          if (weighted) wo = w;
          Values bce, bcel, bcep;
          for (size_t i = 0; i < xv.size(); ++i) {
            double wi = weighted ? wv[i % 8] : 1.0, tt = tv[i];
            double lp = std::max(std::log(pv[i]), -100.0), lq = std::max(std::log1p(-pv[i]), -100.0);
            bce.push_back(-wi * (tt * lp + (1 - tt) * lq));
            // From the definition with log sigmoid(x) = -log(1 + exp(-x)), log(1 - sigmoid(x)) = -log(1 + exp(x)).
            double ls = -std::log1p(std::exp(-xv[i])), l1s = -std::log1p(std::exp(xv[i]));
            bcel.push_back(-wi * (tt * ls + (1 - tt) * l1s));
            bcep.push_back(-wi * (pwv[i % 8] * tt * ls + (1 - tt) * l1s));
          }
          KILN_EXPECT_CLOSE(test::to_doubles(nn::binary_cross_entropy(p, t, wo, red, d)), reduce_ref(bce, red), dt,
                            "binary_cross_entropy " + what);
          array yl = nn::binary_cross_entropy_with_logits(x, t, wo, {}, red, d);
          EXPECT_EQ(yl.dtype(), dt);
          KILN_EXPECT_CLOSE(test::to_doubles(yl), reduce_ref(bcel, red), dt, "with_logits " + what);
          KILN_EXPECT_CLOSE(test::to_doubles(nn::binary_cross_entropy_with_logits(x, t, wo, pw, red, d)),
                            reduce_ref(bcep, red), dt, "with_logits and pos_weight " + what);
        }
      }
    }
    // Saturated inputs: finite losses (PyTorch's clamp at -100; the stable form for logits).
    array p = array(Values{0, 1, 0, 1}, {4});
    array t = array(Values{1, 0, 0, 1}, {4});
    Values b = test::to_doubles(nn::binary_cross_entropy(astype(p, float32), astype(t, float32), {}, "none", d));
    EXPECT_EQ(b, (Values{100, 100, 0, 0}));
    array x = astype(array(Values{-200, 200, 90, -90}, {4}), float32);
    Values bl = test::to_doubles(nn::binary_cross_entropy_with_logits(x, astype(t, float32), {}, {}, "none", d));
    EXPECT_NEAR(bl[0], 200, 1e-4);
    EXPECT_NEAR(bl[1], 200, 1e-4);
    EXPECT_NEAR(bl[2], 90, 1e-4);
    EXPECT_NEAR(bl[3], 90, 1e-4);
  }
  KILN_EXPECT_THROW_MSG(nn::binary_cross_entropy(zeros({3}), zeros({2, 3})), ValueError,
                        "[binary_cross_entropy] input and target must have the same shape");
  KILN_EXPECT_THROW_MSG(nn::binary_cross_entropy(zeros({2, 3}), zeros({2, 3}), zeros({2})), ValueError,
                        "[binary_cross_entropy]");
  KILN_EXPECT_THROW_MSG(nn::binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), {}, zeros({4})), ValueError,
                        "[binary_cross_entropy_with_logits]");
  KILN_EXPECT_THROW_MSG(nn::binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), zeros({5, 2, 3})), ValueError,
                        "weight of shape (5, 2, 3) does not broadcast");
  KILN_EXPECT_THROW_MSG(nn::binary_cross_entropy_with_logits(zeros({3}, int32), zeros({3})), TypeError,
                        "[binary_cross_entropy_with_logits] input must be floating");
  test::note_gpu_skip();
}

TEST(NNLosses, KlDiv) {
  for (Device d : test::devices()) {
    for (Dtype dt : test::float_dtypes()) {
      auto [x, xv] = test::random_array({4, 6}, dt, -5, 0);  // log-probabilities of the model
      auto [t, tv] = test::random_array({4, 6}, dt, 0, 1);
      // Zeros in the target count for nothing.
      Values tz = tv;
      tz[3] = tz[10] = 0;
      array tzero = astype(array(tz, {4, 6}), dt);
      for (bool log_target : {false, true}) {
        Values per;
        for (size_t i = 0; i < xv.size(); ++i) {
          per.push_back(log_target ? std::exp(tz[i]) * (tz[i] - xv[i]) : (tz[i] == 0 ? 0.0 : tz[i] * (std::log(tz[i]) - xv[i])));
        }
        for (const char* red : {"mean", "sum", "none", "batchmean"}) {
          Values ref = std::string(red) == "batchmean" ? Values{reduce_ref(per, "sum")[0] / 4} : reduce_ref(per, red);
          array y = nn::kl_div(x, tzero, red, log_target, d);
          EXPECT_EQ(y.dtype(), dt);
          // t log t - t x cancels where t is near exp(x): measured against the inputs' size (5).
          EXPECT_LE(scaled_error(test::to_doubles(y), ref, 5), test::tolerance(dt))
              << test::device_name(d) << " " << dt << (log_target ? " log_target " : " ") << red;
        }
      }
    }
  }
  KILN_EXPECT_THROW_MSG(nn::kl_div(zeros({3}), zeros({3}), "avg"), ValueError,
                        "[kl_div] reduction must be 'mean', 'sum', 'none' or 'batchmean', got 'avg'");
  KILN_EXPECT_THROW_MSG(nn::kl_div(array(0.0f), array(0.5f), "batchmean"), ValueError, "[kl_div] 'batchmean' needs");
  KILN_EXPECT_THROW_MSG(nn::kl_div(zeros({3}), zeros({4})), ValueError, "[kl_div] input and target");
  test::note_gpu_skip();
}

}  // namespace
}  // namespace kiln
