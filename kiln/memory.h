// Buffers and memory accounting. A Buffer is the storage behind one or more arrays. It can hold a
// copy in host memory and a copy in GPU memory; either side is filled from the other on demand,
// which is what lets an array made on one device be used on another without an explicit copy.
#pragma once

#include <cstddef>
#include <mutex>

namespace kiln {

class Buffer {
 public:
  explicit Buffer(size_t nbytes);
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

 private:
  void ensure_host_allocated();
  void ensure_gpu_allocated(int device, int stream);

  size_t nbytes_;
  std::mutex mutex_;
  void* host_ = nullptr;
  void* gpu_ = nullptr;
  int gpu_device_ = 0;
  int gpu_stream_ = -1;  // stream of the last GPU use: frees and host reads order after it
  bool host_valid_ = false;
  bool gpu_valid_ = false;
};

// Bytes in use by arrays (host and GPU together), and the most ever in use since the last reset.
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
