#include "kiln/backend/kernels.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

namespace kiln {

namespace {

struct Registry {
  std::unordered_map<std::string_view, Kernel> tables[2];
  std::atomic<size_t> launches[2] = {0, 0};
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry();
    return reg;
  }();
  return *r;
}

void ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_cpu_kernels();
    register_gpu_kernels();
  });
}

}  // namespace

void register_kernel(Backend backend, std::string_view op, Kernel kernel) {
  registry().tables[static_cast<int>(backend)][op] = kernel;
}

Kernel find_kernel(Backend backend, std::string_view op) {
  ensure_registered();
  auto& table = registry().tables[static_cast<int>(backend)];
  auto it = table.find(op);
  if (it == table.end()) return nullptr;
  registry().launches[static_cast<int>(backend)].fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

std::vector<std::string> registered_ops(Backend backend) {
  ensure_registered();
  std::vector<std::string> names;
  for (auto& [name, k] : registry().tables[static_cast<int>(backend)]) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

size_t kernel_launches(Backend backend) { return registry().launches[static_cast<int>(backend)].load(); }

bool donate_buffer(const array& in, array& out) {
  // use_count 1: the consumer's input list holds the only handle, and the node the only
  // reference to the buffer.
  if (!in.is_available() || in.use_count() != 1 || !in.buffer() || in.buffer().use_count() != 1) return false;
  // Memory lent by another library (kn.asarray of a NumPy array) is read, never written.
  if (in.buffer()->external()) return false;
  if (!in.row_contiguous() || in.offset() != 0 || in.data_size() != in.size() || in.size() != out.size() ||
      in.itemsize() != out.itemsize() || in.buffer()->nbytes() != out.nbytes()) {
    return false;
  }
  out.set_data(in.buffer());
  return true;
}

}  // namespace kiln
