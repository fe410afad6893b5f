// Devices and streams. The default device is the GPU when one is present at run time, otherwise
// the CPU; the environment variable KILN_DEVICE=cpu|gpu overrides.
#pragma once

#include <iosfwd>
#include <variant>

namespace kiln {

struct Device {
  enum class Type { cpu, gpu };
  static constexpr Type cpu = Type::cpu;
  static constexpr Type gpu = Type::gpu;

  Type type = Type::cpu;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(Type t, int i = 0) : type(t), index(i) {}
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// An ordered queue of work on one device. Work on one stream runs in order; streams of one
// device may overlap. Each device has a default stream (index 0 for that device).
struct Stream {
  int index = 0;
  Device device;
  bool operator==(const Stream& o) const { return index == o.index; }
  bool operator!=(const Stream& o) const { return !(*this == o); }
};

Device default_device();
void set_default_device(Device d);
Stream default_stream(Device d);
Stream new_stream(Device d);

// Whether a usable GPU is present (built with CUDA, a driver, and at least one device).
bool gpu_available();
int gpu_count();

// Whether 16-bit floating weights are read at memory speed on `d`: always on a GPU; on the CPU
// where decoding's products run on vectors (x86-64 with AVX2, FMA and F16C, unless
// KILN_CPU_SIMD=0). Models load in bfloat16 by default where this holds.
bool fast_16bit_weights(Device d);

// Bound the GPU work an external profiler records when it starts with recording off
// (`ncu --profile-from-start off`, `nsys profile --capture-range=cudaProfilerApi`). Without a
// GPU they do nothing.
void profiler_start();
void profiler_stop();

// Every op takes an optional stream or device; empty means the default device's default stream.
using StreamOrDevice = std::variant<std::monostate, Stream, Device>;
Stream to_stream(const StreamOrDevice& s);

std::ostream& operator<<(std::ostream& os, const Device& d);

}  // namespace kiln
