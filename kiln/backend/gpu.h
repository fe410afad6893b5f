// The seam between the core and a GPU backend. The core (buffers, eval, device selection) talks to
// the GPU only through this interface; the CUDA backend implements it, and another GPU backend
// would implement it the same way. Streams are identified by kiln's stream index.
#pragma once

#include <cstddef>
#include <string>

namespace kiln {

struct GpuDeviceInfo {
  std::string name;
  size_t total_memory = 0;
  size_t free_memory = 0;
  int multiprocessors = 0;
  int compute_major = 0;
  int compute_minor = 0;
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual const char* name() const = 0;
  virtual int device_count() = 0;
  virtual GpuDeviceInfo device_info(int device) = 0;

  // Stream-ordered device memory: valid for work on `stream` once the call returns.
  virtual void* malloc(size_t bytes, int device, int stream) = 0;
  virtual void free(void* ptr, int device, int stream) = 0;
  // Bytes held by the device pools but not in use (the GPU part of the cache).
  virtual size_t cached_bytes() = 0;
  virtual void trim_cache() = 0;

  // Copies between host memory and device memory, ordered on `stream`. to_host waits for the
  // copy (and everything before it on the stream) to finish.
  virtual void copy_to_host(void* dst, const void* src, size_t bytes, int device, int stream) = 0;
  virtual void copy_to_device(void* dst, const void* src, size_t bytes, int device, int stream) = 0;
  virtual void copy_device_to_device(void* dst, const void* src, size_t bytes, int device, int stream) = 0;

  // Makes work on `stream` wait for all work so far on `other` (same device).
  virtual void stream_wait(int device, int stream, int other) = 0;
  virtual void synchronize(int device, int stream) = 0;
  virtual void synchronize_all() = 0;

  // Exchanging memory with other libraries (DLPack): the backend's own handle of a kiln stream
  // (a cudaStream_t), and ordering between a kiln stream and another library's stream handle on
  // the same device, either way round.
  virtual void* native_stream(int device, int stream) = 0;
  // Work queued on `native` from now on waits for all work so far on kiln's `stream`.
  virtual void native_wait(void* native, int device, int stream) = 0;
  // Work queued on kiln's `stream` from now on waits for all work so far on `native`.
  virtual void wait_native(int device, int stream, void* native) = 0;

  // Graph capture: work queued on `stream` by this thread between begin_capture and end_capture
  // is recorded, not run. end_capture returns the replayable graph (an opaque handle); memory the
  // graph allocates and does not free is released when it is launched again.
  virtual void begin_capture(int device, int stream) = 0;
  virtual void* end_capture(int device, int stream) = 0;
  virtual void launch_graph(void* graph, int device, int stream) = 0;
  virtual void destroy_graph(void* graph) = 0;

  // Starts or stops the recording of an external profiler launched with its own start off.
  virtual void profiler_range(bool start) = 0;
};

// The GPU backend built into this library, or nullptr when kiln was built without one or no
// driver could be loaded. Never throws.
GpuBackend* gpu_backend();

}  // namespace kiln
