// `kiln demo`: a short tour of lazy arrays on the default device.
#include <chrono>
#include <iomanip>
#include <iostream>

#include "kiln/kiln.h"
#include "tools/commands.h"

namespace kiln::tools {

int demo(const std::vector<std::string>& args) {
  int64_t n = 1024;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--size" && i + 1 < args.size()) {
      n = std::stoll(args[++i]);
    } else {
      std::cerr << "kiln demo: unknown option '" << args[i] << "'\n";
      return 2;
    }
  }
  std::cout << "device: " << default_device() << "\n";
  auto t0 = std::chrono::steady_clock::now();

  // Nothing below runs until eval: each line only adds nodes to the graph.
  auto key = random::key(0);
  auto keys = random::split(key);
  auto row = [&](int64_t i) { return reshape(slice(keys, {i}, {i + 1}), {2}); };
  auto x = random::normal({n, n}, float32, 0.0, 1.0, row(0));
  auto w = random::normal({n, n}, float32, 0.0, 1.0 / std::sqrt(double(n)), row(1));
  auto y = tanh(matmul(x, w));
  auto stats = stack({mean(y), std(y), max(y), min(y)});
  std::cout << "graph built; evaluating...\n";
  eval(stats);
  auto t1 = std::chrono::steady_clock::now();

  auto v = stats.to_vector<float>();
  std::cout << std::fixed << std::setprecision(4) << "tanh(x @ w) for x, w of shape (" << n << ", " << n
            << "): mean " << v[0] << ", std " << v[1] << ", max " << v[2] << ", min " << v[3] << "\n";
  std::cout << "a slice: " << slice(y, {0, 0}, {2, 4}) << "\n";
  std::cout << "time " << std::setprecision(1)
            << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms, peak memory "
            << get_peak_memory() / double(1 << 20) << " MiB\n";
  return 0;
}

}  // namespace kiln::tools
