#include "kiln/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/backend/gpu.h"
#include "kiln/errors.h"

namespace kiln {

namespace {

constexpr size_t kAlign = 64;

size_t round_size(size_t n) {
  if (n == 0) return kAlign;
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  return (n + 4095) / 4096 * 4096;
}

struct Accounting {
  std::mutex mutex;
  size_t active = 0;
  size_t peak = 0;
  size_t limit = 0;  // 0: none
  size_t cache_limit = size_t(4) << 30;
  size_t host_cached = 0;
  // Rounded size -> free blocks of that size. Vectors, so that a free and the next allocation of
  // the size cost no allocation of their own.
  std::unordered_map<size_t, std::vector<void*>> host_free;
};

Accounting& acc() {
  static Accounting* a = new Accounting();  // never destroyed: buffers may outlive static teardown
  return *a;
}

void release_host_cache_locked(Accounting& a) {
  for (auto& [size, blocks] : a.host_free) {
    for (void* p : blocks) std::free(p);
  }
  a.host_free.clear();
  a.host_cached = 0;
}

// Reserves `bytes` against the limit; called with the lock held.
void reserve_locked(Accounting& a, size_t bytes, const char* where) {
  if (a.limit && a.active + bytes > a.limit) {
    release_host_cache_locked(a);
    if (auto* g = gpu_backend()) g->trim_cache();
    if (a.active + bytes > a.limit) {
      fail<RuntimeError>("[", where, "] allocating ", bytes, " bytes would exceed the memory limit of ",
                         a.limit, " bytes (", a.active, " in use)");
    }
  }
  a.active += bytes;
  a.peak = std::max(a.peak, a.active);
}

}  // namespace

namespace allocator {

void* host_malloc(size_t bytes) {
  size_t size = round_size(bytes);
  auto& a = acc();
  {
    std::lock_guard<std::mutex> lock(a.mutex);
    reserve_locked(a, size, "malloc");
    auto it = a.host_free.find(size);
    if (it != a.host_free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      a.host_cached -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) {
    std::lock_guard<std::mutex> lock(a.mutex);
    release_host_cache_locked(a);
    p = std::aligned_alloc(kAlign, size);
    if (!p) {
      a.active -= size;
      fail<RuntimeError>("[malloc] out of host memory allocating ", bytes, " bytes");
    }
  }
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  size_t size = round_size(bytes);
  auto& a = acc();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.active -= size;
  if (a.host_cached + size <= a.cache_limit) {
    a.host_free[size].push_back(p);
    a.host_cached += size;
  } else {
    std::free(p);
  }
}

void* gpu_malloc(size_t bytes, int device, int stream) {
  GpuBackend* g = gpu_backend();
  if (!g) fail<RuntimeError>("[malloc] no GPU backend is available");
  size_t size = round_size(bytes);
  auto& a = acc();
  {
    std::lock_guard<std::mutex> lock(a.mutex);
    reserve_locked(a, size, "malloc");
  }
  try {
    return g->malloc(size, device, stream);
  } catch (...) {
    std::lock_guard<std::mutex> lock(a.mutex);
    a.active -= size;
    throw;
  }
}

void gpu_free(void* p, size_t bytes, int device, int stream) {
  if (!p) return;
  GpuBackend* g = gpu_backend();
  g->free(p, device, stream);
  auto& a = acc();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.active -= round_size(bytes);
}

}  // namespace allocator

Buffer::Buffer(size_t nbytes) : nbytes_(nbytes) {}

Buffer::Buffer(size_t nbytes, ExternalMemory memory)
    : nbytes_(nbytes), external_(memory.data), release_(std::move(memory.release)) {
  if (memory.device.type == Device::cpu) {
    host_ = memory.data;
    host_valid_ = true;
  } else {
    gpu_ = memory.data;
    gpu_device_ = memory.device.index;
    gpu_stream_ = memory.stream;
    gpu_valid_ = true;
  }
}

Buffer::~Buffer() {
  if (host_ && host_ != external_ && host_ != small_) allocator::host_free(host_, nbytes_);
  if (gpu_ && gpu_ != external_) allocator::gpu_free(gpu_, nbytes_, gpu_device_, gpu_stream_);
  if (!release_) return;
  try {
    // Queued GPU work may still read the lent memory (or copy from it): the owner gets it back
    // only once that work is done.
    if (gpu_stream_ >= 0) {
      if (auto* g = gpu_backend()) g->synchronize(gpu_device_, gpu_stream_);
    }
    release_();
  } catch (...) {
    // A destructor cannot report; the owner keeps its memory either way.
  }
}

void Buffer::ensure_host_allocated() {
  if (!host_) host_ = nbytes_ <= sizeof(small_) ? small_ : allocator::host_malloc(nbytes_);
}

void Buffer::ensure_gpu_allocated(int device, int stream) {
  if (gpu_ && gpu_device_ != device) {
    // Moving between GPUs goes through the host.
    if (gpu_valid_ && !host_valid_) {
      own_host();
      ensure_host_allocated();
      gpu_backend()->copy_to_host(host_, gpu_, nbytes_, gpu_device_, gpu_stream_);
      host_valid_ = true;
    }
    if (gpu_ != external_) allocator::gpu_free(gpu_, nbytes_, gpu_device_, gpu_stream_);
    gpu_ = nullptr;
    gpu_valid_ = false;
  }
  if (!gpu_) {
    gpu_ = allocator::gpu_malloc(nbytes_, device, stream);
    gpu_device_ = device;
    gpu_stream_ = stream;
  }
}

// Before anything is written to a side that is still the external memory, that side moves to
// kiln's own memory (keeping its contents where they are current): the owner's data never
// changes under it.
void Buffer::own_host() {
  if (!external_ || host_ != external_) return;
  void* p = nbytes_ <= sizeof(small_) ? small_ : allocator::host_malloc(nbytes_);
  if (host_valid_) std::memcpy(p, host_, nbytes_);
  host_ = p;
}

void Buffer::own_gpu(int device, int stream) {
  if (!external_ || gpu_ != external_) return;
  void* p = allocator::gpu_malloc(nbytes_, device, stream);
  if (gpu_valid_) gpu_backend()->copy_device_to_device(p, gpu_, nbytes_, device, stream);
  gpu_ = p;
}

const void* Buffer::read_host() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!host_valid_) {
    own_host();
    ensure_host_allocated();
    if (gpu_valid_) gpu_backend()->copy_to_host(host_, gpu_, nbytes_, gpu_device_, gpu_stream_);
    host_valid_ = true;  // a buffer never written reads as whatever the allocation holds
  }
  return host_;
}

const void* Buffer::read_gpu(int device, int stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (gpu_valid_ && gpu_device_ == device) {
    if (gpu_stream_ != stream) {
      gpu_backend()->stream_wait(device, stream, gpu_stream_);
      gpu_stream_ = stream;
    }
    return gpu_;
  }
  ensure_gpu_allocated(device, stream);
  own_gpu(device, stream);
  if (host_valid_) gpu_backend()->copy_to_device(gpu_, host_, nbytes_, device, stream);
  gpu_valid_ = true;
  return gpu_;
}

void* Buffer::write_host() {
  std::lock_guard<std::mutex> lock(mutex_);
  own_host();
  ensure_host_allocated();
  host_valid_ = true;
  gpu_valid_ = false;
  return host_;
}

void* Buffer::write_gpu(int device, int stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  ensure_gpu_allocated(device, stream);
  if (gpu_stream_ != stream) {
    gpu_backend()->stream_wait(device, stream, gpu_stream_);
    gpu_stream_ = stream;
  }
  own_gpu(device, stream);
  gpu_valid_ = true;
  host_valid_ = false;
  return gpu_;
}

size_t get_active_memory() {
  std::lock_guard<std::mutex> lock(acc().mutex);
  return acc().active;
}
size_t get_peak_memory() {
  std::lock_guard<std::mutex> lock(acc().mutex);
  return acc().peak;
}
void reset_peak_memory() {
  std::lock_guard<std::mutex> lock(acc().mutex);
  acc().peak = acc().active;
}
size_t get_cache_memory() {
  size_t gpu = 0;
  if (auto* g = gpu_backend()) gpu = g->device_count() ? g->cached_bytes() : 0;
  std::lock_guard<std::mutex> lock(acc().mutex);
  return acc().host_cached + gpu;
}
size_t set_memory_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(acc().mutex);
  return std::exchange(acc().limit, bytes);
}
size_t get_memory_limit() {
  std::lock_guard<std::mutex> lock(acc().mutex);
  return acc().limit;
}
size_t set_cache_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(acc().mutex);
  size_t old = std::exchange(acc().cache_limit, bytes);
  if (acc().host_cached > bytes) release_host_cache_locked(acc());
  return old;
}
void clear_cache() {
  {
    std::lock_guard<std::mutex> lock(acc().mutex);
    release_host_cache_locked(acc());
  }
  if (auto* g = gpu_backend()) {
    if (g->device_count()) g->trim_cache();
  }
}

}  // namespace kiln
