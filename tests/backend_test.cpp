// Backend coverage and devices: every primitive with a CPU kernel has a GPU kernel (in a CUDA
// build); the GPU path never runs a CPU kernel; the default device; arrays move between devices
// without explicit copies; streams.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "kiln/backend/kernels.h"
#include "kiln/primitives_elementwise.h"
#include "kiln/version.h"
#include "tests/test_utils.h"

using namespace kiln;

namespace {

// The primitives of the core's own ops, by kernel name.
std::vector<std::string> core_primitives() {
  std::vector<std::string> names;
#define KILN_X(n) names.push_back(op_name(UnaryOp::n));
  KILN_UNARY_OPS(KILN_X)
#undef KILN_X
#define KILN_X(n) names.push_back(op_name(BinaryOp::n));
  KILN_BINARY_OPS(KILN_X)
#undef KILN_X
  for (const char* n : {"where", "astype", "copy", "contiguous", "reshape", "transpose", "broadcast_to", "slice",
                        "as_strided", "view", "arange"}) {
    names.push_back(n);
  }
  return names;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST(BackendCoverage, CorePrimitivesHaveCpuKernels) {
  auto cpu = registered_ops(Backend::cpu);
  for (const auto& n : core_primitives()) EXPECT_TRUE(has(cpu, n)) << "no CPU kernel for '" << n << "'";
  if (built_with_cuda()) {
    auto gpu = registered_ops(Backend::gpu);
    for (const auto& n : core_primitives()) EXPECT_TRUE(has(gpu, n)) << "no GPU kernel for '" << n << "'";
  }
}

// Enumerates every registered primitive: each must run on both backends.
TEST(BackendCoverage, EveryPrimitiveHasAGpuKernel) {
  if (!built_with_cuda()) GTEST_SKIP() << "kiln was built without CUDA, so there are no GPU kernels to compare";
  auto cpu = registered_ops(Backend::cpu), gpu = registered_ops(Backend::gpu);
  EXPECT_FALSE(cpu.empty());
  for (const auto& n : cpu) EXPECT_TRUE(has(gpu, n)) << "primitive '" << n << "' has a CPU kernel but no GPU kernel";
  for (const auto& n : gpu) EXPECT_TRUE(has(cpu, n)) << "primitive '" << n << "' has a GPU kernel but no CPU kernel";
}

// A graph of every elementwise, shape and creation op evaluated on the GPU runs no CPU kernel.
TEST(BackendCoverage, GpuPathNeverRunsCpuKernels) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    GTEST_SKIP() << "no GPU present";
  }
  Device gpu(Device::gpu);
  auto [x, xv] = test::random_array({4, 6}, float32, 0.2, 0.9);
  auto [n, nv] = test::random_array({4, 6}, int32, 1, 9);
  auto [c, cv] = test::random_array({4, 6}, complex64, -1, 1);
  size_t cpu_before = kernel_launches(Backend::cpu), gpu_before = kernel_launches(Backend::gpu);
  std::vector<array> outs;
  using UFn = array (*)(const array&, StreamOrDevice);
  using BFn = array (*)(const array&, const array&, StreamOrDevice);
  std::vector<UFn> unary = {kiln::abs, negative, sign, kiln::exp, exp2, kiln::log, log2, log10, log1p, expm1,
                            kiln::sqrt, rsqrt, square, reciprocal, kiln::sin, kiln::cos, kiln::tan, arcsin, arccos,
                            arctan, kiln::sinh, kiln::cosh, kiln::tanh, arcsinh, arccosh, arctanh, sigmoid,
                            kiln::erf, erfinv, kiln::floor, kiln::ceil, kiln::round, kiln::isnan, kiln::isinf,
                            kiln::isfinite, logical_not};
  for (UFn f : unary) outs.push_back(f(x, gpu));
  outs.push_back(bitwise_invert(n, gpu));
  outs.push_back(exp(c, gpu));
  std::vector<BFn> binary = {add, subtract, multiply, divide, floor_divide, remainder, power, maximum, minimum,
                             arctan2, logaddexp, equal, not_equal, less, less_equal, greater, greater_equal,
                             logical_and, logical_or, logical_xor};
  for (BFn f : binary) outs.push_back(f(x, transpose(reshape(x, {6, 4}, gpu), gpu), gpu));
  std::vector<BFn> integer = {bitwise_and, bitwise_or, bitwise_xor, left_shift, right_shift};
  for (BFn f : integer) outs.push_back(f(n, n, gpu));
  outs.push_back(where(greater(x, array(0.5f), gpu), x, n, gpu));
  outs.push_back(clip(x, array(0.3f), array(0.6f), gpu));
  for (Dtype d : test::all_dtypes()) outs.push_back(astype(x, d, gpu));
  outs.push_back(view(x, int32, gpu));
  outs.push_back(copy(x, gpu));
  outs.push_back(contiguous(transpose(multiply(x, array(2.f), gpu), gpu), gpu));
  outs.push_back(reshape(transpose(x, gpu), {24}, gpu));
  outs.push_back(slice(x, {3, 5}, {0, 0}, {-1, -2}, gpu));
  outs.push_back(as_strided(x, {3, 2}, {1, 1}, 0, gpu));
  outs.push_back(broadcast_to(x, {2, 4, 6}, gpu));
  outs.push_back(full({3}, 2.0, float16, gpu));
  outs.push_back(arange(0, 10, 1, int64, gpu));
  outs.push_back(linspace(0, 1, 5, float32, gpu));
  outs.push_back(eye(3, 4, 1, float32, gpu));
  outs.push_back(tri(3, 3, 0, int8, gpu));
  eval(outs);
  synchronize();
  EXPECT_EQ(kernel_launches(Backend::cpu), cpu_before) << "the GPU path ran a CPU kernel";
  EXPECT_GT(kernel_launches(Backend::gpu), gpu_before + outs.size() / 2);
  for (auto& o : outs) {
    if (!o.is_same(x)) EXPECT_EQ(o.device(), gpu);  // no-ops (astype to x's dtype) return x itself
  }
  // And the values are those of the CPU.
  KILN_EXPECT_CLOSE(test::to_doubles(outs[3]), test::to_doubles(exp(x, Device(Device::cpu))), float32, "exp");
}

// And the other way round: ops asked to run on the CPU run nothing on the GPU, even where the
// default device is the GPU (front ends must not build inner nodes on the default device).
TEST(BackendCoverage, CpuPathNeverRunsGpuKernels) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    GTEST_SKIP() << "no GPU present";
  }
  Device cpu(Device::cpu);
  auto [x, xv] = test::random_array({4, 6}, float32, 0.2, 0.9);
  size_t gpu_before = kernel_launches(Backend::gpu);
  std::vector<array> outs = {eye(4, 5, 1, float16, cpu), tri(3, 4, -1, int32, cpu), identity(3, float32, cpu),
                             full({2, 3}, 1.0, float32, cpu), zeros_like(x, cpu), ones({3}, int8, cpu),
                             arange(0, 5, 1, float32, cpu), linspace(0, 1, 4, float64, cpu),
                             clip(x, array(0.3f), array(0.6f), cpu), where(greater(x, array(0.5f), cpu), x, x, cpu),
                             view(x, int32, cpu), contiguous(transpose(exp(x, cpu), cpu), cpu),
                             as_strided(sin(x, cpu), {3}, {2}, 0, cpu), reshape(transpose(x, cpu), {24}, cpu)};
  eval(outs);
  EXPECT_EQ(kernel_launches(Backend::gpu), gpu_before) << "the CPU path ran a GPU kernel";
}

TEST(BackendDevices, DefaultDevice) {
  const char* env = std::getenv("KILN_DEVICE");
  if (env == nullptr) {
    EXPECT_EQ(default_device().type == Device::gpu, gpu_available());
  } else {
    EXPECT_EQ(default_device().type, std::string(env) == "gpu" ? Device::gpu : Device::cpu);
  }
  EXPECT_EQ(array(1.f).device(), default_device());
  EXPECT_EQ(zeros({2}).device(), default_device());
  EXPECT_EQ(exp(zeros({2})).device(), default_device());
  EXPECT_EQ(gpu_available(), gpu_count() > 0);
  Device old = default_device();
  set_default_device(Device::cpu);
  EXPECT_EQ(zeros({2}).device(), Device(Device::cpu));
  EXPECT_EQ((zeros({2}) + 1.0).device(), Device(Device::cpu));
  set_default_device(old);
  EXPECT_EQ(default_device(), old);
  KILN_EXPECT_THROW_MSG(set_default_device(Device(Device::gpu, 99)), ValueError, "[set_default_device]");
  KILN_EXPECT_THROW_MSG(new_stream(Device(Device::gpu, 99)), ValueError, "[new_stream]");
  KILN_EXPECT_THROW_MSG(zeros({2}, float32, Device(Device::gpu, 99)), ValueError, "99");
  KILN_EXPECT_THROW_MSG(exp(zeros({2}), Device(Device::gpu, 99)), ValueError, "99");
  if (!gpu_available()) {
    KILN_EXPECT_THROW_MSG(add(zeros({2}), zeros({2}), Device(Device::gpu)), ValueError, "[device]");
  }
}

TEST(BackendDevices, Streams) {
  for (Device dev : test::devices()) {
    Stream d = default_stream(dev);
    EXPECT_EQ(d, default_stream(dev));
    Stream s1 = new_stream(dev), s2 = new_stream(dev);
    EXPECT_NE(s1, s2);
    EXPECT_NE(s1, d);
    EXPECT_EQ(s1.device, dev);
    EXPECT_EQ(to_stream(s1), s1);
    EXPECT_EQ(to_stream(dev), d);
    // Work split across streams, each feeding the next.
    auto [x, xv] = test::random_array({1000}, float32, -1, 1);
    array a = exp(x, s1);
    array b = sin(a, s2);
    array c = multiply(a, b, d);
    std::vector<double> want = xv;
    for (auto& v : want) v = std::exp(v) * std::sin(std::exp(v));
    KILN_EXPECT_CLOSE(test::to_doubles(c), want, float32, "three streams on " << test::device_name(dev));
  }
}

// Unified memory: an array computed on one device is used on another without an explicit copy.
TEST(BackendDevices, CrossDevice) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    GTEST_SKIP() << "no GPU present";
  }
  Device cpu(Device::cpu), gpu(Device::gpu);
  auto [x, xv] = test::random_array({257, 3}, float32, -1, 1);
  array a = exp(x, cpu);        // computed on the CPU
  array b = a * 2.0;            // default device: the GPU
  array c = multiply(b, a, gpu);
  array d = add(c, transpose(transpose(b, gpu), cpu), cpu);  // back on the CPU
  array e = sqrt(abs(d, gpu), gpu);
  std::vector<double> want = xv;
  for (auto& v : want) {
    double ea = static_cast<float>(std::exp(v));
    v = std::sqrt(2 * ea * ea + 2 * ea);
  }
  KILN_EXPECT_CLOSE(test::to_doubles(e), want, float32, "cpu -> gpu -> cpu -> gpu");
  // Results on both sides stay readable, repeatedly.
  KILN_EXPECT_CLOSE(test::to_doubles(exp(x, gpu)), test::to_doubles(a), float32, "exp on both devices");
  // A GPU result consumed by a CPU op, then changed on neither: still the same values.
  array g = sin(x, gpu);
  array h = cos(g, cpu);
  array k = cos(g, gpu);
  KILN_EXPECT_CLOSE(test::to_doubles(h), test::to_doubles(k), float32, "cos of a gpu result on both devices");
}
