// `kiln info`: version, build options, devices; `--ops`: each operation and its backends.
#include <iomanip>
#include <iostream>
#include <set>

#include "kiln/backend/cpu/parallel.h"
#include "kiln/backend/gpu.h"
#include "kiln/backend/kernels.h"
#include "kiln/kiln.h"
#include "tools/commands.h"

namespace kiln::tools {

int info(const std::vector<std::string>& args) {
  bool ops = false;
  for (auto& a : args) {
    if (a == "--ops") {
      ops = true;
    } else {
      std::cerr << "kiln info: unknown option '" << a << "'\n";
      return 2;
    }
  }
  if (ops) {
    auto cpu = registered_ops(Backend::cpu);
    auto gpu = registered_ops(Backend::gpu);
    std::set<std::string> all(cpu.begin(), cpu.end());
    all.insert(gpu.begin(), gpu.end());
    std::set<std::string> on_cpu(cpu.begin(), cpu.end()), on_gpu(gpu.begin(), gpu.end());
    for (auto& name : all) {
      std::cout << std::left << std::setw(24) << name << (on_cpu.count(name) ? "cpu" : "   ")
                << (on_gpu.count(name) ? " cuda" : "") << "\n";
    }
    std::cout << all.size() << " operations\n";
    return 0;
  }
  std::cout << "kiln " << kVersion << "\n";
  std::cout << "build: " << build_type() << ", CUDA backend " << (built_with_cuda() ? "on" : "off") << "\n";
  std::cout << "default device: " << default_device() << "\n";
  std::cout << "devices:\n";
  std::cout << "  cpu:0  " << cpu::num_threads() << " threads\n";
  if (GpuBackend* g = gpu_backend()) {
    int n = g->device_count();
    for (int i = 0; i < n; ++i) {
      auto d = g->device_info(i);
      std::cout << "  gpu:" << i << "  " << d.name << ", " << std::fixed << std::setprecision(1)
                << d.total_memory / double(1 << 30) << " GiB (" << d.free_memory / double(1 << 30)
                << " GiB free), " << d.multiprocessors << " SMs, compute " << d.compute_major << "."
                << d.compute_minor << "\n";
    }
    if (n == 0) std::cout << "  (no GPU found)\n";
  }
  return 0;
}

}  // namespace kiln::tools
