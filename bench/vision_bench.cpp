// Vision benchmark: ResNet-50 (random weights, batch norm folded) on the default device —
// latency and images/s per batch size and dtype, eager and (GPU) replayed as a CUDA graph — and
// the measured matmul rate for the floor.
// Prints "key value" lines for bench/vision.py, which puts torchvision beside them.
//
//   vision_bench [--batches 1,64,256] [--dtypes float32,bfloat16] [--size 224] [--reps N] [--profile]
// --profile: after the timings of each batch, one more forward pass between profiler_start and
// profiler_stop, for `ncu --profile-from-start off` (bench/profile_kernels.py).
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "kiln/kiln.h"
#include "kiln/models/resnet.h"

using namespace kiln;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> batches{"1", "64", "256"}, dtypes{"float32", "bfloat16"};
  int size = 224, reps = 5;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--profile") profile = true;
    else if (a == "--batches" && has_value) batches = split(argv[++i]);
    else if (a == "--dtypes" && has_value) dtypes = split(argv[++i]);
    else if (a == "--size" && has_value) size = std::atoi(argv[++i]);
    else if (a == "--reps" && has_value) reps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("device %s\n", default_device().type == Device::gpu ? "gpu" : "cpu");
  for (const auto& dt_name : dtypes) {
    Dtype dt = dt_name == "bfloat16" ? bfloat16 : dt_name == "float16" ? float16 : float32;
    // The matmul rate of this dtype, for the FLOP floor.
    {
      int64_t n = default_device().type == Device::gpu ? 8192 : 1024;
      array a = random::normal({n, n}, dt), b = random::normal({n, n}, dt);
      eval({a, b});
      double t = bench::time_median([&] { matmul(a, b).eval(); }, 5, 2);
      std::printf("matmul_tflops_%s %.6g\n", dt_name.c_str(), 2.0 * n * n * n / t / 1e12);
    }
    models::ResNet model(50, 1000, dt);
    model.eval();
    model.fold_batchnorm();
    for (const auto& bs : batches) {
      int64_t b = std::stoll(bs);
      array x = random::normal({b, size, size, 3}, dt);
      x.eval();
      double t = bench::time_median([&] { model(x).eval(); }, reps, 1);
      std::printf("resnet50_%s_b%lld_ms %.6g\n", dt_name.c_str(), static_cast<long long>(b), t * 1e3);
      std::printf("resnet50_%s_b%lld_images_per_s %.6g\n", dt_name.c_str(), static_cast<long long>(b), b / t);
      if (default_device().type == Device::gpu) {
        // The same forward pass replayed as one CUDA graph (kiln/capture.h).
        CapturedFunction forward([&](const std::vector<array>& in) { return std::vector<array>{model(in[0])}; });
        forward({x});  // eager: warms cuDNN's plans
        double tg = bench::time_median([&] { forward({x}); }, reps, 5);
        std::printf("resnet50_%s_b%lld_graph_ms %.6g\n", dt_name.c_str(), static_cast<long long>(b), tg * 1e3);
      }
      if (profile) {
        synchronize();
        profiler_start();
        model(x).eval();
        synchronize();
        profiler_stop();
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
