// Core benchmarks: elementwise, reductions, matmul, pooling, graph overhead. Prints one JSON object per
// line (name, seconds, bytes moved, flops) for bench/core.py, which times the peers in the same
// run and prints the table with the hardware floor. Run directly for the raw figures.
#include <cblas.h>

#include <cstring>
#include <iostream>
#include <string>

#include "bench/bench_util.h"

using namespace kiln;

namespace {

void report(const std::string& name, double seconds, double bytes, double flops = 0) {
  std::cout << "{\"name\": \"" << name << "\", \"seconds\": " << seconds << ", \"bytes\": " << bytes
            << ", \"flops\": " << flops << "}" << std::endl;
}

array rand(Shape shape, Dtype dtype, StreamOrDevice s) {
  auto a = astype(random::uniform(-1.0, 1.0, shape, float32, std::nullopt, s), dtype, s);
  eval(a);
  return a;
}

void gpu_benchmarks(bool quick) {
  Device gpu(Device::gpu);
  const int64_t gib = int64_t(1) << 30;
  for (Dtype dt : {kiln::bfloat16, float32}) {
    int64_t n = (quick ? gib / 16 : gib) / int64_t(size_of(dt));
    std::string tag = dtype_name(dt);
    auto x = rand({n}, dt, gpu);
    auto y = rand({n}, dt, gpu);
    double bytes = double(n) * size_of(dt);
    report("gpu copy " + tag, bench::time_median([&] { eval(copy(x, gpu)); }), 2 * bytes);
    report("gpu add " + tag, bench::time_median([&] { eval(add(x, y, gpu)); }), 3 * bytes);
    report("gpu exp " + tag, bench::time_median([&] { eval(exp(x, gpu)); }), 2 * bytes);
    report("gpu sum all " + tag, bench::time_median([&] { eval(sum(x, false, gpu)); }), bytes);
    auto rows = reshape(x, {n / 4096, 4096}, gpu);
    report("gpu sum last axis " + tag, bench::time_median([&] { eval(sum(rows, -1, false, gpu)); }), bytes);
  }
  {
    int64_t m = quick ? 2048 : 8192;
    auto a = rand({m, m}, kiln::bfloat16, gpu);
    auto b = rand({m, m}, kiln::bfloat16, gpu);
    report("gpu matmul " + std::to_string(m) + "^3 bf16", bench::time_median([&] { eval(matmul(a, b, gpu)); }),
           3.0 * m * m * 2, 2.0 * m * m * m);
  }
  {
    auto x = rand({1, 4096}, kiln::bfloat16, gpu);
    auto w = rand({4096, 14336}, kiln::bfloat16, gpu);
    report("gpu matmul 1x4096x14336 bf16", bench::time_median([&] { eval(matmul(x, w, gpu)); }, 9, 50),
           4096.0 * 14336 * 2, 2.0 * 4096 * 14336);
  }
  {
    // ResNet-50's stem pool: 3x3, stride 2, padding 1 over (N, 112, 112, 64) channels-last.
    int64_t n = quick ? 32 : 256;
    auto x = rand({n, 112, 112, 64}, kiln::bfloat16, gpu);
    report("gpu max_pool 3x3/2 bf16", bench::time_median([&] { eval(max_pool(x, {3, 3}, {2, 2}, {1, 1}, {}, gpu)); }),
           double(n) * 64 * 2 * (112 * 112 + 56 * 56));
  }
}

void cpu_benchmarks(bool quick) {
  Device cpu(Device::cpu);
  {
    int64_t n = quick ? 256 : 1024;
    auto a = rand({n, n}, float32, cpu);
    auto b = rand({n, n}, float32, cpu);
    report("cpu matmul " + std::to_string(n) + "^3 f32", bench::time_median([&] { eval(matmul(a, b, cpu)); }),
           3.0 * n * n * 4, 2.0 * n * n * n);
    std::vector<float> c(n * n);
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    // kiln keeps OpenBLAS on one thread and splits products itself; the peer gets its own threads.
    openblas_set_num_threads(openblas_get_num_procs());
    report("cpu openblas sgemm " + std::to_string(n) + "^3 f32", bench::time_median([&] {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, pa, n, pb, n, 0.f, c.data(), n);
           }),
           3.0 * n * n * 4, 2.0 * n * n * n);
  }
  {
    int64_t n = (quick ? 4 : 64) << 20;  // 16 or 256 MiB of float32
    auto x = rand({n}, float32, cpu);
    auto y = rand({n}, float32, cpu);
    double bytes = double(n) * 4;
    report("cpu add f32", bench::time_median([&] { eval(add(x, y, cpu)); }), 3 * bytes);
    std::vector<float> dst(n);
    const float* src = x.data<float>();
    report("cpu memcpy f32", bench::time_median([&] { std::memcpy(dst.data(), src, n * 4); }), 2 * bytes);
  }
  {
    int64_t n = quick ? 1 : 8;
    auto x = rand({n, 112, 112, 64}, float32, cpu);
    report("cpu max_pool 3x3/2 f32", bench::time_median([&] { eval(max_pool(x, {3, 3}, {2, 2}, {1, 1}, {}, cpu)); }),
           double(n) * 64 * 4 * (112 * 112 + 56 * 56));
  }
  {
    // Graph overhead: build and evaluate 10 000 tiny ops.
    auto one = array(1.0f);
    report("cpu graph 10000 tiny ops", bench::time_median([&] {
             array x = zeros({4}, float32, cpu);
             for (int i = 0; i < 10000; ++i) x = add(x, one, cpu);
             eval(x);
           }, 5, 1),
           0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, gpu_only = false, cpu_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    if (a == "--gpu") gpu_only = true;
    if (a == "--cpu") cpu_only = true;
  }
  if (!cpu_only && gpu_available()) gpu_benchmarks(quick);
  if (!gpu_only) cpu_benchmarks(quick);
  return 0;
}
