// Tests of kiln::nn: parameter naming of nested modules, update/load_weights and their errors,
// dtype casting, PyTorch-style initialisation, and the layers and activations against float64
// references written here, on every device.
#include <cmath>
#include <set>

#include "kiln/nn/layers.h"
#include "kiln/nn/module.h"
#include "test_utils.h"

namespace kiln {
namespace {

using nn::Embedding;
using nn::LayerNorm;
using nn::Linear;
using nn::Module;
using nn::RMSNorm;

// A miniature Llama: the names its parameters get are those of Hugging Face checkpoints.
struct Attention : Module {
  std::shared_ptr<Linear> q_proj, o_proj;
  Attention(int64_t d) {
    q_proj = register_module("q_proj", std::make_shared<Linear>(d, d, false));
    o_proj = register_module("o_proj", std::make_shared<Linear>(d, d));
  }
};
struct Block : Module {
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<RMSNorm> input_layernorm;
  Block(int64_t d) {
    self_attn = register_module("self_attn", std::make_shared<Attention>(d));
    input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(d));
  }
};
struct Inner : Module {
  std::shared_ptr<Embedding> embed_tokens;
  std::vector<std::shared_ptr<Block>> layers;
  Inner(int64_t vocab, int64_t d, int n) {
    embed_tokens = register_module("embed_tokens", std::make_shared<Embedding>(vocab, d));
    std::vector<std::shared_ptr<Block>> bs;
    for (int i = 0; i < n; ++i) bs.push_back(std::make_shared<Block>(d));
    layers = register_modules("layers", bs);
  }
};
struct Tiny : Module {
  std::shared_ptr<Inner> model;
  std::shared_ptr<Linear> lm_head;
  Tiny(int64_t vocab = 11, int64_t d = 6, int n = 2) {
    model = register_module("model", std::make_shared<Inner>(vocab, d, n));
    lm_head = register_module("lm_head", std::make_shared<Linear>(d, vocab, false));
    register_parameter("step", array(int64_t(0)));  // a non-floating parameter
  }
};

std::set<std::string> names_of(const std::map<std::string, array>& m) {
  std::set<std::string> s;
  for (const auto& [k, v] : m) s.insert(k);
  return s;
}

TEST(NN, ParameterNames) {
  Tiny t;
  std::set<std::string> want{"model.embed_tokens.weight", "lm_head.weight", "step"};
  for (int i = 0; i < 2; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    want.insert(p + "self_attn.q_proj.weight");
    want.insert(p + "self_attn.o_proj.weight");
    want.insert(p + "self_attn.o_proj.bias");
    want.insert(p + "input_layernorm.weight");
  }
  auto params = t.parameters();
  EXPECT_EQ(names_of(params), want);
  EXPECT_EQ(params.at("model.layers.1.self_attn.o_proj.bias").shape(), (Shape{6}));
  EXPECT_EQ(params.at("lm_head.weight").shape(), (Shape{11, 6}));
  // The map holds the modules' own arrays, not copies.
  EXPECT_TRUE(params.at("lm_head.weight").is_same(t.lm_head->weight()));
  EXPECT_EQ(t.num_parameters(), 11 * 6 + 11 * 6 + 1 + 2 * (36 + 36 + 6 + 6));
  EXPECT_EQ(t.model->children().size(), 3u);
  EXPECT_EQ(t.model->children()[1].first, "layers.0");
}

TEST(NN, RegistrationErrors) {
  Module m;
  m.register_parameter("w", zeros({2}));
  KILN_EXPECT_THROW_MSG(m.register_parameter("w", zeros({2})), ValueError, "'w' is already registered");
  KILN_EXPECT_THROW_MSG(m.register_module("w", std::make_shared<Linear>(2, 2)), ValueError, "already registered");
  KILN_EXPECT_THROW_MSG(m.register_parameter("a.b", zeros({2})), ValueError, "cannot contain '.'");
  KILN_EXPECT_THROW_MSG(m.register_module("a.b", std::make_shared<Linear>(2, 2)), ValueError, "cannot contain '.'");
  KILN_EXPECT_THROW_MSG(m.register_parameter("", zeros({2})), ValueError, "cannot be empty");
  KILN_EXPECT_THROW_MSG(m.register_module("n", std::shared_ptr<Module>()), ValueError, "is null");
  KILN_EXPECT_THROW_MSG(m.parameter("nope"), ValueError, "no parameter named 'nope'");
  m.register_modules("layers", std::vector<std::shared_ptr<Linear>>{std::make_shared<Linear>(2, 3)});
  KILN_EXPECT_THROW_MSG(m.register_modules("layers", std::vector<std::shared_ptr<Module>>{}), ValueError,
                        "already registered");
  EXPECT_EQ(names_of(m.parameters()), (std::set<std::string>{"w", "layers.0.weight", "layers.0.bias"}));
}

// Fresh random weights of the shapes (and float dtypes) of `m`'s parameters.
std::map<std::string, array> random_like(const Module& m) {
  std::map<std::string, array> w;
  for (const auto& [name, p] : m.parameters()) {
    w.emplace(name, is_floating(p.dtype()) ? test::random_array(p.shape(), p.dtype()).first : p);
  }
  return w;
}

TEST(NN, UpdateReplacesByName) {
  Tiny t;
  array w = test::random_array({6, 6}, float32).first;
  t.update({{"model.layers.1.self_attn.q_proj.weight", w}});
  EXPECT_TRUE(t.model->layers[1]->self_attn->q_proj->weight().is_same(w));
  EXPECT_FALSE(t.model->layers[0]->self_attn->q_proj->weight().is_same(w));
  array before = t.lm_head->weight();
  KILN_EXPECT_THROW_MSG(t.update({{"lm_head.weight", w}, {"lm_head.bias", w}, {"nope", w}}), ValueError,
                        "no parameters named 'lm_head.bias', 'nope'");
  EXPECT_TRUE(t.lm_head->weight().is_same(before));  // nothing changed
}

TEST(NN, LoadWeights) {
  Tiny t;
  auto w = random_like(t);
  t.load_weights(w);
  for (const auto& [name, p] : t.parameters()) EXPECT_TRUE(p.is_same(w.at(name))) << name;

  // Cast on load: floating weights take the dtype, the int64 one stays.
  Tiny h;
  h.load_weights(w, true, float16);
  for (const auto& [name, p] : h.parameters()) {
    EXPECT_EQ(p.dtype(), name == "step" ? int64 : float16) << name;
    if (name != "step") EXPECT_EQ(test::to_doubles(p), test::to_doubles(astype(w.at(name), float16))) << name;
  }
  KILN_EXPECT_THROW_MSG(h.load_weights(w, true, int32), TypeError, "[load_weights]");
}

TEST(NN, LoadWeightsErrors) {
  Tiny t;
  auto before = t.parameters();
  auto expect_unchanged = [&] {
    for (const auto& [name, p] : t.parameters()) EXPECT_TRUE(p.is_same(before.at(name))) << name;
  };
  auto good = random_like(t);

  auto w = good;
  w.erase("lm_head.weight");
  w.erase("model.layers.0.self_attn.o_proj.bias");
  KILN_EXPECT_THROW_MSG(t.load_weights(w), ValueError,
                        "[load_weights] missing parameters: 'lm_head.weight', 'model.layers.0.self_attn.o_proj.bias'");
  expect_unchanged();

  w = good;
  w.emplace("extra.a", zeros({1}));
  w.emplace("model.layers.2.self_attn.q_proj.weight", zeros({6, 6}));
  KILN_EXPECT_THROW_MSG(t.load_weights(w), ValueError,
                        "unexpected parameters: 'extra.a', 'model.layers.2.self_attn.q_proj.weight'");
  expect_unchanged();

  w = good;
  w.at("model.embed_tokens.weight") = zeros({6, 11});
  KILN_EXPECT_THROW_MSG(t.load_weights(w), ValueError,
                        "shape mismatch: 'model.embed_tokens.weight' has shape (6, 11) but the parameter has "
                        "shape (11, 6)");
  expect_unchanged();

  // All problems in one message.
  w.erase("lm_head.weight");
  w.emplace("zzz", zeros({1}));
  try {
    t.load_weights(w);
    ADD_FAILURE() << "expected ValueError";
  } catch (const ValueError& e) {
    std::string msg = e.what();
    for (const char* needle : {"missing parameters: 'lm_head.weight'", "unexpected parameters: 'zzz'",
                               "shape mismatch: 'model.embed_tokens.weight'"}) {
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  }
  expect_unchanged();

  // Not strict: missing and unexpected names are fine, shapes are still checked.
  KILN_EXPECT_THROW_MSG(t.load_weights(w, false), ValueError, "shape mismatch");
  expect_unchanged();
  w.erase("model.embed_tokens.weight");
  t.load_weights(w, false);
  EXPECT_TRUE(t.lm_head->weight().is_same(before.at("lm_head.weight")));
  EXPECT_TRUE(t.model->embed_tokens->weight().is_same(before.at("model.embed_tokens.weight")));
  EXPECT_TRUE(t.model->layers[0]->input_layernorm->weight().is_same(w.at("model.layers.0.input_layernorm.weight")));
}

TEST(NN, ToCastsFloatingParameters) {
  for (Dtype d : test::float_dtypes()) {
    Tiny t;
    auto w = t.parameters();
    t.to(d);
    t.eval();
    for (const auto& [name, p] : t.parameters()) {
      EXPECT_EQ(p.dtype(), name == "step" ? int64 : d) << name;
      EXPECT_TRUE(p.is_available()) << name;
      EXPECT_EQ(test::to_doubles(p), test::to_doubles(astype(w.at(name), p.dtype()))) << name;
    }
  }
  Tiny t;
  KILN_EXPECT_THROW_MSG(t.to(int32), TypeError, "[Module.to]");
}

TEST(NN, Initialisation) {
  Linear l(64, 300, true, bfloat16);
  EXPECT_EQ(l.weight().shape(), (Shape{300, 64}));
  EXPECT_EQ(l.weight().dtype(), bfloat16);
  double k = 1.0 / 8;
  for (const char* name : {"weight", "bias"}) {
    auto v = test::to_doubles(l.parameter(name));
    double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    EXPECT_GE(lo, -k);
    EXPECT_LE(hi, k);
    EXPECT_LT(lo, -0.8 * k) << name << ": should fill the range";
    EXPECT_GT(hi, 0.8 * k) << name;
  }
  Embedding e(200, 100);
  auto v = test::to_doubles(e.weight());
  double mean = 0, sq = 0;
  for (double x : v) mean += x / v.size(), sq += x * x / v.size();
  EXPECT_NEAR(mean, 0, 0.05);
  EXPECT_NEAR(std::sqrt(sq - mean * mean), 1, 0.05);
  EXPECT_EQ(test::to_doubles(RMSNorm(5).weight()), std::vector<double>(5, 1.0));
  LayerNorm ln(4);
  EXPECT_EQ(test::to_doubles(ln.parameter("weight")), std::vector<double>(4, 1.0));
  EXPECT_EQ(test::to_doubles(ln.parameter("bias")), std::vector<double>(4, 0.0));
  EXPECT_TRUE(LayerNorm(4, 1e-5f, false).parameters().empty());
  EXPECT_FALSE(Linear(3, 2, false).has_bias());
  EXPECT_EQ(Linear(0, 2).weight().shape(), (Shape{2, 0}));

  KILN_EXPECT_THROW_MSG(Linear(-1, 2), ValueError, "[Linear] in_features");
  KILN_EXPECT_THROW_MSG(Linear(2, 2, true, int32), TypeError, "[Linear]");
  KILN_EXPECT_THROW_MSG(Embedding(2, -3), ValueError, "[Embedding] dim");
  KILN_EXPECT_THROW_MSG(RMSNorm(-1), ValueError, "[RMSNorm]");
  KILN_EXPECT_THROW_MSG(LayerNorm(3, 1e-5f, true, uint8), TypeError, "[LayerNorm]");
}

// ---- layers against float64 references ----

// (rows, n) @ (m, n)^T + b, all row-major.
std::vector<double> ref_linear(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* b,
                               int64_t rows, int64_t n, int64_t m) {
  std::vector<double> y(rows * m);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      double s = b ? (*b)[j] : 0.0;
      for (int64_t k = 0; k < n; ++k) s += x[r * n + k] * w[j * n + k];
      y[r * m + j] = s;
    }
  }
  return y;
}

TEST(NN, LinearForward) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype d : test::float_dtypes()) {
      for (bool bias : {true, false}) {
        SCOPED_TRACE(test::device_name(dev) + " " + dtype_name(d) + (bias ? " bias" : " no bias"));
        int64_t in = 24, out = 10;
        Linear l(in, out, bias, d);
        auto [w, wv] = test::random_array({out, in}, d);
        auto [b, bv] = test::random_array({out}, d);
        std::map<std::string, array> ws{{"weight", w}};
        if (bias) ws.emplace("bias", b);
        l.load_weights(ws);
        for (Shape xs : {Shape{2, 3, in}, Shape{in}, Shape{0, in}, Shape{5, in}}) {
          auto [x, xv] = test::random_array(xs, d);
          array y = l(x, dev);
          Shape ys = xs;
          ys.back() = out;
          EXPECT_EQ(y.shape(), ys);
          EXPECT_EQ(y.dtype(), d);
          KILN_EXPECT_CLOSE(test::to_doubles(y), ref_linear(xv, wv, bias ? &bv : nullptr, x.size() / in, in, out), d,
                            "Linear on " << ::testing::PrintToString(xs));
        }
        // A transposed (non-contiguous) input.
        auto [xt, xtv] = test::random_array({in, 4}, d);
        std::vector<double> xtT(4 * in);
        for (int64_t i = 0; i < in; ++i)
          for (int64_t j = 0; j < 4; ++j) xtT[j * in + i] = xtv[i * 4 + j];
        KILN_EXPECT_CLOSE(test::to_doubles(l(transpose(xt), dev)), ref_linear(xtT, wv, bias ? &bv : nullptr, 4, in, out),
                          d, "Linear on a transposed input");
        KILN_EXPECT_THROW_MSG(l(zeros({2, in + 1}, d), dev), ValueError, "[Linear] expects inputs with 24 features");
        KILN_EXPECT_THROW_MSG(l(array(1.0f), dev), ValueError, "[Linear]");
      }
    }
  }
}

TEST(NN, EmbeddingForward) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype d : test::float_dtypes()) {
      SCOPED_TRACE(test::device_name(dev) + " " + dtype_name(d));
      int64_t num = 13, dim = 7;
      Embedding e(num, dim, d);
      auto [w, wv] = test::random_array({num, dim}, d);
      e.load_weights({{"weight", w}});
      for (Dtype id_t : {int32, int64, uint32}) {
        auto [ids, idv] = test::random_array({3, 4}, id_t, 0, num - 1);
        array y = e(ids, dev);
        EXPECT_EQ(y.shape(), (Shape{3, 4, dim}));
        EXPECT_EQ(y.dtype(), d);
        std::vector<double> ref;
        for (double id : idv)
          for (int64_t j = 0; j < dim; ++j) ref.push_back(wv[static_cast<int64_t>(id) * dim + j]);
        EXPECT_EQ(test::to_doubles(y), ref);  // a lookup is exact
      }
      EXPECT_EQ(e(array(int64_t(2)), dev).shape(), (Shape{dim}));
      // The tied output head.
      auto [x, xv] = test::random_array({5, dim}, d);
      KILN_EXPECT_CLOSE(test::to_doubles(e.as_linear(x, dev)), ref_linear(xv, wv, nullptr, 5, dim, num), d,
                        "Embedding.as_linear");
      KILN_EXPECT_THROW_MSG(e(zeros({2}, float32), dev), TypeError, "[Embedding] ids must be integers");
      KILN_EXPECT_THROW_MSG(e.as_linear(zeros({2, dim + 1}, d), dev), ValueError, "[Embedding.as_linear]");
    }
  }
}

// Normalizes each row of (rows, n): (x - mean) / sqrt(var + eps) * w + b, with mean = 0 for RMS.
std::vector<double> ref_norm(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                             int64_t n, double eps, bool rms) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / n; ++r) {
    const double* row = x.data() + r * n;
    double mean = 0, var = 0;
    if (!rms) {
      for (int64_t k = 0; k < n; ++k) mean += row[k] / n;
    }
    for (int64_t k = 0; k < n; ++k) var += (row[k] - mean) * (row[k] - mean) / n;
    for (int64_t k = 0; k < n; ++k) {
      y[r * n + k] = (row[k] - mean) / std::sqrt(var + eps) * (w.empty() ? 1 : w[k]) + (b.empty() ? 0 : b[k]);
    }
  }
  return y;
}

TEST(NN, NormForward) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype d : test::float_dtypes()) {
      SCOPED_TRACE(test::device_name(dev) + " " + dtype_name(d));
      int64_t n = 32;
      float eps = 1e-5f;
      auto [w, wv] = test::random_array({n}, d);
      auto [b, bv] = test::random_array({n}, d);
      auto [x, xv] = test::random_array({3, 5, n}, d);

      RMSNorm rms(n, eps, d);
      rms.update({{"weight", w}});
      array y = rms(x, dev);
      EXPECT_EQ(y.shape(), x.shape());
      EXPECT_EQ(y.dtype(), d);
      KILN_EXPECT_CLOSE(test::to_doubles(y), ref_norm(xv, wv, {}, n, eps, true), d, "RMSNorm");

      LayerNorm ln(n, eps, true, d);
      ln.load_weights({{"weight", w}, {"bias", b}});
      KILN_EXPECT_CLOSE(test::to_doubles(ln(x, dev)), ref_norm(xv, wv, bv, n, eps, false), d, "LayerNorm");
      LayerNorm plain(n, eps, false, d);
      KILN_EXPECT_CLOSE(test::to_doubles(plain(x, dev)), ref_norm(xv, {}, {}, n, eps, false), d,
                        "LayerNorm without affine");

      // A transposed input: the normalized axis is strided.
      auto [xt, xtv] = test::random_array({n, 4}, d);
      std::vector<double> xtT(4 * n);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < 4; ++j) xtT[j * n + i] = xtv[i * 4 + j];
      KILN_EXPECT_CLOSE(test::to_doubles(rms(transpose(xt), dev)), ref_norm(xtT, wv, {}, n, eps, true), d,
                        "RMSNorm on a transposed input");
      KILN_EXPECT_CLOSE(test::to_doubles(ln(transpose(xt), dev)), ref_norm(xtT, wv, bv, n, eps, false), d,
                        "LayerNorm on a transposed input");

      KILN_EXPECT_THROW_MSG(rms(zeros({2, n - 1}, d), dev), ValueError, "[RMSNorm] expects inputs with 32");
      KILN_EXPECT_THROW_MSG(ln(zeros({2, n + 1}, d), dev), ValueError, "[LayerNorm]");
    }
  }
}

TEST(NN, Activations) {
  test::note_gpu_skip();
  auto ref = [](double x, int which) {
    switch (which) {
      case 0: return x / (1 + std::exp(-x));
      case 1: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
      case 2: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
      default: return std::max(x, 0.0);
    }
  };
  const char* names[] = {"silu", "gelu", "gelu_tanh", "relu"};
  for (auto dev : test::devices()) {
    for (Dtype d : test::float_dtypes()) {
      auto [x, xv] = test::random_array({4, 33}, d, -6, 6);
      array ys[] = {nn::silu(x, dev), nn::gelu(x, dev), nn::gelu_tanh(x, dev), nn::relu(x, dev)};
      for (int k = 0; k < 4; ++k) {
        SCOPED_TRACE(test::device_name(dev) + " " + names[k]);
        EXPECT_EQ(ys[k].dtype(), d);
        std::vector<double> r;
        for (double v : xv) r.push_back(ref(v, k));
        KILN_EXPECT_CLOSE(test::to_doubles(ys[k]), r, d, names[k]);
      }
      // Non-contiguous input.
      array xt = transpose(x);
      std::vector<double> r, xtv = test::to_doubles(xt);
      for (double v : xtv) r.push_back(ref(v, 1));
      KILN_EXPECT_CLOSE(test::to_doubles(nn::gelu(xt, dev)), r, d, "gelu on a transposed input");
    }
    // Integers: relu keeps the dtype, the others compute in float32.
    auto [xi, xiv] = test::random_array({10}, int32, -5, 5);
    array ri = nn::relu(xi, dev);
    EXPECT_EQ(ri.dtype(), int32);
    std::vector<double> r;
    for (double v : xiv) r.push_back(std::max(v, 0.0));
    EXPECT_EQ(test::to_doubles(ri), r);
    EXPECT_EQ(nn::silu(xi, dev).dtype(), float32);
    EXPECT_EQ(nn::gelu(xi, dev).dtype(), float32);
    EXPECT_EQ(nn::gelu(zeros({0, 3}), dev).shape(), (Shape{0, 3}));
    // 0-d and broadcast (stride-0) inputs.
    EXPECT_EQ(nn::relu(array(-2.5f), dev).item<float>(), 0.0f);
    EXPECT_NEAR(nn::silu(array(1.0), dev).item<double>(), 1 / (1 + std::exp(-1.0)), 1e-15);
    array bx = broadcast_to(array({-1.0, 2.0}), {3, 2});
    std::vector<double> g = test::to_doubles(nn::gelu(bx, dev));
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(g[i], ref(i % 2 ? 2.0 : -1.0, 1), 1e-15);
  }
}

TEST(NN, TinyModelRunsEndToEnd) {
  Tiny t(17, 8, 2);
  array ids = array({1, 5, 16}, {1, 3});
  array h = (*t.model->embed_tokens)(ids);
  for (const auto& layer : t.model->layers) {
    array a = (*layer->input_layernorm)(h);
    h = add(h, (*layer->self_attn->o_proj)((*layer->self_attn->q_proj)(a)));
  }
  array logits = (*t.lm_head)(h);
  EXPECT_EQ(logits.shape(), (Shape{1, 3, 17}));
  for (double v : test::to_doubles(logits)) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace kiln
