// The CUDA implementation of the GPU seam: devices, streams, stream-ordered memory pools, copies.
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kiln/backend/cuda/cuda_backend.h"
#include "kiln/errors.h"

namespace kiln {

namespace cuda {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear sticky-free errors so later calls are not blamed
    fail<RuntimeError>("[cuda] ", what, ": ", cudaGetErrorString(err));
  }
}

}  // namespace cuda

namespace {

class CudaBackend final : public GpuBackend {
 public:
  const char* name() const override { return "cuda"; }

  int device_count() override {
    std::call_once(count_once_, [this] {
      int n = 0;
      if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        n = 0;
      }
      count_ = n;
      for (int d = 0; d < n; ++d) {
        cudaMemPool_t pool;
        if (cudaDeviceGetDefaultMemPool(&pool, d) == cudaSuccess) {
          // Keep freed memory in the pool for reuse instead of returning it at each sync.
          uint64_t keep = UINT64_MAX;
          cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
        }
      }
    });
    return count_;
  }

  GpuDeviceInfo device_info(int device) override {
    cudaDeviceProp prop;
    cuda::check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    GpuDeviceInfo info;
    info.name = prop.name;
    info.total_memory = prop.totalGlobalMem;
    info.multiprocessors = prop.multiProcessorCount;
    info.compute_major = prop.major;
    info.compute_minor = prop.minor;
    set_device(device);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) info.free_memory = free_b;
    return info;
  }

  void* malloc(size_t bytes, int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    void* p = nullptr;
    cudaError_t err = cudaMallocAsync(&p, bytes, s);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      trim_cache();
      cudaDeviceSynchronize();
      err = cudaMallocAsync(&p, bytes, s);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      fail<RuntimeError>("[malloc] could not allocate ", bytes, " bytes on GPU ", device, ": ",
                         cudaGetErrorString(err));
    }
    return p;
  }

  void free(void* ptr, int device, int stream) override {
    set_device(device);
    cudaFreeAsync(ptr, get_stream(device, stream < 0 ? 0 : stream));
  }

  size_t cached_bytes() override {
    size_t total = 0;
    for (int d = 0; d < device_count(); ++d) {
      cudaMemPool_t pool;
      if (cudaDeviceGetDefaultMemPool(&pool, d) != cudaSuccess) continue;
      uint64_t reserved = 0, used = 0;
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used);
      total += reserved - used;
    }
    return total;
  }

  void trim_cache() override {
    for (int d = 0; d < device_count(); ++d) {
      set_device(d);
      cudaDeviceSynchronize();
      cudaMemPool_t pool;
      if (cudaDeviceGetDefaultMemPool(&pool, d) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
    }
  }

  void copy_to_host(void* dst, const void* src, size_t bytes, int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "copy to host");
    cuda::check(cudaStreamSynchronize(s), "synchronize after copy to host");
  }

  void copy_to_device(void* dst, const void* src, size_t bytes, int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    unsigned long long capture_id = 0;
    cuda::check(cudaStreamGetCaptureInfo(s, &capture, &capture_id), "cudaStreamGetCaptureInfo");
    if (capture == cudaStreamCaptureStatusActive && bytes > 0) {
      // A graph's copy reads its host source at every replay, long after the source (a scalar
      // operand, say) is gone: the graph copies from a block of its own, freed with it. Filed
      // by capture, not stream: a stream that joined the capture records into the same graph.
      std::unique_ptr<char[]> held(new char[bytes]);
      std::memcpy(held.get(), src, bytes);
      cuda::check(cudaMemcpyAsync(dst, held.get(), bytes, cudaMemcpyHostToDevice, s), "copy to device");
      std::lock_guard<std::mutex> lock(mutex_);
      capture_held_[capture_id].push_back(std::move(held));
      return;
    }
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "copy to device");
  }

  void copy_device_to_device(void* dst, const void* src, size_t bytes, int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "device copy");
  }

  void stream_wait(int device, int stream, int other) override {
    if (other < 0 || other == stream) return;
    order(get_stream(device, stream), get_stream(device, other));
  }

  void* native_stream(int device, int stream) override { return get_stream(device, stream); }

  void native_wait(void* native, int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    if (static_cast<cudaStream_t>(native) != s) order(static_cast<cudaStream_t>(native), s);
  }

  void wait_native(int device, int stream, void* native) override {
    cudaStream_t s = get_stream(device, stream);
    if (static_cast<cudaStream_t>(native) != s) order(s, static_cast<cudaStream_t>(native));
  }

  void synchronize(int device, int stream) override {
    cuda::check(cudaStreamSynchronize(get_stream(device, stream)), "stream synchronize");
  }

  void synchronize_all() override {
    std::vector<std::pair<int, int>> keys;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [k, s] : streams_) keys.push_back(k);
    }
    for (auto& [d, s] : keys) synchronize(d, s);
  }

  void begin_capture(int device, int stream) override {
    cuda::check(cudaStreamBeginCapture(get_stream(device, stream), cudaStreamCaptureModeThreadLocal),
                "cudaStreamBeginCapture");
  }

  void* end_capture(int device, int stream) override {
    cudaStream_t s = get_stream(device, stream);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    unsigned long long capture_id = 0;
    cuda::check(cudaStreamGetCaptureInfo(s, &capture, &capture_id), "cudaStreamGetCaptureInfo");
    Held held = take(capture_held_, capture_id);
    cudaGraph_t graph = nullptr;
    cuda::check(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    cudaError_t err = cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch);
    cudaGraphDestroy(graph);
    cuda::check(err, "cudaGraphInstantiate");
    if (!held.empty()) {
      std::lock_guard<std::mutex> lock(mutex_);
      graph_held_[exec] = std::move(held);
    }
    return exec;
  }

  void launch_graph(void* graph, int device, int stream) override {
    cuda::check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), get_stream(device, stream)), "cudaGraphLaunch");
  }

  void destroy_graph(void* graph) override {
    Held held = take(graph_held_, graph);  // freed after the graph, which reads them
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
  }

  void profiler_range(bool start) override {
    cuda::check(start ? cudaProfilerStart() : cudaProfilerStop(), start ? "cudaProfilerStart" : "cudaProfilerStop");
  }

  cudaStream_t get_stream(int device, int stream) {
    set_device(device);
    std::lock_guard<std::mutex> lock(mutex_);
    auto key = std::make_pair(device, stream);
    auto it = streams_.find(key);
    if (it != streams_.end()) return it->second;
    cudaStream_t s;
    cuda::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream create");
    streams_.emplace(key, s);
    return s;
  }

  void set_device(int device) {
    thread_local int current = -1;
    if (current != device) {
      cuda::check(cudaSetDevice(device), "cudaSetDevice");
      current = device;
    }
  }

 private:
  // Work queued on `waiter` from now on waits for all work so far on `first`.
  static void order(cudaStream_t waiter, cudaStream_t first) {
    cudaEvent_t ev;
    cuda::check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "event create");
    cudaError_t err = cudaEventRecord(ev, first);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(waiter, ev, 0);
    cudaEventDestroy(ev);
    cuda::check(err, "stream wait");
  }

  struct PairHash {
    size_t operator()(const std::pair<int, int>& p) const { return std::hash<int64_t>()((int64_t(p.first) << 32) | p.second); }
  };
  std::once_flag count_once_;
  int count_ = 0;
  std::mutex mutex_;
  std::unordered_map<std::pair<int, int>, cudaStream_t, PairHash> streams_;
  // Host sources of the copies a capture under way records, per capture id, then per graph.
  using Held = std::vector<std::unique_ptr<char[]>>;
  std::unordered_map<unsigned long long, Held> capture_held_;
  std::unordered_map<void*, Held> graph_held_;

  // Removes and returns map[key] (empty when absent).
  template <class Map, class Key>
  Held take(Map& map, const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map.find(key);
    if (it == map.end()) return {};
    Held held = std::move(it->second);
    map.erase(it);
    return held;
  }
};

CudaBackend& backend() {
  static CudaBackend* b = new CudaBackend();  // lives for the whole process
  return *b;
}

}  // namespace

GpuBackend* gpu_backend() { return &backend(); }

namespace cuda {
cudaStream_t stream_of(const array& a) { return backend().get_stream(a.device().index, a.stream().index); }

const cudaDeviceProp& device_props(int device) {
  static std::mutex m;
  static std::unordered_map<int, cudaDeviceProp> props;
  std::lock_guard<std::mutex> lock(m);
  auto it = props.find(device);
  if (it == props.end()) {
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    it = props.emplace(device, p).first;
  }
  return it->second;
}
}  // namespace cuda

}  // namespace kiln
