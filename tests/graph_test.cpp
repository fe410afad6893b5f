// The lazy graph: nothing runs before eval; deep graphs evaluate and die without recursion;
// evaluated arrays forget their inputs; intermediates are freed as soon as their last consumer
// has run; async_eval; implicit evaluation when reading.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "kiln/backend/kernels.h"
#include "tests/test_utils.h"

using namespace kiln;

namespace {

Backend backend_of(Device d) { return d.type == Device::cpu ? Backend::cpu : Backend::gpu; }

// A primitive no backend has a kernel for.
class NoKernel : public Primitive {
 public:
  const char* name() const override { return "graph_test_no_kernel"; }
};

std::vector<double> map(const std::vector<double>& v, double (*f)(double)) {
  std::vector<double> out = v;
  for (auto& x : out) x = f(x);
  return out;
}

}  // namespace

TEST(GraphLazy, NothingRunsBeforeEval) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({8, 5}, float32);
    size_t cpu = kernel_launches(Backend::cpu), gpu = kernel_launches(Backend::gpu);
    array y = exp(x, dev) + sin(x, dev) * 2.0;
    array z = reshape(transpose(y, dev), {-1}, dev);
    array w = astype(slice(z, {1}, {30}, {3}, dev), float16, dev);
    array v = where(w > 1.0, w, zeros_like(w, dev), dev);
    // Metadata is there without evaluating.
    EXPECT_EQ(v.shape(), (Shape{10}));
    EXPECT_EQ(v.dtype(), float16);
    EXPECT_EQ(y.size(), 40);
    EXPECT_EQ(y.nbytes(), 160u);
    EXPECT_EQ(z.ndim(), 1);
    EXPECT_EQ(v.device(), dev);
    EXPECT_EQ(kernel_launches(Backend::cpu), cpu) << "building a graph ran a CPU kernel";
    EXPECT_EQ(kernel_launches(Backend::gpu), gpu) << "building a graph ran a GPU kernel";
    for (const array& a : {y, z, w, v}) {
      EXPECT_FALSE(a.is_available());
      EXPECT_TRUE(a.has_primitive());
      EXPECT_FALSE(a.inputs().empty());
      EXPECT_EQ(a.buffer(), nullptr);
    }
    eval(v);
    EXPECT_GT(kernel_launches(backend_of(dev)), dev.type == Device::cpu ? cpu : gpu);
    EXPECT_TRUE(v.is_available());
    EXPECT_TRUE(w.is_available());  // everything on the way was computed
  }
}

// A node shared by several consumers runs once; evaluating again runs nothing.
TEST(GraphLazy, SharedNodesRunOnce) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({16}, float32, -1, 1);
    array a = exp(x, dev);
    array b = add(a, a, dev);
    array c = multiply(a, b, dev);
    size_t before = kernel_launches(backend_of(dev));
    eval(c, b);
    EXPECT_EQ(kernel_launches(backend_of(dev)) - before, 3u) << test::device_name(dev);
    eval(c);
    c.eval();
    EXPECT_EQ(kernel_launches(backend_of(dev)) - before, 3u);
    std::vector<double> want = xv;
    for (auto& v : want) v = 2 * std::exp(v) * std::exp(v);
    KILN_EXPECT_CLOSE(test::to_doubles(c), want, float32, "diamond on " << test::device_name(dev));
  }
}

TEST(GraphLazy, EvaluatedArraysDropTheirInputs) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({4, 4}, float32);
    array y = exp(x, dev) + 1.0;
    array t = transpose(y, dev);
    array z = t * 2.0;
    eval(z);
    for (const array& a : {y, t, z}) {
      EXPECT_TRUE(a.is_available());
      EXPECT_FALSE(a.has_primitive());
      EXPECT_TRUE(a.inputs().empty());
      EXPECT_NE(a.buffer(), nullptr);
    }
    EXPECT_EQ(t.buffer().get(), y.buffer().get());  // the view still shares the buffer it needs
    std::vector<double> want;
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) want.push_back(2 * static_cast<float>(std::exp(xv[j * 4 + i]) + 1));
    }
    KILN_EXPECT_CLOSE(test::to_doubles(z), want, float32, "values after detaching");
  }
}

// One million ops in a chain evaluate without recursion (the CPU keeps the test quick).
TEST(GraphDeep, MillionOpChainEvaluates) {
  Device cpu(Device::cpu);
  array one = array(1, int32);
  array x = zeros({}, int32, cpu);
  constexpr int kN = 1000000;
  for (int i = 0; i < kN; ++i) x = add(x, one, cpu);
  EXPECT_FALSE(x.is_available());
  EXPECT_EQ(x.item<int32_t>(), kN);
  EXPECT_TRUE(x.inputs().empty());
}

// Dropping an unevaluated chain of one million nodes releases them without recursion.
TEST(GraphDeep, DroppingAMillionNodeChain) {
  synchronize();  // no asynchronous work may still hold arrays while memory is compared
  size_t before = get_active_memory();
  {
    array one = array(1.f);
    array x = zeros({}, float32, Device(Device::cpu));
    for (int i = 0; i < 1000000; ++i) x = negative(add(x, one));
  }
  EXPECT_EQ(get_active_memory(), before);
  // And a deep chain whose root was evaluated midway still dies cleanly.
  {
    array x = zeros({3});
    for (int i = 0; i < 200000; ++i) {
      x = x + 1.0;
      if (i == 100000) x.eval();
    }
  }
  EXPECT_EQ(get_active_memory(), before);
}

// Peak memory while evaluating a long elementwise chain on a large array stays near what the
// live arrays need: each intermediate dies once its consumer has run.
TEST(GraphMemory, IntermediatesFreedEarly) {
  constexpr int64_t n = 1 << 20;
  const size_t nb = n * sizeof(float);
  const size_t slack = 1 << 18;  // scalars, rounding
  synchronize();
  for (Device dev : test::devices()) {
    // The input stays alive: the chain needs at most two more arrays at once (on the GPU, also
    // the input's device copy).
    {
      auto [x, xv] = test::random_array({n}, float32, -1, 1);
      x.eval();
      array y = x;
      // Every op names the device: the default device (the GPU where there is one) must not
      // take part, or buffers would hold copies on both sides.
      array a = array(1.01f), b = array(0.1f);
      for (int i = 0; i < 40; ++i) y = sin(add(multiply(y, a, dev), b, dev), dev);
      size_t base = get_active_memory();
      reset_peak_memory();
      eval(y);
      size_t extra = dev.type == Device::cpu ? 2 * nb : 3 * nb;
      EXPECT_LE(get_peak_memory(), base + extra + slack) << test::device_name(dev);
      EXPECT_LE(get_active_memory(), base + (dev.type == Device::cpu ? nb : 2 * nb) + slack);
      double v = xv[12345];
      for (int i = 0; i < 40; ++i) v = std::sin(v * 1.01 + 0.1);
      EXPECT_NEAR(y.to_vector<float>()[12345], v, 1e-4);
    }
    // The input dropped before eval is freed after its first consumer.
    {
      array y = zeros({1}, float32);
      size_t base;
      {
        auto [x, xv] = test::random_array({n}, float32, -1, 1);
        x.eval();
        y = x;
        array h = array(0.5f);
        for (int i = 0; i < 40; ++i) y = exp(multiply(y, h, dev), dev);
        base = get_active_memory();
      }
      reset_peak_memory();
      eval(y);
      size_t extra = dev.type == Device::cpu ? nb : 2 * nb;
      EXPECT_LE(get_peak_memory(), base + extra + slack) << test::device_name(dev);
      EXPECT_LE(get_active_memory(), base + slack) << "the input was not freed on " << test::device_name(dev);
    }
  }
}

TEST(GraphAsync, ValuesAreRightWhenRead) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({1 << 16}, float32, -2, 2);
    array y = exp(x, dev) * 2.0;
    array z = sin(x, dev) + cos(x, dev);
    async_eval({y, z});
    async_eval({y});  // again: harmless
    KILN_EXPECT_CLOSE(test::to_doubles(y), map(xv, [](double v) { return 2 * std::exp(v); }), float32, "async y");
    KILN_EXPECT_CLOSE(test::to_doubles(z), map(xv, [](double v) { return std::sin(v) + std::cos(v); }), float32,
                      "async z");
    // Building on an array while it is being evaluated asynchronously.
    array w = tanh(x, dev);
    async_eval({w});
    array u = w + 1.0;
    KILN_EXPECT_CLOSE(test::to_doubles(u), map(xv, [](double v) { return std::tanh(v) + 1; }), float32, "async u");
    // synchronize waits for asynchronous work too.
    array q = cosh(x, dev);
    async_eval({q});
    synchronize();
    EXPECT_TRUE(q.is_available());
    EXPECT_TRUE(w.is_available());
  }
}

// async_eval returns before the work is done: a long chain is still running when it returns.
TEST(GraphAsync, ReturnsAtOnce) {
  array x = zeros({}, int32, Device(Device::cpu));
  array one(1);
  for (int i = 0; i < 300000; ++i) x = add(x, one, Device(Device::cpu));
  auto t0 = std::chrono::steady_clock::now();
  async_eval({x});
  bool done_at_return = x.is_available();
  auto dt = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(done_at_return) << "async_eval returned only after evaluating";
  EXPECT_LT(std::chrono::duration<double>(dt).count(), 0.5);
  EXPECT_EQ(x.item<int32_t>(), 300000);
}

TEST(GraphErrors, MissingKernelReportsAndLeavesGraphUsable) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({3}, float32);
    array y = exp(x, dev);
    array bad(Shape{3}, float32, std::make_shared<NoKernel>(), {y}, to_stream(dev));
    array z = bad + 1.0;
    KILN_EXPECT_THROW_MSG(z.eval(), RuntimeError, "graph_test_no_kernel");
    KILN_EXPECT_THROW_MSG(eval(bad), RuntimeError, dev.type == Device::cpu ? "CPU" : "GPU");
    EXPECT_FALSE(bad.is_available());
    // What could run did, and is usable.
    KILN_EXPECT_CLOSE(test::to_doubles(y), map(xv, [](double v) { return std::exp(v); }), float32, "y after failure");
    // async_eval swallows the error; reading reports it.
    async_eval({z});
    KILN_EXPECT_THROW_MSG(z.eval(), RuntimeError, "graph_test_no_kernel");
  }
}

TEST(GraphImplicitEval, ReadingEvaluates) {
  for (Device dev : test::devices()) {
    auto [x, xv] = test::random_array({2, 3}, float32, 0.5, 2);
    array y = log(x, dev);
    EXPECT_FALSE(y.is_available());
    const float* p = y.data<float>();
    EXPECT_TRUE(y.is_available());
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], std::log(xv[i]), 1e-6);

    array s = reshape(slice(sqrt(x, dev), {1, 2}, {2, 3}), {}, dev);
    EXPECT_FALSE(s.is_available());
    EXPECT_NEAR(s.item<float>(), std::sqrt(xv[5]), 1e-6);

    array v = x * 3.0;
    auto vv = v.to_vector<double>();
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(vv[i], static_cast<float>(xv[i] * 3), 1e-5);

    array pr = x + 1.0;
    std::ostringstream os;
    os << pr;
    EXPECT_TRUE(pr.is_available());
    std::ostringstream want;
    want.precision(6);
    want << static_cast<float>(xv[0] + 1);
    EXPECT_NE(os.str().find(want.str()), std::string::npos) << os.str();
    EXPECT_NE(os.str().find("dtype=float32"), std::string::npos) << os.str();
  }
}
