#include "kiln/device.h"

#include <cstdlib>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "kiln/backend/cpu/gemv_rows.h"
#include "kiln/backend/gpu.h"
#include "kiln/errors.h"

namespace kiln {

namespace {

struct StreamTable {
  std::mutex mutex;
  std::vector<Stream> streams;  // index -> stream
};

StreamTable& stream_table() {
  static StreamTable table;
  return table;
}

Device initial_default_device() {
  const char* env = std::getenv("KILN_DEVICE");
  if (env) {
    std::string v(env);
    if (v == "cpu") return Device::cpu;
    if (v == "gpu") {
      if (!gpu_available()) fail<RuntimeError>("[device] KILN_DEVICE=gpu but no GPU is available");
      return Device::gpu;
    }
    fail<ValueError>("[device] KILN_DEVICE must be 'cpu' or 'gpu', got '", v, "'");
  }
  return gpu_available() ? Device(Device::gpu) : Device(Device::cpu);
}

Stream default_stream_locked(Device d) {
  auto& t = stream_table();
  std::lock_guard<std::mutex> lock(t.mutex);
  for (auto& s : t.streams) {
    if (s.device == d) return s;  // the first stream made for a device is its default
  }
  Stream s{static_cast<int>(t.streams.size()), d};
  t.streams.push_back(s);
  return s;
}

Device& default_device_ref() {
  static Device d = initial_default_device();
  return d;
}

}  // namespace

bool gpu_available() { return gpu_count() > 0; }

bool fast_16bit_weights(Device d) { return d.type == Device::gpu || cpu::gemv_rows_vectorized(); }

int gpu_count() {
  static int n = [] {
    GpuBackend* g = gpu_backend();
    return g ? g->device_count() : 0;
  }();
  return n;
}

void profiler_start() {
  if (GpuBackend* g = gpu_backend()) g->profiler_range(true);
}

void profiler_stop() {
  if (GpuBackend* g = gpu_backend()) g->profiler_range(false);
}

Device default_device() { return default_device_ref(); }

void set_default_device(Device d) {
  if (d.type == Device::gpu && d.index >= gpu_count()) {
    fail<ValueError>("[set_default_device] no GPU with index ", d.index, " (", gpu_count(), " present)");
  }
  default_device_ref() = d;
}

Stream default_stream(Device d) {
  // Every op asks for this. A device's default stream never changes once made, so each thread
  // remembers the last one it was given and skips the lock.
  thread_local Stream last{-1, Device()};
  if (last.index >= 0 && last.device == d) return last;
  last = default_stream_locked(d);
  return last;
}

Stream new_stream(Device d) {
  if (d.type == Device::gpu && d.index >= gpu_count()) {
    fail<ValueError>("[new_stream] no GPU with index ", d.index);
  }
  default_stream(d);  // make sure the default exists first
  auto& t = stream_table();
  std::lock_guard<std::mutex> lock(t.mutex);
  Stream s{static_cast<int>(t.streams.size()), d};
  t.streams.push_back(s);
  return s;
}

Stream to_stream(const StreamOrDevice& s) {
  if (std::holds_alternative<Stream>(s)) return std::get<Stream>(s);
  Device d = std::holds_alternative<Device>(s) ? std::get<Device>(s) : default_device();
  if (d.type == Device::gpu && d.index >= gpu_count()) {
    fail<ValueError>("[device] no GPU with index ", d.index, " (", gpu_count(), " present)");
  }
  return default_stream(d);
}

std::ostream& operator<<(std::ostream& os, const Device& d) {
  return os << (d.type == Device::cpu ? "cpu" : "gpu") << ":" << d.index;
}

}  // namespace kiln
