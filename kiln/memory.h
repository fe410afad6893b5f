// Buffers and memory accounting. A Buffer is the storage behind one or more arrays. It can hold a
// copy in host memory and a copy in GPU memory; either side is filled from the other on demand,
// which is what lets an array made on one device be used on another without an explicit copy.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>

#include "kiln/device.h"

namespace kiln {

// Memory that someone else owns (a NumPy array, a PyTorch tensor), lent to a Buffer without a
// copy. kiln reads it and never writes or frees it: `release` runs once when the buffer lets go,
// and for memory that kiln's GPU work has touched only after that work has finished.
struct ExternalMemory {
  void* data = nullptr;
  Device device;  // the CPU for host memory, else the GPU whose memory it is
  // GPU memory: the kiln stream index after whose queued work the memory holds its data (the
  // owner's producer was made to wait for, or ordered before, that stream).
  int stream = -1;
  std::function<void()> release;
};

class Buffer {
 public:
  explicit Buffer(size_t nbytes);
  // Storage over external memory of `nbytes`. It is not counted in active memory (kiln did not
  // allocate it). Reads see the owner's memory as it is when they run; a copy on the other side
  // (host or GPU) is made on first use there and is not refreshed afterwards. Writes never reach
  // the owner: writing to the external side first moves the data into kiln's own memory.
  Buffer(size_t nbytes, ExternalMemory memory);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  size_t nbytes() const { return nbytes_; }

  // For reading: a pointer whose contents are current, copying from the other side first if
  // needed. The host variant waits for pending GPU work that writes this buffer.
  const void* read_host();
  const void* read_gpu(int device, int stream);

  // For writing: a pointer on that side (allocated if needed); the other side becomes stale.
  void* write_host();
  void* write_gpu(int device, int stream);

  bool on_host() const { return host_valid_; }
  bool on_gpu() const { return gpu_valid_; }
  int gpu_stream() const { return gpu_stream_; }
  // Whether a side of this buffer is still the external memory it was made over.
  bool external() const { return external_ != nullptr && (host_ == external_ || gpu_ == external_); }

 private:
  void ensure_host_allocated();
  void ensure_gpu_allocated(int device, int stream);
  void own_host();
  void own_gpu(int device, int stream);

  size_t nbytes_;
  std::mutex mutex_;
  void* host_ = nullptr;
  void* gpu_ = nullptr;
  int gpu_device_ = 0;
  int gpu_stream_ = -1;  // stream of the last GPU use: frees and host reads order after it
  bool host_valid_ = false;
  bool gpu_valid_ = false;
  void* external_ = nullptr;  // the lent memory (host_ or gpu_ while that side still uses it)
  std::function<void()> release_;
  // The host side of the smallest buffers (scalars, mostly): no trip through the allocator,
  // and not counted in active memory.
  alignas(16) unsigned char small_[16];
};

// Bytes in use by arrays (host and GPU together), and the most ever in use since the last reset.
// Only kiln's allocations count: not external memory, nor the few bytes of a scalar.
size_t get_active_memory();
size_t get_peak_memory();
void reset_peak_memory();
// Bytes kept by kiln's caches for reuse (host free lists and GPU pools).
size_t get_cache_memory();
// Allocations that would take active memory past the limit first empty the cache, then fail
// with an error naming the sizes. Returns the previous limit. 0 means no limit.
size_t set_memory_limit(size_t bytes);
size_t get_memory_limit();
// Upper bound on the host cache; returns the previous value.
size_t set_cache_limit(size_t bytes);
void clear_cache();

namespace allocator {
void* host_malloc(size_t bytes);
void host_free(void* p, size_t bytes);
void* gpu_malloc(size_t bytes, int device, int stream);
void gpu_free(void* p, size_t bytes, int device, int stream);
}  // namespace allocator

}  // namespace kiln
